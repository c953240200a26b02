// base/philox.h: known answers of Philox4x32-10, the (seed, stream, position) mapping,
// statistical sanity of the draws (tolerances from the central limit theorem: 5 standard
// errors, so a correct generator fails with probability below 1e-6), independence of
// streams, and pinned bits.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <vector>

#include "base/philox.h"

using namespace lockstep;

namespace {

Philox4x32 kat(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1) {
  const uint32_t counter[4] = {c0, c1, c2, c3};
  const uint32_t key[2] = {k0, k1};
  return philox4x32_10(counter, key);
}

bool equal(const Philox4x32& a, uint32_t w0, uint32_t w1, uint32_t w2, uint32_t w3) {
  return a.w[0] == w0 && a.w[1] == w1 && a.w[2] == w2 && a.w[3] == w3;
}

// FNV-1a 64 over the bytes of a vector: a short fingerprint of a batch of draws.
template <class T>
uint64_t fingerprint(const std::vector<T>& v) {
  uint64_t h = 0xcbf29ce484222325ull;
  const unsigned char* p = reinterpret_cast<const unsigned char*>(v.data());
  for (size_t i = 0; i < v.size() * sizeof(T); ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

struct Moments {
  double mean = 0, var = 0, m4 = 0;  // central moments
};

template <class T>
Moments moments(const std::vector<T>& v) {
  Moments m;
  const double n = static_cast<double>(v.size());
  for (T x : v) m.mean += x;
  m.mean /= n;
  for (T x : v) {
    double d = x - m.mean;
    m.var += d * d;
    m.m4 += d * d * d * d;
  }
  m.var /= n;
  m.m4 /= n;
  return m;
}

const uint64_t kSeed = 0x243f6a8885a308d3ull;

}  // namespace

TEST_CASE("philox4x32_10: known answers", "[philox]") {
  CHECK(equal(kat(0, 0, 0, 0, 0, 0), 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8));
  CHECK(equal(kat(0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff),
              0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd));
  CHECK(equal(kat(0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0),
              0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1));
}

TEST_CASE("philox: (seed, stream, position) maps to counter and key as documented", "[philox]") {
  const uint64_t seed = 0x0123456789abcdefull, stream = (1ull << 33) + 7;
  for (uint64_t pos : {0ull, 1ull, 2ull, 3ull, 4ull, (1ull << 40) + 5, ~0ull}) {
    uint64_t block = pos / 4;
    Philox4x32 w = kat(static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32),
                       static_cast<uint32_t>(stream), static_cast<uint32_t>(stream >> 32),
                       static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
    CHECK(philox_uint32(seed, stream, pos) == w.w[pos % 4]);
    CHECK(uniform_f32(seed, stream, pos) == static_cast<float>(w.w[pos % 4] >> 8) * 0x1p-24f);
    // normal: the pair (2j, 2j + 1) of the same block, cos half for even positions.
    uint32_t j = static_cast<uint32_t>((pos / 2) % 2);
    float z0, z1;
    box_muller_f32(w.w[2 * j], w.w[2 * j + 1], z0, z1);
    float z = normal_f32(seed, stream, pos);
    CHECK(std::memcmp(&z, pos % 2 ? &z1 : &z0, sizeof z) == 0);
    // uniform_f64: block pos / 2, words (2j, 2j + 1), j = pos % 2.
    Philox4x32 d = philox_block(seed, stream, pos / 2);
    double u = uniform_f64(seed, stream, pos);
    CHECK(u == uint32x2_to_uniform01(d.w[2 * (pos % 2)], d.w[2 * (pos % 2) + 1]));
  }
}

TEST_CASE("philox: uniform conversions are exact and stay inside the unit interval", "[philox]") {
  CHECK(uint32_to_uniform01f(0u) == 0.0f);
  CHECK(uint32_to_uniform01f(0xffffffffu) == 1.0f - 0x1p-24f);
  CHECK(uint32_to_uniform01f(0x80000000u) == 0.5f);
  CHECK(uint32x2_to_uniform01(0u, 0u) == 0.0);
  CHECK(uint32x2_to_uniform01(0xffffffffu, 0xffffffffu) == 1.0 - 0x1p-53);
  CHECK(uint32x2_to_uniform01(0x80000000u, 0u) == 0.5);
  CHECK(uint32x2_to_uniform01(0u, 0x40u) == 0x1p-53);
  // Box-Muller never takes log(0): the extreme words give finite normals.
  float z0, z1;
  box_muller_f32(0u, 0u, z0, z1);
  CHECK(z0 == Approx(std::sqrt(48.0 * std::log(2.0))).epsilon(1e-6));
  CHECK(z1 == 0.0f);
  box_muller_f32(0xffffffffu, 0xffffffffu, z0, z1);
  CHECK(z0 == 0.0f);
  CHECK(z1 == 0.0f);
}

TEST_CASE("philox: uniform draws have the moments and histogram of Uthe unit interval", "[philox]") {
  const size_t n = 1000000;
  std::vector<float> u(n);
  std::vector<double> ud(n);
  for (size_t i = 0; i < n; ++i) u[i] = uniform_f32(kSeed, 1, i);
  for (size_t i = 0; i < n; ++i) ud[i] = uniform_f64(kSeed, 2, i);
  // mean 1/2, sd 1/sqrt(12 n); variance 1/12, whose estimate has sd sqrt((1/80 - 1/144) / n).
  const double se_mean = std::sqrt(1.0 / 12.0 / n);
  const double se_var = std::sqrt((1.0 / 80.0 - 1.0 / 144.0) / n);
  for (const Moments& m : {moments(u), moments(ud)}) {
    CHECK(std::fabs(m.mean - 0.5) < 5 * se_mean);
    CHECK(std::fabs(m.var - 1.0 / 12.0) < 5 * se_var);
  }
  // 256 equal bins: chi-square with 255 degrees of freedom, mean 255, sd sqrt(510).
  std::vector<double> count(256, 0.0);
  for (float x : u) count[static_cast<size_t>(x * 256.0f)] += 1;
  double chi2 = 0, expected = n / 256.0;
  for (double c : count) chi2 += (c - expected) * (c - expected) / expected;
  CHECK(std::fabs(chi2 - 255.0) < 5 * std::sqrt(510.0));
}

TEST_CASE("philox: normal draws have the moments of N(0, 1)", "[philox]") {
  const size_t n = 1000000;
  std::vector<float> z(n);
  for (size_t i = 0; i < n; ++i) z[i] = normal_f32(kSeed, 3, i);
  Moments m = moments(z);
  // Standard errors: mean 1/sqrt(n); variance sqrt(2/n) (m4 - 1 = 2); the fourth moment
  // sqrt(96/n) (E z^8 - 3^2 = 105 - 9).
  CHECK(std::fabs(m.mean) < 5 / std::sqrt(double(n)));
  CHECK(std::fabs(m.var - 1.0) < 5 * std::sqrt(2.0 / n));
  CHECK(std::fabs(m.m4 - 3.0) < 5 * std::sqrt(96.0 / n));
  // P(|z| < 1) = 0.6826895, a binomial proportion.
  double inside = 0;
  for (float x : z) inside += std::fabs(x) < 1.0f;
  const double p = 0.6826894921370859;
  CHECK(std::fabs(inside / n - p) < 5 * std::sqrt(p * (1 - p) / n));
}

TEST_CASE("philox: streams and seeds are independent", "[philox][deterministic]") {
  const uint64_t n = 4096;
  auto draw = [&](uint64_t seed, uint64_t stream) {
    std::vector<uint32_t> v(n);
    for (uint64_t i = 0; i < n; ++i) v[i] = philox_uint32(seed, stream, i);
    return v;
  };
  // Drawing a lot from stream A, before and in between, never changes stream B's values.
  std::vector<uint32_t> b_before = draw(kSeed, 11);
  volatile uint32_t sink = 0;
  for (uint64_t i = 0; i < 100000; ++i) sink = sink ^ philox_uint32(kSeed, 10, i);
  std::vector<uint32_t> b_after = draw(kSeed, 11);
  CHECK(b_before == b_after);
  // Different streams or seeds give different sequences: equal words at the same
  // position happen with probability 2^-32 each.
  auto same_positions = [&](const std::vector<uint32_t>& a, const std::vector<uint32_t>& b) {
    int same = 0;
    for (uint64_t i = 0; i < n; ++i) same += a[i] == b[i];
    return same;
  };
  std::vector<uint32_t> a = draw(kSeed, 10);
  CHECK(same_positions(a, b_after) <= 1);
  CHECK(same_positions(a, draw(kSeed + 1, 10)) <= 1);
  CHECK(same_positions(a, draw(kSeed ^ (1ull << 32), 10)) <= 1);
  CHECK(same_positions(a, draw(kSeed, 10 + (1ull << 32))) <= 1);
  // A stream is not a shifted copy of its neighbour.
  std::vector<uint32_t> c = draw(kSeed, 12);
  int shifted = 0;
  for (uint64_t i = 0; i + 4 < n; ++i) shifted += c[i] == b_after[i + 4];
  CHECK(shifted <= 1);
}

TEST_CASE("philox: draws are reproducible bit for bit", "[philox][deterministic]") {
  const size_t n = 4096;
  auto batch = [&] {
    std::vector<float> u(n), z(n);
    std::vector<double> d(n);
    for (size_t i = 0; i < n; ++i) u[i] = uniform_f32(kSeed, 21, i);
    for (size_t i = 0; i < n; ++i) z[i] = normal_f32(kSeed, 22, i);
    for (size_t i = 0; i < n; ++i) d[i] = uniform_f64(kSeed, 23, i);
    return std::make_tuple(u, z, d);
  };
  auto first = batch();
  auto second = batch();
  CHECK(std::get<0>(first) == std::get<0>(second));
  CHECK(std::memcmp(std::get<1>(first).data(), std::get<1>(second).data(), n * sizeof(float)) == 0);
  CHECK(std::get<2>(first) == std::get<2>(second));

  // Filling by whole blocks (as a kernel would) gives the per-position bits.
  std::vector<float> by_block(n);
  for (size_t b = 0; b < n / 4; ++b) {
    Philox4x32 w = philox_block(kSeed, 22, b);
    box_muller_f32(w.w[0], w.w[1], by_block[4 * b], by_block[4 * b + 1]);
    box_muller_f32(w.w[2], w.w[3], by_block[4 * b + 2], by_block[4 * b + 3]);
  }
  CHECK(std::memcmp(by_block.data(), std::get<1>(first).data(), n * sizeof(float)) == 0);

  // Pinned fingerprints: the bits are part of the contract (checkpoints, CPU == GPU), so a
  // change to the mapping, to Box-Muller or to ls_logf/ls_sinf/ls_cosf must show up here.
  CHECK(fingerprint(std::get<0>(first)) == 0x41169eff63eff21eull);
  CHECK(fingerprint(std::get<1>(first)) == 0xb6a3f7505ef29b20ull);
  CHECK(fingerprint(std::get<2>(first)) == 0xff756a4097d050dfull);
}
