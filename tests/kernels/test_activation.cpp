// Activation backward kernels (kernels/activation.h): float32 against float64 formulas
// written here, float64 against central finite differences of the library's own forwards
// (unary_cpu), the documented special cases, and the same bits for every thread count.
#include <cmath>
#include <functional>
#include <iterator>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "base/parallel.h"
#include "base/simd.h"
#include "kernels/activation.h"
#include "kernels/elementwise.h"
#include "test_util.h"

using namespace lockstep;
using lockstep_test::random_doubles;
using lockstep_test::random_floats;

namespace {

using Bwd32 = void (*)(const Exec&, float*, const float*, const float*, int64_t);
using Bwd64 = void (*)(const Exec&, double*, const double*, const double*, int64_t);

// The float64 derivatives, written from the calculus rather than from the kernels' order.
double relu_d(double x) { return x > 0 ? 1.0 : 0.0; }
double tanh_d_from_y(double y) { return 1.0 - y * y; }
double sigmoid_d_from_y(double y) { return y * (1.0 - y); }
double gelu_d(double x) {
  const double c = std::sqrt(2.0 / M_PI), k = 0.044715;
  const double u = c * (x + k * x * x * x);
  const double sech = 1.0 / std::cosh(u);
  return 0.5 * (1.0 + std::tanh(u)) + 0.5 * x * sech * sech * c * (1.0 + 3.0 * k * x * x);
}

// Inputs away from relu's kink, where a finite difference would straddle it.
std::vector<double> away_from_zero(std::vector<double> v) {
  for (double& x : v)
    if (std::fabs(x) < 1e-3) x = 0.5;
  return v;
}

// d/dx of the library forward `op` at every x[i], by central differences in float64.
std::vector<double> finite_diff(UnaryOp op, const std::vector<double>& x, double h) {
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<double> xp(x), xm(x), yp(x.size()), ym(x.size()), d(x.size());
  for (auto& v : xp) v += h;
  for (auto& v : xm) v -= h;
  unary_cpu(Exec::current(), op, yp.data(), xp.data(), n);
  unary_cpu(Exec::current(), op, ym.data(), xm.data(), n);
  for (size_t i = 0; i < x.size(); ++i) d[i] = (yp[i] - ym[i]) / (2 * h);
  return d;
}

struct Case {
  const char* name;
  UnaryOp op;
  bool from_output;  // the kernel takes y = op(x) instead of x
  Bwd32 bwd32;
  Bwd64 bwd64;
};

const Case kCases[] = {
    {"relu", UnaryOp::relu, false, relu_backward_cpu<float>, relu_backward_cpu<double>},
    {"tanh", UnaryOp::tanh, true, tanh_backward_cpu<float>, tanh_backward_cpu<double>},
    {"sigmoid", UnaryOp::sigmoid, true, sigmoid_backward_cpu<float>, sigmoid_backward_cpu<double>},
    {"gelu", UnaryOp::gelu, false, gelu_backward_cpu<float>, gelu_backward_cpu<double>},
};

}  // namespace

TEST_CASE("activation backward: float32 matches float64 formulas", "[layers][activation]") {
  const int64_t n = 5000;
  std::vector<float> x = random_floats(n, 11, -6.f, 6.f), dy = random_floats(n, 12, -2.f, 2.f);
  for (const Case& c : kCases) {
    INFO(c.name);
    std::vector<float> in(x);
    if (c.from_output) unary_cpu(Exec::current(), c.op, in.data(), x.data(), n);
    std::vector<float> dx(n);
    c.bwd32(Exec::current(), dx.data(), dy.data(), in.data(), n);
    std::vector<double> ref(n);
    for (int64_t i = 0; i < n; ++i) {
      const double xi = x[i], yi = in[i];
      double d = 0;
      switch (c.op) {
        case UnaryOp::relu: d = relu_d(xi); break;
        case UnaryOp::tanh: d = tanh_d_from_y(yi); break;
        case UnaryOp::sigmoid: d = sigmoid_d_from_y(yi); break;
        default: d = gelu_d(xi); break;
      }
      ref[i] = static_cast<double>(dy[i]) * d;
    }
    // a few float roundings. For x < -3 gelu's 1 - t*t and 1 + t cancel (t is near -1): their
    // absolute error of ~1e-7 is multiplied by 0.5 |x| du ~ 5 and |dy| <= 2 in the right term
    const double atol = c.op == UnaryOp::gelu ? 3e-6 : 5e-7;
    REQUIRE_ALLCLOSE(dx, ref, 2e-6, atol);
  }
}

TEST_CASE("activation backward: float64 matches finite differences of the forward", "[layers][activation]") {
  const int64_t n = 2000;
  const double h = 1e-6;
  std::vector<double> x = away_from_zero(random_doubles(n, 21, -5.0, 5.0));
  std::vector<double> dy = random_doubles(n, 22, -2.0, 2.0);
  for (const Case& c : kCases) {
    INFO(c.name);
    std::vector<double> in(x);
    if (c.from_output) unary_cpu(Exec::current(), c.op, in.data(), x.data(), n);
    std::vector<double> dx(n), expect = finite_diff(c.op, x, h);
    c.bwd64(Exec::current(), dx.data(), dy.data(), in.data(), n);
    for (int64_t i = 0; i < n; ++i) expect[i] *= dy[i];
    REQUIRE_ALLCLOSE(dx, expect, 1e-7, 1e-9);
  }
}

TEST_CASE("activation backward: documented special values", "[layers][activation]") {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  SECTION("relu: 0 at x == 0 (either sign), dy passes for x > 0 and for NaN x") {
    std::vector<float> x = {0.0f, -0.0f, -1.0f, 2.0f, nan, -inf, inf}, dy(7, 3.0f), dx(7);
    relu_backward_cpu(Exec::current(), dx.data(), dy.data(), x.data(), 7);
    std::vector<float> expect = {0.0f, 0.0f, 0.0f, 3.0f, 3.0f, 0.0f, 3.0f};
    REQUIRE_BITWISE_EQUAL(dx, expect);
  }
  SECTION("tanh: the exact order dy * (1 - y * y)") {
    std::vector<float> y = random_floats(257, 31), dy = random_floats(257, 32), dx(257);
    y.push_back(1.0f), y.push_back(-1.0f), dy.push_back(5.0f), dy.push_back(5.0f), dx.resize(259);
    tanh_backward_cpu(Exec::current(), dx.data(), dy.data(), y.data(), 259);
    std::vector<float> expect(259);
    for (size_t i = 0; i < 259; ++i) {
      const float s = y[i] * y[i];
      const float u = 1.0f - s;
      expect[i] = dy[i] * u;
    }
    REQUIRE_BITWISE_EQUAL(dx, expect);
    REQUIRE(dx[257] == 0.0f);
  }
  SECTION("sigmoid: the exact order (dy * (1 - y)) * y") {
    std::vector<float> y = random_floats(257, 33, 0.f, 1.f), dy = random_floats(257, 34), dx(257);
    sigmoid_backward_cpu(Exec::current(), dx.data(), dy.data(), y.data(), 257);
    std::vector<float> expect(257);
    for (size_t i = 0; i < 257; ++i) {
      const float u = 1.0f - y[i];
      const float v = dy[i] * u;
      expect[i] = v * y[i];
    }
    REQUIRE_BITWISE_EQUAL(dx, expect);
  }
  SECTION("gelu: tends to 1 and 0 for large |x|, finite everywhere, 0.5 at 0") {
    std::vector<float> x = {0.0f, 10.0f, -10.0f, 1e30f, -1e30f, 100.0f, -100.0f}, dy(7, 1.0f), dx(7);
    gelu_backward_cpu(Exec::current(), dx.data(), dy.data(), x.data(), 7);
    REQUIRE(dx[0] == 0.5f);
    REQUIRE(dx[1] == Approx(1.0).epsilon(1e-6));
    REQUIRE(std::fabs(dx[2]) < 1e-6f);
    REQUIRE(dx[5] == 1.0f);
    REQUIRE(dx[6] == 0.0f);
    // x^3 overflows to inf there: tanh(+-inf) = +-1 and the right term is x * 0 * inf = NaN,
    // as in PyTorch's formula; documented rather than hidden
    REQUIRE(std::isnan(dx[3]));
  }
}

TEST_CASE("activation backward: same bits for every thread count, 20 repeats",
          "[layers][activation][deterministic]") {
  const int64_t n = 100003;
  std::vector<float> x = random_floats(n, 41, -6.f, 6.f), dy = random_floats(n, 42);
  for (const Case& c : kCases) {
    INFO(c.name);
    std::vector<float> in(x);
    if (c.from_output) unary_cpu(Exec::current(), c.op, in.data(), x.data(), n);
    std::vector<float> ref(n);
    {
      ThreadsGuard tg(1);
      c.bwd32(Exec::current(), ref.data(), dy.data(), in.data(), n);
    }
    for (int threads : {1, 2, 3, 8}) {
      ThreadsGuard tg(threads);
      for (int rep = 0; rep < 20; ++rep) {
        std::vector<float> dx(n, -7.0f);
        c.bwd32(Exec::current(), dx.data(), dy.data(), in.data(), n);
        REQUIRE_BITWISE_EQUAL(dx, ref);
      }
    }
  }
}

// gelu and silu run a vectorised loop with AVX2 (activation_avx2.cpp): the same bits as the
// portable loop, on ordinary inputs and on the edges (0, -0, huge, inf, NaN, subnormal).
TEST_CASE("activation backward: gelu and silu, SIMD and scalar give the same bits",
          "[layers][activation][deterministic]") {
  const int64_t n = 20011;
  std::vector<double> x64 = random_doubles(n, 51, -12.0, 12.0), dy64 = random_doubles(n, 52, -2.0, 2.0);
  const double edges[] = {0.0, -0.0, 1e-40, -1e-40, 0.5625, -0.5625, 9.0, 20.0, -20.0, 1e20, -1e20,
                          std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(),
                          std::numeric_limits<double>::quiet_NaN()};
  for (size_t i = 0; i < std::size(edges); ++i) x64[i * 7] = edges[i];
  std::vector<float> x32(x64.begin(), x64.end()), dy32(dy64.begin(), dy64.end());
  auto run = [&](bool simd, Bwd32 f32, Bwd64 f64, std::vector<float>& o32, std::vector<double>& o64) {
    SimdGuard sg(simd);
    const Exec ex = Exec::current();
    REQUIRE(ex.simd == (simd ? simd_level_available() : SimdLevel::scalar));
    o32.assign(n, -7.0f);
    o64.assign(n, -7.0);
    f32(ex, o32.data(), dy32.data(), x32.data(), n);
    f64(ex, o64.data(), dy64.data(), x64.data(), n);
  };
  const std::pair<Bwd32, Bwd64> ops[] = {{gelu_backward_cpu<float>, gelu_backward_cpu<double>},
                                         {silu_backward_cpu<float>, silu_backward_cpu<double>}};
  for (const auto& [f32, f64] : ops) {
    std::vector<float> s32, v32;
    std::vector<double> s64, v64;
    run(false, f32, f64, s32, s64);
    for (int threads : {1, 3}) {
      ThreadsGuard tg(threads);
      run(true, f32, f64, v32, v64);
      REQUIRE_BITWISE_EQUAL(v32, s32);
      REQUIRE_BITWISE_EQUAL(v64, s64);
    }
  }
}

// gelu with its tanh kept (what autograd's gelu uses on the CPU): y is unary gelu's bits and
// the backward from the kept t is gelu_backward_cpu's bits, at every SIMD level and thread
// count, on ordinary inputs and on the edges.
TEST_CASE("activation: gelu with the tanh kept gives unary gelu's and gelu_backward's bits",
          "[layers][activation][deterministic]") {
  const int64_t n = 20011;
  std::vector<double> x64 = random_doubles(n, 53, -12.0, 12.0), dy64 = random_doubles(n, 54, -2.0, 2.0);
  const double edges[] = {0.0, -0.0, 1e-40, -1e-40, 0.5625, -0.5625, 9.0, 20.0, -20.0, 1e20, -1e20,
                          std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(),
                          std::numeric_limits<double>::quiet_NaN()};
  for (size_t i = 0; i < std::size(edges); ++i) x64[i * 7] = edges[i];
  std::vector<float> x32(x64.begin(), x64.end()), dy32(dy64.begin(), dy64.end());
  auto check = [&](auto* x, auto* dy) {
    using T = std::remove_pointer_t<decltype(x)>;
    std::vector<T> want_y(n), want_dx(n);
    {
      SimdGuard sg(false);
      unary_cpu(Exec::current(), UnaryOp::gelu, want_y.data(), x, n);
      gelu_backward_cpu(Exec::current(), want_dx.data(), dy, x, n);
    }
    for (bool simd : {false, true})
      for (int threads : {1, 3}) {
        SimdGuard sg(simd);
        ThreadsGuard tg(threads);
        const Exec ex = Exec::current();
        std::vector<T> y(n, T(-7)), t(n, T(-7)), dx(n, T(-7));
        gelu_forward_keep_cpu(ex, y.data(), t.data(), x, n);
        gelu_backward_kept_cpu(ex, dx.data(), dy, x, t.data(), n);
        INFO("simd " << simd << ", threads " << threads << ", float64 " << (sizeof(T) == 8));
        REQUIRE_BITWISE_EQUAL(y, want_y);
        REQUIRE_BITWISE_EQUAL(dx, want_dx);
      }
  };
  check(x32.data(), dy32.data());
  check(x64.data(), dy64.data());
}
