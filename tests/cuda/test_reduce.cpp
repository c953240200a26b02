// CUDA reductions against the CPU kernels: bitwise in deterministic mode (contiguous and
// batch order, max/argmax with NaN and ties), within 1e-5 sum|x| in fast mode (atomics).
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "cuda_test_util.h"
#include "kernels/reduce.h"

using namespace lockstep;
using namespace lockstep_cuda_test;

namespace {

template <typename T>
std::vector<T> values(size_t n, uint32_t seed) {
  if constexpr (std::is_same<T, float>::value)
    return lockstep_test::random_floats(n, seed);
  else
    return lockstep_test::random_doubles(n, seed);
}

template <typename T>
void check_sums() {
  for (int64_t n : {0, 1, 3, 7, 17, 31, 32, 33, 129, 1000, 4095, 4096, 4097, 10000, 100003}) {
    INFO("n " << n);
    auto x = values<T>(static_cast<size_t>(n), static_cast<uint32_t>(n) + 1);
    T want;
    sum_cpu(Exec::current(), &want, x.data(), n);
    Tensor dx = dev(x), out = dev_empty<T>(1);
    sum_cuda(Exec::current(), out.data<T>(), dx.data<T>(), n);
    REQUIRE_BITWISE_EQUAL(host<T>(out, 1), std::vector<T>{want});
  }
  const int64_t shapes[][2] = {{1, 1}, {3, 4097}, {129, 17}, {7, 9000}, {1000, 10}, {2, 12289}, {5, 0}};
  for (auto& s : shapes) {
    const int64_t rows = s[0], cols = s[1];
    INFO("rows " << rows << " cols " << cols);
    auto x = values<T>(static_cast<size_t>(rows * cols), 11);
    std::vector<T> want(static_cast<size_t>(rows));
    sum_rows_cpu(Exec::current(), want.data(), x.data(), rows, cols);
    Tensor dx = dev(x), out = dev_empty<T>(rows);
    sum_rows_cuda(Exec::current(), out.data<T>(), dx.data<T>(), rows, cols);
    REQUIRE_BITWISE_EQUAL(host<T>(out, rows), want);
  }
}

template <typename T>
void check_batch_sums() {
  const int64_t shapes[][2] = {{1, 1}, {33, 7}, {1000, 129}, {65, 3}, {32, 5}, {4096, 10}, {0, 4}};
  for (auto& s : shapes)
    for (bool acc : {false, true}) {
      const int64_t rows = s[0], cols = s[1];
      INFO("rows " << rows << " cols " << cols << " accumulate " << acc);
      auto x = values<T>(static_cast<size_t>(rows * cols), 21);
      auto init = values<T>(static_cast<size_t>(cols), 22);
      std::vector<T> want = init;
      sum_cols_cpu(Exec::current(), want.data(), x.data(), rows, cols, acc);
      Tensor dx = dev(x), out = dev(init);
      sum_cols_cuda(Exec::current(), out.data<T>(), dx.data<T>(), rows, cols, acc);
      REQUIRE_BITWISE_EQUAL(host<T>(out, cols), want);
    }
  // outer x d x inner
  const int64_t mids[][3] = {{3, 100, 17}, {2, 1, 5}, {4, 33, 1}, {1, 129, 64}};
  for (auto& m : mids) {
    INFO("outer " << m[0] << " d " << m[1] << " inner " << m[2]);
    auto x = values<T>(static_cast<size_t>(m[0] * m[1] * m[2]), 31);
    std::vector<T> want(static_cast<size_t>(m[0] * m[2]));
    sum_mid_cpu(Exec::current(), want.data(), x.data(), m[0], m[1], m[2]);
    Tensor dx = dev(x), out = dev_empty<T>(m[0] * m[2]);
    sum_mid_cuda(Exec::current(), out.data<T>(), dx.data<T>(), m[0], m[1], m[2]);
    REQUIRE_BITWISE_EQUAL(host<T>(out, m[0] * m[2]), want);
  }
}

template <typename T>
void check_max() {
  const int64_t shapes[][3] = {{1, 1, 1}, {7, 129, 1}, {3, 17, 5}, {100, 10, 1}, {2, 5000, 3}};
  for (auto& s : shapes) {
    const int64_t outer = s[0], d = s[1], inner = s[2];
    auto x = values<T>(static_cast<size_t>(outer * d * inner), 41);
    // ties and NaN: equal maxima in slice 0, a NaN in the last slice
    if (d > 2) x[static_cast<size_t>(inner)] = x[static_cast<size_t>(2 * inner)] = T(7);
    if (outer > 1 && d > 3) x[static_cast<size_t>((outer - 1) * d * inner + 3 * inner)] = std::numeric_limits<T>::quiet_NaN();
    INFO("outer " << outer << " d " << d << " inner " << inner);
    std::vector<T> want(static_cast<size_t>(outer * inner));
    std::vector<int64_t> want_i(want.size());
    max_cpu(Exec::current(), want.data(), x.data(), outer, d, inner);
    argmax_cpu(Exec::current(), want_i.data(), x.data(), outer, d, inner);
    Tensor dx = dev(x), out = dev_empty<T>(outer * inner), idx = dev_empty<int64_t>(outer * inner);
    max_cuda(Exec::current(), out.data<T>(), dx.data<T>(), outer, d, inner);
    argmax_cuda(Exec::current(), idx.data<int64_t>(), dx.data<T>(), outer, d, inner);
    REQUIRE_BITWISE_EQUAL(host<T>(out, outer * inner), want);
    REQUIRE(host<int64_t>(idx, outer * inner) == want_i);
  }
}

}  // namespace

TEST_CASE("cuda reduce: contiguous-order sums equal the CPU", "[cuda][reduce][deterministic]") {
  check_sums<float>();
  check_sums<double>();
}

TEST_CASE("cuda reduce: batch-order sums equal the CPU", "[cuda][reduce][deterministic]") {
  check_batch_sums<float>();
  check_batch_sums<double>();
}

TEST_CASE("cuda reduce: max and argmax equal the CPU with ties and NaN", "[cuda][reduce][deterministic]") {
  check_max<float>();
  check_max<double>();
}

TEST_CASE("cuda reduce: op-level sum and mean over every dim equal the CPU", "[cuda][reduce][deterministic]") {
  auto v = lockstep_test::random_floats(6 * 129 * 7, 9);
  Tensor x = Tensor::from_vector(v, {6, 129, 7}), xd = x.to(Device::cuda);
  REQUIRE(equal_bits(sum(x), sum(xd)));
  REQUIRE(equal_bits(mean(x), mean(xd)));
  for (int64_t d = 0; d < 3; ++d) {
    REQUIRE(equal_bits(sum(x, d), sum(xd, d)));
    REQUIRE(equal_bits(mean(x, d, true), mean(xd, d, true)));
    REQUIRE(equal_bits(max(x, d), max(xd, d)));
    REQUIRE(equal_bits(argmax(x, d), argmax(xd, d)));
  }
}

TEST_CASE("cuda reduce: fast-mode atomic sums within 1e-5 sum|x|", "[cuda][reduce][fast]") {
  for (int64_t n : {1, 1000, 100003, 1 << 20}) {
    auto x = lockstep_test::random_floats(static_cast<size_t>(n), 3);
    double ref = 0, mag = 0;
    for (float v : x) ref += v, mag += std::fabs(v);
    Tensor dx = dev(x), out = dev_empty<float>(1);
    sum_fast_cuda(Exec::current(), out.data<float>(), dx.data<float>(), n);
    REQUIRE(std::fabs(host<float>(out, 1)[0] - ref) <= 1e-5 * mag);
  }
  const int64_t rows = 300, cols = 70;
  auto x = lockstep_test::random_floats(rows * cols, 4);
  Tensor dx = dev(x), out = dev_empty<float>(cols), out_r = dev_empty<float>(rows);
  sum_mid_fast_cuda(Exec::current(), out.data<float>(), dx.data<float>(), 1, rows, cols);
  sum_rows_fast_cuda(Exec::current(), out_r.data<float>(), dx.data<float>(), rows, cols);
  auto got = host<float>(out, cols), got_r = host<float>(out_r, rows);
  for (int64_t j = 0; j < cols; ++j) {
    double ref = 0, mag = 0;
    for (int64_t r = 0; r < rows; ++r) ref += x[r * cols + j], mag += std::fabs(x[r * cols + j]);
    REQUIRE(std::fabs(got[j] - ref) <= 1e-5 * mag);
  }
  for (int64_t r = 0; r < rows; ++r) {
    double ref = 0, mag = 0;
    for (int64_t j = 0; j < cols; ++j) ref += x[r * cols + j], mag += std::fabs(x[r * cols + j]);
    REQUIRE(std::fabs(got_r[r] - ref) <= 1e-5 * mag);
  }
}
