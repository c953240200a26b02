// Dropout (kernels/dropout.h): the mask is the documented pure function of
// (seed, stream, step, i), its keep rate is 1 - p within CLT bounds, values and gradients
// follow y = x * m and dx = dy * m bit for bit, p = 0 and p = 1 are exact, float64 draws
// the same mask, and the bits are the same for every thread count.
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "base/parallel.h"
#include "base/simd.h"
#include "kernels/dropout.h"
#include "base/philox.h"
#include "test_util.h"

using namespace lockstep;
using lockstep_test::random_doubles;
using lockstep_test::random_floats;

namespace {

const uint64_t kSeed = 0x5eed1234abcdULL, kStream = 77;

std::vector<uint8_t> run_mask(int64_t n, float p, uint64_t seed, uint64_t stream, uint64_t step) {
  std::vector<float> x(n, 1.0f), y(n);
  std::vector<uint8_t> mask(n, 2);
  dropout_forward_cpu(Exec::current(), y.data(), mask.data(), x.data(), n, p, seed, stream, step);
  return mask;
}

int64_t count_kept(const std::vector<uint8_t>& m) {
  int64_t k = 0;
  for (uint8_t v : m) k += v;
  return k;
}

int64_t count_different(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  int64_t d = 0;
  for (size_t i = 0; i < a.size(); ++i) d += a[i] != b[i];
  return d;
}

}  // namespace

TEST_CASE("dropout: mask is uniform_f32(seed, stream, step * 2^40 + i) >= p", "[layers][dropout]") {
  const int64_t n = 10007;  // not a multiple of the 4 positions of a Philox block
  for (uint64_t step : {0ULL, 1ULL, 12345ULL}) {
    for (float p : {0.1f, 0.5f, 0.9f}) {
      INFO("step " << step << ", p " << p);
      std::vector<uint8_t> mask = run_mask(n, p, kSeed, kStream, step);
      int64_t bad = -1;
      for (int64_t i = 0; i < n && bad < 0; ++i) {
        const float u = uniform_f32(kSeed, kStream, step * (uint64_t(1) << 40) + static_cast<uint64_t>(i));
        if (mask[i] != (u >= p ? 1 : 0) || mask[i] != dropout_keep(kSeed, kStream, step, i, p)) bad = i;
      }
      INFO("first bad element " << bad);
      REQUIRE(bad == -1);
    }
  }
}

TEST_CASE("dropout: values and gradients are x * m and dy * m", "[layers][dropout]") {
  const int64_t n = 4099;
  const float p = 0.3f;
  std::vector<float> x = random_floats(n, 1, -4.f, 4.f), dy = random_floats(n, 2), y(n), dx(n);
  std::vector<uint8_t> mask(n);
  dropout_forward_cpu(Exec::current(), y.data(), mask.data(), x.data(), n, p, kSeed, kStream, 5);
  dropout_backward_cpu(Exec::current(), dx.data(), dy.data(), mask.data(), n, p);
  const float scale = 1.0f / (1.0f - p);
  std::vector<float> ey(n), edx(n);
  for (int64_t i = 0; i < n; ++i) {
    const float m = mask[i] ? scale : 0.0f;
    ey[i] = x[i] * m;
    edx[i] = dy[i] * m;
  }
  REQUIRE_BITWISE_EQUAL(y, ey);
  REQUIRE_BITWISE_EQUAL(dx, edx);

  SECTION("a dropped element is x * 0: -0 for negative x, NaN for inf and NaN (as PyTorch)") {
    const float inf = std::numeric_limits<float>::infinity();
    std::vector<float> xs(64), ys(64);
    for (int64_t i = 0; i < 64; ++i) xs[i] = i % 3 == 0 ? -2.0f : i % 3 == 1 ? inf : std::nanf("");
    std::vector<uint8_t> ms(64);
    dropout_forward_cpu(Exec::current(), ys.data(), ms.data(), xs.data(), 64, 0.5f, kSeed, kStream, 9);
    int dropped = 0;
    for (int64_t i = 0; i < 64; ++i) {
      if (ms[i]) continue;
      ++dropped;
      if (i % 3 == 0) {
        REQUIRE(ys[i] == 0.0f);
        REQUIRE(std::signbit(ys[i]));
      } else {
        REQUIRE(std::isnan(ys[i]));
      }
    }
    REQUIRE(dropped > 10);
  }
}

TEST_CASE("dropout: keep rate is 1 - p within CLT bounds", "[layers][dropout]") {
  const int64_t n = 1000000;
  for (float p : {0.1f, 0.5f, 0.9f}) {
    for (uint64_t step : {0ULL, 3ULL}) {
      const double expect = (1.0 - p) * n, sd = std::sqrt(n * p * (1.0 - p));
      const int64_t kept = count_kept(run_mask(n, p, kSeed, kStream, step));
      INFO("p " << p << ", step " << step << ": kept " << kept << ", expected " << expect << " +- " << sd);
      REQUIRE(std::fabs(kept - expect) < 5 * sd);
    }
  }
}

TEST_CASE("dropout: same key gives the same mask, another step, stream or seed another one",
          "[layers][dropout]") {
  const int64_t n = 100000;
  const float p = 0.5f;
  const std::vector<uint8_t> a = run_mask(n, p, kSeed, kStream, 7);
  REQUIRE(count_different(a, run_mask(n, p, kSeed, kStream, 7)) == 0);
  // independent masks differ in 2 p (1 - p) n = n / 2 places, within CLT bounds
  const double sd = std::sqrt(n * 0.5 * 0.5);
  for (auto other : {run_mask(n, p, kSeed, kStream, 8), run_mask(n, p, kSeed, kStream + 1, 7),
                     run_mask(n, p, kSeed + 1, kStream, 7)}) {
    const int64_t d = count_different(a, other);
    INFO("differing elements " << d);
    REQUIRE(std::fabs(d - 0.5 * n) < 5 * sd);
  }
  // element i does not depend on n: a shorter tensor gets the prefix of the same mask
  const std::vector<uint8_t> prefix = run_mask(1001, p, kSeed, kStream, 7);
  REQUIRE(std::memcmp(prefix.data(), a.data(), prefix.size()) == 0);
}

TEST_CASE("dropout: p = 0 is the identity, p = 1 drops everything", "[layers][dropout]") {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> x = random_floats(1003, 3);
  x[0] = -0.0f, x[1] = inf, x[2] = std::nanf("");
  std::vector<float> y(x.size()), dy = random_floats(x.size(), 4), dx(x.size());
  std::vector<uint8_t> mask(x.size(), 7);
  dropout_forward_cpu(Exec::current(), y.data(), mask.data(), x.data(), x.size(), 0.0f, kSeed, kStream, 1);
  REQUIRE(std::memcmp(y.data(), x.data(), x.size() * sizeof(float)) == 0);
  REQUIRE(count_kept(mask) == static_cast<int64_t>(x.size()));
  dropout_backward_cpu(Exec::current(), dx.data(), dy.data(), mask.data(), x.size(), 0.0f);
  REQUIRE_BITWISE_EQUAL(dx, dy);

  dropout_forward_cpu(Exec::current(), y.data(), mask.data(), x.data(), x.size(), 1.0f, kSeed, kStream, 1);
  REQUIRE(count_kept(mask) == 0);
  for (size_t i = 3; i < x.size(); ++i) REQUIRE(y[i] == 0.0f);
  REQUIRE(std::isnan(y[1]));  // inf * 0
  dropout_backward_cpu(Exec::current(), dx.data(), dy.data(), mask.data(), x.size(), 1.0f);
  for (float v : dx) REQUIRE(v == 0.0f);
}

TEST_CASE("dropout: float64 draws the same mask, its gradient matches finite differences",
          "[layers][dropout]") {
  const int64_t n = 1000;
  const float p = 0.25f;
  std::vector<double> x = random_doubles(n, 5), dy = random_doubles(n, 6), y(n), dx(n);
  std::vector<uint8_t> mask(n);
  dropout_forward_cpu(Exec::current(), y.data(), mask.data(), x.data(), n, p, kSeed, kStream, 11);
  REQUIRE(std::memcmp(mask.data(), run_mask(n, p, kSeed, kStream, 11).data(), n) == 0);
  for (int64_t i = 0; i < n; ++i) REQUIRE(y[i] == x[i] * (mask[i] ? 1.0 / (1.0 - 0.25) : 0.0));
  dropout_backward_cpu(Exec::current(), dx.data(), dy.data(), mask.data(), n, p);
  // L = sum(dy * y): central differences, one element at a time
  const double h = 1e-6;
  std::vector<double> fd(n), yp(n), ym(n);
  for (int64_t i = 0; i < n; ++i) {
    const double saved = x[i];
    x[i] = saved + h;
    dropout_forward_cpu(Exec::current(), yp.data(), nullptr, x.data(), n, p, kSeed, kStream, 11);
    x[i] = saved - h;
    dropout_forward_cpu(Exec::current(), ym.data(), nullptr, x.data(), n, p, kSeed, kStream, 11);
    x[i] = saved;
    fd[i] = dy[i] * (yp[i] - ym[i]) / (2 * h);
  }
  REQUIRE_ALLCLOSE(dx, fd, 1e-7, 1e-9);
}

TEST_CASE("dropout: same bits for every thread count, 20 repeats", "[layers][dropout][deterministic]") {
  const int64_t n = 100003;
  std::vector<float> x = random_floats(n, 7), dy = random_floats(n, 8);
  auto run = [&](std::vector<float>& y, std::vector<uint8_t>& mask, std::vector<float>& dx) {
    y.assign(n, -1.0f), mask.assign(n, 9), dx.assign(n, -1.0f);
    dropout_forward_cpu(Exec::current(), y.data(), mask.data(), x.data(), n, 0.2f, kSeed, kStream, 42);
    dropout_backward_cpu(Exec::current(), dx.data(), dy.data(), mask.data(), n, 0.2f);
  };
  std::vector<float> ry, rdx, y, dx;
  std::vector<uint8_t> rmask, mask;
  {
    ThreadsGuard tg(1);
    run(ry, rmask, rdx);
  }
  for (int threads : {1, 2, 3, 8}) {
    ThreadsGuard tg(threads);
    for (int rep = 0; rep < 20; ++rep) {
      run(y, mask, dx);
      REQUIRE_BITWISE_EQUAL(y, ry);
      REQUIRE_BITWISE_EQUAL(mask, rmask);
      REQUIRE_BITWISE_EQUAL(dx, rdx);
    }
  }
}

TEST_CASE("dropout: AVX2 and portable loops give the same y, mask and dx bits", "[layers][dropout][deterministic]") {
  if (!simd_available()) return;  // nothing to compare on a CPU without AVX2/FMA
  // lengths around the 32-element AVX2 group and the 4-element Philox block; a step whose
  // counter has high bits set; p on both sides of common values
  for (int64_t n : {1, 3, 4, 31, 32, 33, 100, 4097, 32768 + 5}) {
    for (uint64_t step : {0ULL, 7ULL, (1ULL << 24) - 1}) {
      for (float p : {0.2f, 0.5f, 0.97f}) {
        INFO("n " << n << ", step " << step << ", p " << p);
        const std::vector<float> x = random_floats(n, 11, -3.f, 3.f), dy = random_floats(n, 12);
        std::vector<float> y[2], dx[2];
        std::vector<uint8_t> mask[2];
        for (int simd = 0; simd < 2; ++simd) {
          SimdGuard sg(simd == 1);
          const Exec ex = Exec::current();  // the kernel runs at the level the guard set
          REQUIRE(ex.simd == (simd == 1 ? simd_level_available() : SimdLevel::scalar));
          y[simd].assign(n, 0.f), dx[simd].assign(n, 0.f), mask[simd].assign(n, 2);
          dropout_forward_cpu(ex, y[simd].data(), mask[simd].data(), x.data(), n, p, kSeed, kStream, step);
          dropout_backward_cpu(ex, dx[simd].data(), dy.data(), mask[simd].data(), n, p);
        }
        REQUIRE_BITWISE_EQUAL(y[1], y[0]);
        REQUIRE_BITWISE_EQUAL(mask[1], mask[0]);
        REQUIRE_BITWISE_EQUAL(dx[1], dx[0]);
        // and without a mask buffer (inference-style call): the same values
        std::vector<float> y_nomask(n);
        dropout_forward_cpu(Exec::current(), y_nomask.data(), nullptr, x.data(), n, p, kSeed, kStream, step);
        REQUIRE_BITWISE_EQUAL(y_nomask, y[0]);
      }
    }
  }
}
