// base/math.h: ulp error against libm in a wider format over dense sweeps, special
// values, overflow/underflow thresholds, monotonicity, symmetry, and AVX2 == scalar bits.
// Each sweep prints its max ulp error; `lockstep_tests "[math]"` reproduces docs/math.md.
#include <catch2/catch.hpp>

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "base/math.h"

using namespace lockstep;

namespace {

// ---- floats in order: an integer key that counts representable numbers ----

int64_t order_f32(float x) {
  uint32_t u = ls_f32_bits(x);
  return (u & 0x80000000u) ? -static_cast<int64_t>(u & 0x7fffffffu) : static_cast<int64_t>(u);
}

float from_order_f32(int64_t k) {
  return k < 0 ? ls_f32_from_bits(0x80000000u | static_cast<uint32_t>(-k))
               : ls_f32_from_bits(static_cast<uint32_t>(k));
}

int64_t order_f64(double x) {
  uint64_t u = ls_f64_bits(x);
  uint64_t mag = u & 0x7fffffffffffffffull;
  return (u >> 63) ? -static_cast<int64_t>(mag) : static_cast<int64_t>(mag);
}

double from_order_f64(int64_t k) {
  return k < 0 ? ls_f64_from_bits(0x8000000000000000ull | static_cast<uint64_t>(-k))
               : ls_f64_from_bits(static_cast<uint64_t>(k));
}

// ---- ulp error: |got - ref| in units of the spacing of the format at ref ----

// The spacing of floats in the binade of ref (subnormal spacing 2^-149 below 2^-126).
// A result of inf counts as 2^128, and is exact when ref rounds to inf.
double ulp_error_f32(float got, double ref) {
  const double top = 0x1p128;
  double g = std::isinf(got) ? std::copysign(top, got) : static_cast<double>(got);
  if (std::isinf(got) && std::fabs(ref) >= top - 0x1p103 && std::signbit(ref) == std::signbit(got))
    return 0.0;
  int e = 0;
  std::frexp(ref, &e);
  double ulp = std::ldexp(1.0, e - 24 < -149 ? -149 : e - 24);
  if (ref == 0.0) ulp = 0x1p-149;
  return std::fabs(g - ref) / ulp;
}

double ulp_error_f64(double got, long double ref) {
  const long double top = 0x1p1024L;
  long double g = std::isinf(got) ? (got > 0 ? top : -top) : static_cast<long double>(got);
  if (std::isinf(got) && fabsl(ref) >= top - 0x1p970L && std::signbit(ref) == std::signbit(got))
    return 0.0;
  int e = 0;
  frexpl(ref, &e);
  long double ulp = ldexpl(1.0L, e - 53 < -1074 ? -1074 : e - 53);
  if (ref == 0.0L) ulp = 0x1p-1074L;
  return static_cast<double>(fabsl(g - ref) / ulp);
}

struct Worst {
  double ulp = 0;
  double x = 0;
  uint64_t points = 0;
  void add(double err, double at) {
    ++points;
    if (err > ulp || err != err) ulp = err, x = at;
  }
  void merge(const Worst& o) {
    points += o.points;
    if (o.ulp > ulp) ulp = o.ulp, x = o.x;
  }
};

void report(const char* name, const Worst& w) {
  std::printf("[math] %-10s max %.3f ulp at x = %.9g (%llu points)\n", name, w.ulp, w.x,
              static_cast<unsigned long long>(w.points));
}

// Every `stride`-th float in [lo, hi] (by bit pattern), and hi itself.
template <class F, class R>
Worst sweep_f32(F f, R ref, float lo, float hi, int64_t stride) {
  Worst w;
  int64_t a = order_f32(lo), b = order_f32(hi);
  for (int64_t k = a; k <= b; k += stride) {
    float x = from_order_f32(k);
    w.add(ulp_error_f32(f(x), ref(static_cast<double>(x))), x);
  }
  w.add(ulp_error_f32(f(hi), ref(static_cast<double>(hi))), hi);
  return w;
}

// About n doubles in [lo, hi], evenly spaced by bit pattern with an odd stride (so the
// low mantissa bits vary), counted in unsigned steps so nothing overflows.
std::vector<double> spaced_f64(double lo, double hi, uint64_t n) {
  uint64_t a = static_cast<uint64_t>(order_f64(lo));
  uint64_t span = static_cast<uint64_t>(order_f64(hi)) - a;
  uint64_t stride = (span / n) | 1;
  std::vector<double> xs;
  for (uint64_t j = 0; j <= span / stride; ++j)
    xs.push_back(from_order_f64(static_cast<int64_t>(a + j * stride)));
  return xs;
}

template <class F, class R>
Worst sweep_f64(F f, R ref, double lo, double hi, uint64_t n) {
  Worst w;
  for (double x : spaced_f64(lo, hi, n)) w.add(ulp_error_f64(f(x), ref(static_cast<long double>(x))), x);
  return w;
}

bool same_bits(float a, float b) { return ls_f32_bits(a) == ls_f32_bits(b); }
bool same_bits(double a, double b) { return ls_f64_bits(a) == ls_f64_bits(b); }

double ref_exp(double x) { return std::exp(x); }
double ref_log(double x) { return std::log(x); }
double ref_tanh(double x) { return std::tanh(x); }
double ref_sin(double x) { return std::sin(x); }
double ref_cos(double x) { return std::cos(x); }
double ref_sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// A prime stride, so the low mantissa bits take every value; about 10 million points per
// function.
constexpr int64_t kStride = 211;

}  // namespace

TEST_CASE("ls_expf: <= 2 ulp on -104..89 and the thresholds", "[math]") {
  Worst w = sweep_f32([](float x) { return ls_expf(x); }, ref_exp, -104.0f, 89.0f, kStride);
  // Every float at the underflow edge, the subnormal boundary and the overflow edge.
  w.merge(sweep_f32([](float x) { return ls_expf(x); }, ref_exp, -104.0f, -102.0f, 1));
  w.merge(sweep_f32([](float x) { return ls_expf(x); }, ref_exp, -88.0f, -87.0f, 1));
  w.merge(sweep_f32([](float x) { return ls_expf(x); }, ref_exp, 88.5f, 89.0f, 1));
  report("expf", w);
  CHECK(w.ulp <= 2.0);

  // Around ln(FLT_MAX) and ln(2^-150) the result must be inf, resp. +0, exactly when the
  // true value rounds there (the neighbouring floats are many ulps from those edges).
  for (double edge : {std::log(static_cast<double>(FLT_MAX)), std::log(0x1p-150)}) {
    float x0 = static_cast<float>(edge);
    for (int64_t d = -3; d <= 3; ++d) {
      float x = from_order_f32(order_f32(x0) + d);
      double ref = std::exp(static_cast<double>(x));
      INFO("x = " << x);
      CHECK(std::isinf(ls_expf(x)) == (ref >= 0x1p128 - 0x1p103));
      CHECK((ls_expf(x) == 0.0f) == (ref < 0x1p-150));
    }
  }
  CHECK(same_bits(ls_expf(-104.0f), 0.0f));
  CHECK(same_bits(ls_expf(-1e30f), 0.0f));
  CHECK(ls_expf(-103.2f) == 0x1p-149f);
  CHECK(ls_expf(-87.4f) < FLT_MIN);  // a subnormal result
  CHECK(ls_expf(-87.4f) > 0.0f);
}

TEST_CASE("ls_logf: <= 2 ulp on all positive floats, subnormals included", "[math]") {
  Worst w = sweep_f32([](float x) { return ls_logf(x); }, ref_log, 0x1p-149f, FLT_MAX, kStride);
  w.merge(sweep_f32([](float x) { return ls_logf(x); }, ref_log, 0.5f, 2.0f, 7));
  w.merge(sweep_f32([](float x) { return ls_logf(x); }, ref_log, 0x1p-149f, 0x1p-120f, 13));
  report("logf", w);
  CHECK(w.ulp <= 2.0);
}

TEST_CASE("ls_tanhf: <= 2 ulp on -10..10 and the tails, odd bit for bit", "[math]") {
  auto f = [](float x) { return ls_tanhf(x); };
  Worst w = sweep_f32(f, ref_tanh, -10.0f, 10.0f, kStride);
  w.merge(sweep_f32(f, ref_tanh, -FLT_MAX, FLT_MAX, 4099));
  w.merge(sweep_f32(f, ref_tanh, 0.5f, 0.625f, 1));  // every float around the switch at 9/16
  report("tanhf", w);
  CHECK(w.ulp <= 2.0);

  int64_t asymmetric = 0;
  for (int64_t k = 0; k <= order_f32(20.0f); k += 997) {
    float x = from_order_f32(k);
    asymmetric += !same_bits(ls_tanhf(-x), -ls_tanhf(x));
  }
  CHECK(asymmetric == 0);
  CHECK(ls_tanhf(9.1f) == 1.0f);
  CHECK(ls_tanhf(-1e30f) == -1.0f);
}

TEST_CASE("ls_sigmoidf: <= 2 ulp on -120..120", "[math]") {
  Worst w = sweep_f32([](float x) { return ls_sigmoidf(x); }, ref_sigmoid, -120.0f, 120.0f, kStride);
  report("sigmoidf", w);
  CHECK(w.ulp <= 2.0);
}

TEST_CASE("ls_sinf, ls_cosf: <= 2 ulp for |x| <= 2^19, odd and even bit for bit", "[math]") {
  auto s = [](float x) { return ls_sinf(x); };
  auto c = [](float x) { return ls_cosf(x); };
  // Box-Muller's range [0, 2 pi) on its own (below 0.5 sin and cos are plain polynomials),
  // then the whole promised range.
  Worst bs = sweep_f32(s, ref_sin, 0.5f, 6.2831855f, 11);
  Worst bc = sweep_f32(c, ref_cos, 0.5f, 6.2831855f, 11);
  report("sinf 2pi", bs);
  report("cosf 2pi", bc);
  Worst ws = sweep_f32(s, ref_sin, -kTrigMaxf, kTrigMaxf, 241);
  Worst wc = sweep_f32(c, ref_cos, -kTrigMaxf, kTrigMaxf, 241);
  ws.merge(bs);
  wc.merge(bc);

  // The hard cases: the floats closest to multiples of pi/2, where x - k pi/2 cancels.
  Worst hs, hc;
  for (int64_t k = 1; k <= static_cast<int64_t>(kTrigMaxf / 1.5707963267948966); ++k) {
    float x0 = static_cast<float>(static_cast<double>(k) * 1.5707963267948966);
    for (int64_t d = -1; d <= 1; ++d) {
      float x = from_order_f32(order_f32(x0) + d);
      hs.add(ulp_error_f32(ls_sinf(x), std::sin(static_cast<double>(x))), x);
      hc.add(ulp_error_f32(ls_cosf(x), std::cos(static_cast<double>(x))), x);
    }
  }
  ws.merge(hs);
  wc.merge(hc);
  report("sinf", ws);
  report("cosf", wc);
  CHECK(ws.ulp <= 2.0);
  CHECK(wc.ulp <= 2.0);

  int64_t broken = 0;
  for (int64_t k = 0; k <= order_f32(kTrigMaxf); k += 1009) {
    float x = from_order_f32(k);
    broken += !same_bits(ls_sinf(-x), -ls_sinf(x));
    broken += !same_bits(ls_cosf(-x), ls_cosf(x));
  }
  CHECK(broken == 0);

  // Beyond the promised range: finite and within [-1, 1], never NaN.
  int64_t insane = 0;
  for (int64_t k = order_f32(kTrigMaxf); k <= order_f32(FLT_MAX); k += 10007) {
    float x = from_order_f32(k);
    for (float y : {ls_sinf(x), ls_cosf(x), ls_sinf(-x), ls_cosf(-x)}) insane += !(y >= -1.0f && y <= 1.0f);
  }
  CHECK(insane == 0);
}

TEST_CASE("float32 special values", "[math]") {
  const float inf = INFINITY, nan = NAN;
  const uint32_t canonical_nan = 0x7fc00000u;
  auto is_canonical_nan = [&](float y) { return ls_f32_bits(y) == canonical_nan; };

  CHECK(is_canonical_nan(ls_expf(nan)));
  CHECK(is_canonical_nan(ls_expf(-nan)));
  CHECK(ls_expf(inf) == inf);
  CHECK(same_bits(ls_expf(-inf), 0.0f));
  CHECK(ls_expf(0.0f) == 1.0f);
  CHECK(ls_expf(-0.0f) == 1.0f);
  CHECK(ls_expf(1e30f) == inf);

  CHECK(is_canonical_nan(ls_logf(nan)));
  CHECK(is_canonical_nan(ls_logf(-1.0f)));
  CHECK(is_canonical_nan(ls_logf(-0x1p-149f)));
  CHECK(is_canonical_nan(ls_logf(-inf)));
  CHECK(ls_logf(0.0f) == -inf);
  CHECK(ls_logf(-0.0f) == -inf);
  CHECK(ls_logf(inf) == inf);
  CHECK(same_bits(ls_logf(1.0f), 0.0f));
  CHECK(ls_logf(0x1p-149f) == Approx(-149.0 * 0.6931471805599453).epsilon(1e-7));
  CHECK(ls_logf(FLT_MAX) == Approx(88.72283905206835).epsilon(1e-7));

  CHECK(is_canonical_nan(ls_tanhf(nan)));
  CHECK(is_canonical_nan(ls_tanhf(-nan)));
  CHECK(ls_tanhf(inf) == 1.0f);
  CHECK(ls_tanhf(-inf) == -1.0f);
  CHECK(same_bits(ls_tanhf(0.0f), 0.0f));
  CHECK(same_bits(ls_tanhf(-0.0f), -0.0f));
  CHECK(same_bits(ls_tanhf(-0x1p-149f), -0x1p-149f));

  CHECK(is_canonical_nan(ls_sigmoidf(nan)));
  CHECK(ls_sigmoidf(inf) == 1.0f);
  CHECK(same_bits(ls_sigmoidf(-inf), 0.0f));
  CHECK(ls_sigmoidf(0.0f) == 0.5f);
  CHECK(ls_sigmoidf(-0.0f) == 0.5f);

  for (float x : {nan, inf, -inf}) {
    CHECK(is_canonical_nan(ls_sinf(x)));
    CHECK(is_canonical_nan(ls_cosf(x)));
  }
  CHECK(same_bits(ls_sinf(0.0f), 0.0f));
  CHECK(same_bits(ls_sinf(-0.0f), -0.0f));
  CHECK(same_bits(ls_sinf(-0x1p-149f), -0x1p-149f));
  CHECK(ls_cosf(0.0f) == 1.0f);
  CHECK(ls_cosf(-0.0f) == 1.0f);
}

TEST_CASE("float32 functions are monotone where the true functions are", "[math]") {
  // Consecutive floats through windows around the places where the algorithm changes:
  // range-reduction boundaries, polynomial switches, the subnormal boundary.
  auto monotone = [](auto f, float centre, int64_t half_width, int direction) {
    int64_t c = order_f32(centre), bad = 0;
    float prev = f(from_order_f32(c - half_width));
    for (int64_t k = c - half_width + 1; k <= c + half_width; ++k) {
      float y = f(from_order_f32(k));
      bad += direction > 0 ? (y < prev) : (y > prev);
      prev = y;
    }
    return bad;
  };
  const int64_t n = 100000;
  auto e = [](float x) { return ls_expf(x); };
  auto l = [](float x) { return ls_logf(x); };
  auto t = [](float x) { return ls_tanhf(x); };
  auto g = [](float x) { return ls_sigmoidf(x); };
  auto s = [](float x) { return ls_sinf(x); };
  auto c = [](float x) { return ls_cosf(x); };
  for (float x : {0.0f, 0.34657359f, -0.34657359f, 1.0397208f, 10.0f, -87.336545f, -103.27893f, 88.7f})
    CHECK(monotone(e, x, n, +1) == 0);
  for (float x : {1.0f, 0.70710677f, 1.4142135f, 0x1p-126f, 2.0f, 1e30f, 0x1p-140f})
    CHECK(monotone(l, x, n, +1) == 0);
  for (float x : {0.0f, 0.5625f, -0.5625f, 1.0f, 4.0f, 8.5f})
    CHECK(monotone(t, x, n, +1) == 0);
  for (float x : {0.0f, -20.0f, 8.0f})
    CHECK(monotone(g, x, n, +1) == 0);
  // sin rises on (-pi/2, pi/2) and cos falls on (0, pi); pi/4 and 3pi/4 change quadrant.
  for (float x : {0.0f, 0.78539819f, -0.78539819f, 1.2f})
    CHECK(monotone(s, x, n, +1) == 0);
  for (float x : {0.78539819f, 2.3561945f, 1.5707964f})
    CHECK(monotone(c, x, n, -1) == 0);
}

TEST_CASE("ls_exp, ls_log, ls_tanh (float64): <= 2 ulp against long double", "[math]") {
  auto ref_expl = [](long double x) { return expl(x); };
  auto ref_logl = [](long double x) { return logl(x); };
  auto ref_tanhl = [](long double x) { return tanhl(x); };
  auto e = [](double x) { return ls_exp(x); };
  auto l = [](double x) { return ls_log(x); };
  auto t = [](double x) { return ls_tanh(x); };
  const uint64_t n = 1000000;

  Worst we = sweep_f64(e, ref_expl, -746.0, 710.0, n);
  we.merge(sweep_f64(e, ref_expl, -746.0, -708.0, n / 10));  // subnormal results
  we.merge(sweep_f64(e, ref_expl, 709.0, 710.0, n / 10));    // the overflow edge
  we.merge(sweep_f64(e, ref_expl, -1.0, 1.0, n / 10));
  Worst wl = sweep_f64(l, ref_logl, 0x1p-1074, DBL_MAX, n);
  wl.merge(sweep_f64(l, ref_logl, 0.5, 2.0, n / 5));
  Worst wt = sweep_f64(t, ref_tanhl, -20.0, 20.0, n);
  wt.merge(sweep_f64(t, ref_tanhl, 0.5, 0.625, n / 10));
  wt.merge(sweep_f64(t, ref_tanhl, -DBL_MAX, DBL_MAX, n / 10));
  Worst wg = sweep_f64([](double x) { return ls_sigmoid(x); },
                       [](long double x) { return 1.0L / (1.0L + expl(-x)); }, -800.0, 800.0, n);
  report("exp", we);
  report("log", wl);
  report("tanh", wt);
  report("sigmoid", wg);
  CHECK(we.ulp <= 2.0);
  CHECK(wl.ulp <= 2.0);
  CHECK(wt.ulp <= 2.0);
  CHECK(wg.ulp <= 2.0);

  // Thresholds, as for float: around ln(DBL_MAX) and ln(2^-1075).
  for (long double edge : {logl(DBL_MAX), logl(0x1p-1075L)}) {
    double x0 = static_cast<double>(edge);
    for (int64_t d = -3; d <= 3; ++d) {
      double x = from_order_f64(order_f64(x0) + d);
      long double ref = expl(static_cast<long double>(x));
      INFO("x = " << x);
      CHECK(std::isinf(ls_exp(x)) == (ref >= 0x1p1024L - 0x1p970L));
      CHECK((ls_exp(x) == 0.0) == (ref < 0x1p-1075L));
    }
  }
  CHECK(ls_exp(-745.2) == 0.0);
  CHECK(ls_exp(-745.1) == 0x1p-1074);

  int64_t asymmetric = 0;
  for (double x : spaced_f64(0.0, 40.0, 100000)) asymmetric += !same_bits(ls_tanh(-x), -ls_tanh(x));
  CHECK(asymmetric == 0);
}

TEST_CASE("float64 special values", "[math]") {
  const double inf = HUGE_VAL, nan = std::nan("");
  const uint64_t canonical_nan = 0x7ff8000000000000ull;
  CHECK(ls_f64_bits(ls_exp(nan)) == canonical_nan);
  CHECK(ls_exp(inf) == inf);
  CHECK(same_bits(ls_exp(-inf), 0.0));
  CHECK(ls_exp(0.0) == 1.0);
  CHECK(ls_exp(-0.0) == 1.0);
  CHECK(ls_f64_bits(ls_log(nan)) == canonical_nan);
  CHECK(ls_f64_bits(ls_log(-1.0)) == canonical_nan);
  CHECK(ls_f64_bits(ls_log(-inf)) == canonical_nan);
  CHECK(ls_log(0.0) == -inf);
  CHECK(ls_log(-0.0) == -inf);
  CHECK(ls_log(inf) == inf);
  CHECK(same_bits(ls_log(1.0), 0.0));
  CHECK(ls_log(0x1p-1074) == Approx(-1074.0 * 0.6931471805599453).epsilon(1e-15));
  CHECK(ls_f64_bits(ls_tanh(nan)) == canonical_nan);
  CHECK(ls_tanh(inf) == 1.0);
  CHECK(ls_tanh(-inf) == -1.0);
  CHECK(same_bits(ls_tanh(-0.0), -0.0));
  CHECK(same_bits(ls_tanh(0.0), 0.0));
  CHECK(ls_f64_bits(ls_sigmoid(nan)) == canonical_nan);
  CHECK(ls_sigmoid(inf) == 1.0);
  CHECK(same_bits(ls_sigmoid(-inf), 0.0));
  CHECK(ls_sigmoid(0.0) == 0.5);
}

// Every float of each function's range: about 13 billion evaluations, many minutes.
// `LOCKSTEP_EXHAUSTIVE=1 lockstep_tests "[math_exhaustive]"` gives the table of
// docs/math.md. The case is hidden, but Catch2 2.13 still selects hidden cases for specs
// made only of exclusions (such as "~[cuda]"), hence the variable as well.
TEST_CASE("float32 functions over every float (slow)", "[.][math_exhaustive]") {
  const char* run = std::getenv("LOCKSTEP_EXHAUSTIVE");
  if (run == nullptr || std::strcmp(run, "1") != 0) {
    WARN("not run: set LOCKSTEP_EXHAUSTIVE=1 to sweep every float");
    return;
  }
  struct Case {
    const char* name;
    float (*f)(float);
    double (*ref)(double);
    float lo, hi;
  };
  const Case cases[] = {
      {"expf", [](float x) { return ls_expf(x); }, ref_exp, -104.0f, 89.0f},
      {"logf", [](float x) { return ls_logf(x); }, ref_log, 0x1p-149f, FLT_MAX},
      {"tanhf", [](float x) { return ls_tanhf(x); }, ref_tanh, -10.0f, 10.0f},
      {"sigmoidf", [](float x) { return ls_sigmoidf(x); }, ref_sigmoid, -120.0f, 120.0f},
      {"sinf", [](float x) { return ls_sinf(x); }, ref_sin, -kTrigMaxf, kTrigMaxf},
      {"cosf", [](float x) { return ls_cosf(x); }, ref_cos, -kTrigMaxf, kTrigMaxf},
  };
  for (const Case& c : cases) {
    Worst w = sweep_f32(c.f, c.ref, c.lo, c.hi, 1);
    report(c.name, w);
    CHECK(w.ulp <= 2.0);
  }
}

// ---- the AVX2/FMA build gives the same bits ------------------------------------------
// The loops below are compiled for AVX2+FMA (GCC vectorises them at -O3); the scalar
// loops in the rest of this file use the baseline x86-64 ISA. Every operation is
// correctly rounded in both, so the outputs must be identical.
#if defined(__GNUC__) && defined(__x86_64__)
#define LS_TEST_AVX2 1
#define LS_TARGET_AVX2 __attribute__((target("avx2,fma")))
namespace {
LS_TARGET_AVX2 void avx2_all(const float* x, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[0 * n + i] = ls_expf(x[i]);
  for (int64_t i = 0; i < n; ++i) out[1 * n + i] = ls_logf(x[i]);
  for (int64_t i = 0; i < n; ++i) out[2 * n + i] = ls_tanhf(x[i]);
  for (int64_t i = 0; i < n; ++i) out[3 * n + i] = ls_sinf(x[i]);
  for (int64_t i = 0; i < n; ++i) out[4 * n + i] = ls_cosf(x[i]);
  for (int64_t i = 0; i < n; ++i) out[5 * n + i] = ls_sigmoidf(x[i]);
}
LS_TARGET_AVX2 void avx2_all(const double* x, double* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[0 * n + i] = ls_exp(x[i]);
  for (int64_t i = 0; i < n; ++i) out[1 * n + i] = ls_log(x[i]);
  for (int64_t i = 0; i < n; ++i) out[2 * n + i] = ls_tanh(x[i]);
  for (int64_t i = 0; i < n; ++i) out[3 * n + i] = ls_sigmoid(x[i]);
}
}  // namespace
#endif

TEST_CASE("math functions: AVX2/FMA loops give the scalar bits", "[math][deterministic]") {
#if LS_TEST_AVX2
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
    WARN("CPU without AVX2/FMA: vector path not exercised");
    return;
  }
  // Inputs from every range: each function's sweep range, specials and subnormals.
  std::vector<float> xf;
  for (int64_t k = order_f32(-FLT_MAX); k <= order_f32(FLT_MAX); k += 65537) xf.push_back(from_order_f32(k));
  for (int64_t k = order_f32(-120.0f); k <= order_f32(120.0f); k += 8191) xf.push_back(from_order_f32(k));
  for (float x : {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 0x1p-149f, -0x1p-149f, FLT_MAX}) xf.push_back(x);
  const int64_t nf = static_cast<int64_t>(xf.size());
  std::vector<float> vf(6 * nf), sf(6 * nf);
  avx2_all(xf.data(), vf.data(), nf);
  for (int64_t i = 0; i < nf; ++i) {
    sf[0 * nf + i] = ls_expf(xf[i]);
    sf[1 * nf + i] = ls_logf(xf[i]);
    sf[2 * nf + i] = ls_tanhf(xf[i]);
    sf[3 * nf + i] = ls_sinf(xf[i]);
    sf[4 * nf + i] = ls_cosf(xf[i]);
    sf[5 * nf + i] = ls_sigmoidf(xf[i]);
  }
  REQUIRE(std::memcmp(vf.data(), sf.data(), vf.size() * sizeof(float)) == 0);

  std::vector<double> xd = spaced_f64(-DBL_MAX, DBL_MAX, 100000);
  for (double x : spaced_f64(-800.0, 800.0, 100000)) xd.push_back(x);
  for (double x : {0.0, -0.0, HUGE_VAL, -HUGE_VAL, std::nan(""), 0x1p-1074, DBL_MAX}) xd.push_back(x);
  const int64_t nd = static_cast<int64_t>(xd.size());
  std::vector<double> vd(4 * nd), sd(4 * nd);
  avx2_all(xd.data(), vd.data(), nd);
  for (int64_t i = 0; i < nd; ++i) {
    sd[0 * nd + i] = ls_exp(xd[i]);
    sd[1 * nd + i] = ls_log(xd[i]);
    sd[2 * nd + i] = ls_tanh(xd[i]);
    sd[3 * nd + i] = ls_sigmoid(xd[i]);
  }
  REQUIRE(std::memcmp(vd.data(), sd.data(), vd.size() * sizeof(double)) == 0);
#else
  WARN("not an x86-64 GCC/Clang build: vector path not exercised");
#endif
}
