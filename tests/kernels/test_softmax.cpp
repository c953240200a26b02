// Softmax and log-softmax (kernels/softmax.h, core/ops/softmax.cpp): against float64
// references, bit for bit against the documented steps written out here, the same bits for
// any thread count, SIMD path and batch, and the edge cases (huge inputs, -inf, length 1).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "base/mode.h"
#include "base/parallel.h"
#include "base/simd.h"
#include "core/tensor.h"
#include "base/math.h"
#include "kernels/reduce.h"
#include "kernels/softmax.h"
#include "test_util.h"

using namespace lockstep;
using lockstep_test::kThreadCounts;
using lockstep_test::random_floats;

namespace {

const float kInf = std::numeric_limits<float>::infinity();

// The steps of kernels/softmax.h for one row.
std::vector<float> steps(const float* x, int64_t n, bool log_form) {
  float m = x[0];
  for (int64_t j = 1; j < n; ++j) m = std::isnan(m) ? m : (x[j] > m || std::isnan(x[j])) ? x[j] : m;
  std::vector<float> e(n);
  for (int64_t j = 0; j < n; ++j) e[j] = ls_expf(x[j] - m);
  const float s = sum_cpu_ref(e.data(), n);  // the contiguous order (checked in test_reduce.cpp)
  for (int64_t j = 0; j < n; ++j) e[j] = log_form ? (x[j] - m) - ls_logf(s) : e[j] / s;
  return e;
}

// float64 reference of one row.
std::vector<double> reference(const float* x, int64_t n, bool log_form) {
  double m = -INFINITY;
  for (int64_t j = 0; j < n; ++j) m = std::max<double>(m, x[j]);
  double s = 0;
  for (int64_t j = 0; j < n; ++j) s += std::exp(static_cast<double>(x[j]) - m);
  std::vector<double> y(n);
  for (int64_t j = 0; j < n; ++j) y[j] = log_form ? (x[j] - m) - std::log(s) : std::exp(x[j] - m) / s;
  return y;
}

void run(bool log_form, float* y, const float* x, int64_t rows, int64_t cols) {
  log_form ? log_softmax_forward_cpu(Exec::current(), y, x, rows, cols) : softmax_forward_cpu(Exec::current(), y, x, rows, cols);
}

}  // namespace

TEST_CASE("softmax_forward_cpu: accurate and equal to the documented steps", "[softmax][deterministic]") {
  const int64_t widths[] = {1, 3, 7, 17, 129, 1000, 4095, 4096, 4097, 100003};
  for (bool log_form : {false, true}) {
    for (int64_t cols : widths) {
      const int64_t rows = std::max<int64_t>(1, 20000 / cols);
      std::vector<float> x = random_floats(rows * cols, static_cast<uint32_t>(cols), -8, 8);
      std::vector<float> want, got(rows * cols);
      std::vector<double> ref;
      for (int64_t r = 0; r < rows; ++r) {
        std::vector<float> w = steps(&x[r * cols], cols, log_form);
        std::vector<double> f = reference(&x[r * cols], cols, log_form);
        want.insert(want.end(), w.begin(), w.end());
        ref.insert(ref.end(), f.begin(), f.end());
      }
      INFO((log_form ? "log_softmax" : "softmax") << ", " << rows << "x" << cols);
      // exp and log are <= 2 ulp, the sum adds <= ~140 eps relative; log_softmax also has
      // the absolute error of log(s), ~ eps * log(s)
      REQUIRE_ALLCLOSE(want, ref, 2e-6, log_form ? 1e-6 : 1e-9);
      for (bool simd : {false, true}) {
        SimdGuard sg(simd);
        for (int t : kThreadCounts) {
          ThreadsGuard tg(t);
          std::fill(got.begin(), got.end(), -1.0f);
          run(log_form, got.data(), x.data(), rows, cols);
          INFO("simd " << simd << ", threads " << t);
          REQUIRE_BITWISE_EQUAL(got, want);
        }
      }
    }
  }
}

TEST_CASE("softmax_forward_cpu: 20 runs, and a row alone equals the row in a batch", "[softmax][deterministic]") {
  const int64_t rows = 64, cols = 1000;
  std::vector<float> x = random_floats(rows * cols, 3, -20, 20);
  std::vector<float> first(rows * cols), again(rows * cols), alone(cols);
  softmax_forward_cpu(Exec::current(), first.data(), x.data(), rows, cols);
  for (int rep = 0; rep < 20; ++rep) {
    ThreadsGuard tg(1 + rep % 4);
    softmax_forward_cpu(Exec::current(), again.data(), x.data(), rows, cols);
    REQUIRE_BITWISE_EQUAL(again, first);
  }
  for (int64_t r : {int64_t(0), int64_t(17), rows - 1}) {
    softmax_forward_cpu(Exec::current(), alone.data(), &x[r * cols], 1, cols);
    REQUIRE(std::memcmp(alone.data(), &first[r * cols], cols * sizeof(float)) == 0);
  }
}

TEST_CASE("softmax_forward_cpu: large inputs, -inf, length 1, NaN", "[softmax][deterministic]") {
  // huge logits: without the max shift exp would overflow
  std::vector<float> big = {1e4f, 1e4f - 1, 1e4f - 2, -1e4f};
  std::vector<float> y(4), ly(4);
  softmax_forward_cpu(Exec::current(), y.data(), big.data(), 1, 4);
  log_softmax_forward_cpu(Exec::current(), ly.data(), big.data(), 1, 4);
  const double s = 1 + std::exp(-1.0) + std::exp(-2.0);
  REQUIRE(std::fabs(y[0] - 1 / s) < 1e-6);
  REQUIRE(y[3] == 0);
  REQUIRE(std::fabs(ly[1] - (-1 - std::log(s))) < 1e-6);
  REQUIRE(std::isfinite(ly[3]));
  // -inf entries give 0 and -inf
  std::vector<float> m = {0, -kInf, 0, -kInf};
  softmax_forward_cpu(Exec::current(), y.data(), m.data(), 1, 4);
  log_softmax_forward_cpu(Exec::current(), ly.data(), m.data(), 1, 4);
  REQUIRE(y == std::vector<float>{0.5f, 0, 0.5f, 0});
  REQUIRE(ly[1] == -kInf);
  REQUIRE(std::fabs(ly[0] - std::log(0.5)) < 1e-7);
  // rows of length 1
  std::vector<float> one = {-3, 0, 1e30f};
  std::vector<float> y1(3), l1(3);
  softmax_forward_cpu(Exec::current(), y1.data(), one.data(), 3, 1);
  log_softmax_forward_cpu(Exec::current(), l1.data(), one.data(), 3, 1);
  REQUIRE(y1 == std::vector<float>{1, 1, 1});
  REQUIRE(l1 == std::vector<float>{0, 0, 0});
  // all -inf, or a NaN: NaN rows (as in PyTorch), other rows untouched
  std::vector<float> bad = {-kInf, -kInf, 1, std::nanf(""), 1, 2};
  std::vector<float> yb(6);
  softmax_forward_cpu(Exec::current(), yb.data(), bad.data(), 3, 2);
  REQUIRE(std::isnan(yb[0]));
  REQUIRE(std::isnan(yb[2]));
  REQUIRE(std::isnan(yb[3]));
  REQUIRE(std::fabs(yb[5] - 1 / (1 + std::exp(-1.0))) < 1e-7);
}

TEST_CASE("softmax ops: any shape over the last dim, float64, 0-d and empty", "[softmax][deterministic]") {
  std::vector<float> v = random_floats(2 * 3 * 5, 9, -4, 4);
  Tensor x = Tensor::from_vector(v, {2, 3, 5});
  std::vector<float> y = softmax(x).to_vector<float>();
  std::vector<float> ly = log_softmax(x).to_vector<float>();
  for (int r = 0; r < 6; ++r) {
    std::vector<float> w = steps(&v[r * 5], 5, false), lw = steps(&v[r * 5], 5, true);
    for (int j = 0; j < 5; ++j) {
      REQUIRE(y[r * 5 + j] == w[j]);
      REQUIRE(ly[r * 5 + j] == lw[j]);
    }
  }
  // a transposed view: rows are the columns of the original
  Tensor t = Tensor::from_vector(std::vector<float>{0, 1, 0, 1}, {2, 2}).t();
  REQUIRE(softmax(t).to_vector<float>() == std::vector<float>{0.5f, 0.5f, 0.5f, 0.5f});
  Tensor d = Tensor::from_vector(std::vector<double>{0.0, std::log(3.0)}, {2});
  std::vector<double> yd = softmax(d).to_vector<double>();
  REQUIRE(std::fabs(yd[0] - 0.25) < 1e-15);
  REQUIRE(std::fabs(yd[1] - 0.75) < 1e-15);
  REQUIRE(softmax(Tensor::scalar(7.0)).item() == 1);
  REQUIRE(log_softmax(Tensor::scalar(7.0)).item() == 0);
  REQUIRE(softmax(Tensor::zeros({0, 4})).shape() == Shape{0, 4});
  REQUIRE(softmax(Tensor::zeros({3, 0})).shape() == Shape{3, 0});
  // the kernel is deterministic in fast mode too
  ModeGuard mg(Mode::fast);
  REQUIRE(softmax(x).to_vector<float>() == y);
}
