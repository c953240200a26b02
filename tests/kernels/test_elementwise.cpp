// Elementwise kernels and ops (kernels/elementwise.h, core/ops/elementwise.cpp, unary.cpp):
// broadcasting against index arithmetic written here, values against float64 references,
// and the same bits for every thread count and with the AVX2 loops on or off.
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "base/parallel.h"
#include "base/simd.h"
#include "core/tensor.h"
#include "kernels/elementwise.h"
#include "gradcheck.h"
#include "base/math.h"
#include "test_util.h"

using namespace lockstep;
using lockstep_test::kThreadCounts;
using lockstep_test::random_floats;

namespace {

const float kNan = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

Shape strides_of(const Shape& s) {
  Shape st(s.size(), 1);
  for (int i = static_cast<int>(s.size()) - 2; i >= 0; --i) st[i] = st[i + 1] * s[i + 1];
  return st;
}

// For every output index (row-major in out), the offset of the element it reads from an
// operand of shape `in`, by NumPy's rules: trailing dims aligned, size-1 dims repeat.
std::vector<int64_t> operand_offsets(const Shape& out, const Shape& in) {
  const Shape ost = strides_of(out), ist = strides_of(in);
  const size_t lead = out.size() - in.size();
  std::vector<int64_t> offs(static_cast<size_t>(shape_numel(out)));
  for (int64_t flat = 0; flat < static_cast<int64_t>(offs.size()); ++flat) {
    int64_t off = 0;
    for (size_t d = 0; d < out.size(); ++d) {
      const int64_t idx = flat / ost[d] % out[d];
      if (d >= lead && in[d - lead] != 1) off += idx * ist[d - lead];
    }
    offs[flat] = off;
  }
  return offs;
}

// Box for out with inputs a and b (and cond), through the kernel header's builder.
Broadcast box(const Shape& out, const Shape& a, const Shape& b, const Shape& c = Shape{}) {
  const int64_t* shapes[3] = {a.data(), b.data(), c.data()};
  const int nd[3] = {static_cast<int>(a.size()), static_cast<int>(b.size()), static_cast<int>(c.size())};
  return make_broadcast(out.data(), static_cast<int>(out.size()), shapes, nd, 3);
}

float apply(BinaryOp op, float a, float b) {
  switch (op) {
    case BinaryOp::add: return a + b;
    case BinaryOp::sub: return a - b;
    case BinaryOp::mul: return a * b;
    case BinaryOp::div: return a / b;
    case BinaryOp::maximum: return std::isnan(a) ? a : std::isnan(b) ? b : (a > b ? a : b);
    case BinaryOp::minimum: return std::isnan(a) ? a : std::isnan(b) ? b : (a < b ? a : b);
  }
  return 0;
}

struct ShapeCase {
  Shape out, a, b;
};

// Broadcast pairs from scalar to 8-d; out is their broadcast shape.
const ShapeCase kShapeCases[] = {
    {{4097}, {4097}, {4097}},                     // same shape
    {{1 << 19}, {1 << 19}, {1 << 19}},            // large enough to split across threads
    {{512, 1024}, {512, 1024}, {1024}},           // row vector, split across threads
    {{100003}, {100003}, {}},                     // scalar on the right
    {{1000}, {}, {1000}},                         // scalar on the left
    {{129, 17}, {129, 17}, {17}},                 // row vector over rows
    {{129, 17}, {129, 1}, {1, 17}},               // outer product
    {{7, 3, 5}, {7, 1, 5}, {3, 1}},               // middle broadcast
    {{2, 3, 1, 4}, {2, 3, 1, 4}, {1, 3, 1, 1}},   // size-1 dims everywhere
    {{1}, {1}, {}},                               // one element
    {{}, {}, {}},                                 // 0-d
    {{2, 1, 3, 2, 1, 2, 3, 2}, {2, 1, 3, 1, 1, 2, 1, 2}, {3, 2, 1, 2, 3, 1}},  // 8-d
};

}  // namespace

TEST_CASE("make_broadcast merges dims and marks broadcast inputs", "[elementwise][deterministic]") {
  Broadcast same = box({8, 9, 10}, {8, 9, 10}, {8, 9, 10});
  REQUIRE(same.ndim == 1);
  REQUIRE(same.shape[0] == 720);
  REQUIRE(same.stride[0][0] == 1);
  REQUIRE(same.stride[1][0] == 1);
  Broadcast scal = box({8, 9}, {8, 9}, {});
  REQUIRE(scal.ndim == 1);
  REQUIRE(scal.stride[1][0] == 0);
  Broadcast row = box({8, 9, 10}, {8, 9, 10}, {10});
  REQUIRE(row.ndim == 2);
  REQUIRE(row.shape[0] == 72);
  REQUIRE(row.shape[1] == 10);
  REQUIRE(row.stride[1][0] == 0);
  REQUIRE(row.stride[1][1] == 1);
  Broadcast empty = box({3, 0}, {3, 0}, {0});
  REQUIRE(empty.numel() == 0);
  Broadcast one = box({}, {}, {});
  REQUIRE(one.ndim == 1);
  REQUIRE(one.shape[0] == 1);
}

TEST_CASE("binary_cpu: every op and broadcast shape, any threads", "[elementwise][deterministic]") {
  for (const ShapeCase& c : kShapeCases) {
    const int64_t n = shape_numel(c.out), na = shape_numel(c.a), nb = shape_numel(c.b);
    std::vector<float> a = random_floats(na, 7, -4, 4), b = random_floats(nb, 8, -4, 4);
    if (nb > 3) b[3] = kNan;
    if (na > 2) a[2] = kNan;
    if (na > 5 && nb > 5) a[5] = b[5] = 1.5f;  // a tie
    const Broadcast bc = box(c.out, c.a, c.b);
    const std::vector<int64_t> oa = operand_offsets(c.out, c.a), ob = operand_offsets(c.out, c.b);
    for (BinaryOp op : {BinaryOp::add, BinaryOp::sub, BinaryOp::mul, BinaryOp::div, BinaryOp::maximum,
                        BinaryOp::minimum}) {
      std::vector<float> want(n);
      for (int64_t i = 0; i < n; ++i) want[i] = apply(op, a[oa[i]], b[ob[i]]);
      for (int t : kThreadCounts) {
        ThreadsGuard tg(t);
        std::vector<float> got(n, -7.0f);
        binary_cpu(Exec::current(), op, got.data(), a.data(), b.data(), bc);
        INFO(binary_op_name(op) << " " << shape_str(c.a) << " with " << shape_str(c.b) << ", threads " << t);
        REQUIRE_BITWISE_EQUAL(got, want);
      }
    }
  }
}

TEST_CASE("binary_cpu: float64 add and div against long double", "[elementwise][deterministic]") {
  std::vector<double> a = lockstep_test::random_doubles(1000, 1), b = lockstep_test::random_doubles(1000, 2);
  std::vector<double> sum(1000), quo(1000);
  const Broadcast bc = box({1000}, {1000}, {1000});
  binary_cpu(Exec::current(), BinaryOp::add, sum.data(), a.data(), b.data(), bc);
  binary_cpu(Exec::current(), BinaryOp::div, quo.data(), a.data(), b.data(), bc);
  for (int i = 0; i < 1000; ++i) {
    REQUIRE(sum[i] == static_cast<double>(static_cast<long double>(a[i]) + b[i]));
    REQUIRE(std::fabs(quo[i] - static_cast<long double>(a[i]) / b[i]) <= 1.2e-16 * std::fabs(quo[i]));
  }
}

TEST_CASE("maximum/minimum: NaN propagates, ties give b", "[elementwise][deterministic]") {
  std::vector<float> a = {1, kNan, 2, -0.0f, 0.0f, -kInf}, b = {kNan, 3, 2, 0.0f, -0.0f, 5};
  std::vector<float> mx(6), mn(6);
  const Broadcast bc = box({6}, {6}, {6});
  binary_cpu(Exec::current(), BinaryOp::maximum, mx.data(), a.data(), b.data(), bc);
  binary_cpu(Exec::current(), BinaryOp::minimum, mn.data(), a.data(), b.data(), bc);
  REQUIRE(std::isnan(mx[0]));
  REQUIRE(std::isnan(mx[1]));
  REQUIRE(std::isnan(mn[0]));
  REQUIRE(std::isnan(mn[1]));
  REQUIRE(mx[2] == 2);
  REQUIRE(bits(mx[3]) == bits(0.0f));   // max(-0, +0) = b = +0
  REQUIRE(bits(mx[4]) == bits(-0.0f));  // max(+0, -0) = b = -0
  REQUIRE(bits(mn[3]) == bits(0.0f));
  REQUIRE(mx[5] == 5);
  REQUIRE(mn[5] == -kInf);
}

TEST_CASE("binary_scalar_cpu, compare_cpu and where_cpu", "[elementwise][deterministic]") {
  const int64_t n = 4097;
  std::vector<float> a = random_floats(n, 11, -2, 2), b = random_floats(n, 12, -2, 2);
  a[0] = kNan;
  b[1] = kNan;
  a[2] = b[2];
  std::vector<float> out(n);
  binary_scalar_cpu(Exec::current(), BinaryOp::sub, out.data(), a.data(), 0.25f, n);
  for (int64_t i = 0; i < n; ++i) REQUIRE(bits(out[i]) == bits(a[i] - 0.25f));
  // in place
  std::vector<float> c = a;
  binary_scalar_cpu(Exec::current(), BinaryOp::mul, c.data(), c.data(), 3.0f, n);
  for (int64_t i = 0; i < n; ++i) REQUIRE(bits(c[i]) == bits(a[i] * 3.0f));

  const Broadcast bc = box({n}, {n}, {n});
  std::vector<uint8_t> r(n);
  const CompareOp ops[] = {CompareOp::gt, CompareOp::lt, CompareOp::ge, CompareOp::le, CompareOp::eq, CompareOp::ne};
  for (CompareOp op : ops) {
    compare_cpu(Exec::current(), op, r.data(), a.data(), b.data(), bc);
    for (int64_t i = 0; i < n; ++i) {
      const float x = a[i], y = b[i];
      const bool want = op == CompareOp::gt ? x > y : op == CompareOp::lt ? x < y : op == CompareOp::ge ? x >= y
                      : op == CompareOp::le ? x <= y : op == CompareOp::eq ? x == y : x != y;
      REQUIRE(r[i] == (want ? 1 : 0));
    }
  }
  compare_cpu(Exec::current(), CompareOp::ne, r.data(), a.data(), b.data(), bc);
  REQUIRE(r[0] == 1);  // NaN != anything
  compare_cpu(Exec::current(), CompareOp::eq, r.data(), a.data(), b.data(), bc);
  REQUIRE(r[2] == 1);

  // where with a broadcast condition column: 3 x 5, cond 3 x 1, a 5, b scalar
  std::vector<uint8_t> cond = {1, 0, 7};
  std::vector<float> wa = {1, 2, 3, 4, 5}, wb = {-1};
  std::vector<float> w(15);
  where_cpu(Exec::current(), w.data(), cond.data(), wa.data(), wb.data(), box({3, 5}, {5}, {}, {3, 1}));
  REQUIRE(w == std::vector<float>{1, 2, 3, 4, 5, -1, -1, -1, -1, -1, 1, 2, 3, 4, 5});
  std::vector<int64_t> ia = {10, 20}, ib = {30, 40}, iw(2);
  std::vector<uint8_t> c2 = {0, 1};
  where_cpu(Exec::current(), iw.data(), c2.data(), ia.data(), ib.data(), box({2}, {2}, {2}, {2}));
  REQUIRE(iw == std::vector<int64_t>{30, 20});
}

TEST_CASE("axpy_cpu: one rounding, SIMD and scalar agree", "[elementwise][deterministic]") {
  const int64_t n = 1000003;
  std::vector<float> x = random_floats(n, 21, -3, 3), y = random_floats(n, 22, -3, 3);
  const float alpha = 1.0f / 3.0f;
  std::vector<float> want(n);
  bool differs_from_two_roundings = false;
  for (int64_t i = 0; i < n; ++i) {
    want[i] = std::fma(alpha, x[i], y[i]);
    differs_from_two_roundings |= bits(want[i]) != bits(alpha * x[i] + y[i]);
  }
  REQUIRE(differs_from_two_roundings);  // so the check below can tell fma from mul + add
  for (bool simd : {false, true}) {
    SimdGuard sg(simd);
    const Exec ex = Exec::current();  // the kernel runs at the level the guard set
    REQUIRE(ex.simd == (simd ? simd_level_available() : SimdLevel::scalar));
    for (int t : kThreadCounts) {
      ThreadsGuard tg(t);
      std::vector<float> got(n);
      axpy_cpu(ex, got.data(), alpha, x.data(), y.data(), box({n}, {n}, {n}));
      INFO("simd " << simd << ", threads " << t);
      REQUIRE_BITWISE_EQUAL(got, want);
    }
    // broadcast: x a row vector over 3 rows of y
    std::vector<float> got(3 * 1000);
    axpy_cpu(ex, got.data(), alpha, x.data(), y.data(), box({3, 1000}, {1000}, {3, 1000}));
    for (int64_t i = 0; i < 3000; ++i) REQUIRE(bits(got[i]) == bits(std::fma(alpha, x[i % 1000], y[i])));
  }
}

namespace {

// Inputs for the unary functions: a sweep plus special values.
std::vector<float> unary_inputs() {
  std::vector<float> v = random_floats(100003, 31, -12, 12);
  const float specials[] = {0.0f, -0.0f, kInf, -kInf, kNan, 1e-40f, -1e-40f, 88.0f, 89.5f, -104.5f, -87.0f,
                            1e30f, -1e30f, 0.5f, 0.5625f, 1.0f, 1e-8f, 3.0f, -3.0f, 20.0f, -20.0f};
  v.insert(v.end(), std::begin(specials), std::end(specials));
  return v;
}

double unary_ref(UnaryOp op, double x) {
  switch (op) {
    case UnaryOp::neg: return -x;
    case UnaryOp::abs: return std::fabs(x);
    case UnaryOp::sqrt: return std::sqrt(x);
    case UnaryOp::relu: return std::isnan(x) ? x : x > 0 ? x : 0.0;
    case UnaryOp::exp: return std::exp(x);
    case UnaryOp::log: return std::log(x);
    case UnaryOp::tanh: return std::tanh(x);
    case UnaryOp::sigmoid: return 1.0 / (1.0 + std::exp(-x));
    case UnaryOp::gelu: return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
    case UnaryOp::silu: return x / (1.0 + std::exp(-x));
  }
  return 0;
}

const UnaryOp kUnaryOps[] = {UnaryOp::neg,  UnaryOp::abs,  UnaryOp::sqrt,    UnaryOp::relu, UnaryOp::exp,
                             UnaryOp::log, UnaryOp::tanh, UnaryOp::sigmoid, UnaryOp::gelu, UnaryOp::silu};

}  // namespace

TEST_CASE("unary_cpu: accurate against float64", "[elementwise][deterministic]") {
  std::vector<float> x = unary_inputs();
  const int64_t n = static_cast<int64_t>(x.size());
  for (UnaryOp op : kUnaryOps) {
    std::vector<float> got(n);
    unary_cpu(Exec::current(), op, got.data(), x.data(), n);
    std::vector<double> ref(n);
    for (int64_t i = 0; i < n; ++i) ref[i] = unary_ref(op, x[i]);
    // neg/abs/sqrt/relu are exact (sqrt correctly rounded); the ls_* functions are <= 2 ulp,
    // sigmoid and gelu add a few roundings; gelu's 1 + tanh(u) cancels for negative x, which
    // leaves an absolute error of about 0.5|x| * 2 ulp(1)
    const bool exact = op == UnaryOp::neg || op == UnaryOp::abs || op == UnaryOp::sqrt || op == UnaryOp::relu;
    const bool gelu = op == UnaryOp::gelu;
    const double rtol = exact ? 0.6 * 1.2e-7 : gelu ? 1e-6 : 4 * 1.2e-7;
    INFO(unary_op_name(op));
    for (int64_t i = 0; i < n; ++i) {
      const double r = ref[i];
      INFO("x = " << x[i] << ": got " << got[i] << ", float64 " << r);
      if (std::isnan(r)) {
        REQUIRE(std::isnan(got[i]));
      } else if (std::isinf(r) || std::fabs(r) > 3.4e38) {
        REQUIRE(got[i] == static_cast<float>(r));
      } else {
        // silu = x * sigmoid(x): sigmoid's denormal (or underflowed) value times |x|
        const double atol = gelu                  ? 2.4e-7 * std::fabs(x[i])
                            : op == UnaryOp::silu ? 1.5e-45 * (1 + std::fabs(x[i]))
                                                  : 1e-45;
        REQUIRE(std::fabs(got[i] - r) <= atol + rtol * std::fabs(r));
      }
    }
  }
}

TEST_CASE("unary_cpu: the documented formulas, bit for bit, SIMD and scalar", "[elementwise][deterministic]") {
  std::vector<float> x = unary_inputs();
  const int64_t n = static_cast<int64_t>(x.size());
  for (UnaryOp op : kUnaryOps) {
    std::vector<float> want(n);
    for (int64_t i = 0; i < n; ++i) {
      const float v = x[i];
      switch (op) {
        case UnaryOp::neg: want[i] = -v; break;
        case UnaryOp::abs: want[i] = std::fabs(v); break;
        case UnaryOp::sqrt: want[i] = std::sqrt(v); break;
        case UnaryOp::relu: want[i] = v > 0 ? v : std::isnan(v) ? v : 0.0f; break;
        case UnaryOp::exp: want[i] = ls_expf(v); break;
        case UnaryOp::log: want[i] = ls_logf(v); break;
        case UnaryOp::tanh: want[i] = ls_tanhf(v); break;
        case UnaryOp::sigmoid: want[i] = ls_sigmoidf(v); break;
        case UnaryOp::gelu: {
          const float x3 = (v * v) * v;
          const float u = 0.7978845608f * (v + 0.044715f * x3);
          want[i] = (0.5f * v) * (1.0f + ls_tanhf(u));
          break;
        }
        case UnaryOp::silu: want[i] = v * ls_sigmoidf(v); break;
      }
    }
    for (bool simd : {false, true}) {
      SimdGuard sg(simd);
      const Exec ex = Exec::current();
      REQUIRE(ex.simd == (simd ? simd_level_available() : SimdLevel::scalar));
      for (int t : kThreadCounts) {
        ThreadsGuard tg(t);
        std::vector<float> got(n);
        unary_cpu(ex, op, got.data(), x.data(), n);
        INFO(unary_op_name(op) << ", simd " << simd << ", threads " << t);
        REQUIRE_BITWISE_EQUAL(got, want);
      }
    }
  }
  if (!Exec{Mode::deterministic, simd_level_available()}.avx2())
    WARN("AVX2 is not available here: the SIMD runs used the portable loops");
}

TEST_CASE("unary_cpu: float64, SIMD and scalar agree", "[elementwise][deterministic]") {
  std::vector<double> x = lockstep_test::random_doubles(20011, 41, -30, 30);
  x.push_back(0.0);
  x.push_back(-0.0);
  x.push_back(std::numeric_limits<double>::infinity());
  x.push_back(-1e300);
  for (UnaryOp op : kUnaryOps) {
    std::vector<double> s(x.size()), v(x.size());
    {
      SimdGuard sg(false);
      const Exec ex = Exec::current();
      REQUIRE(ex.simd == SimdLevel::scalar);
      unary_cpu(ex, op, s.data(), x.data(), x.size());
    }
    {
      SimdGuard sg(true);
      const Exec ex = Exec::current();
      REQUIRE(ex.simd == simd_level_available());
      unary_cpu(ex, op, v.data(), x.data(), x.size());
    }
    INFO(unary_op_name(op));
    REQUIRE_BITWISE_EQUAL(s, v);
    for (size_t i = 0; i < x.size(); ++i) {
      const double r = unary_ref(op, x[i]);
      const double slack = op == UnaryOp::gelu ? 1e-15 * std::fabs(x[i]) : 0.0;  // as for float32
      if (std::isfinite(r) && std::fabs(r) > 1e-300) REQUIRE(std::fabs(s[i] - r) <= 1e-14 * std::fabs(r) + slack);
    }
  }
}

// ---- the ops ----

TEST_CASE("elementwise ops: broadcasting, scalars, operators, dtypes", "[elementwise][deterministic]") {
  Tensor a = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor r = Tensor::from_vector(std::vector<float>{10, 20, 30}, {3});
  Tensor col = Tensor::from_vector(std::vector<float>{100, 200}, {2, 1});
  REQUIRE((a + r).to_vector<float>() == std::vector<float>{11, 22, 33, 14, 25, 36});
  REQUIRE((a - col).shape() == Shape{2, 3});
  REQUIRE((a - col).to_vector<float>() == std::vector<float>{-99, -98, -97, -196, -195, -194});
  REQUIRE((r * col).shape() == Shape{2, 3});
  REQUIRE((a / Tensor::scalar(2)).to_vector<float>() == std::vector<float>{0.5f, 1, 1.5f, 2, 2.5f, 3});
  REQUIRE((a * 2.0).to_vector<float>() == std::vector<float>{2, 4, 6, 8, 10, 12});
  REQUIRE((0.5 * a).to_vector<float>() == scale(a, 0.5).to_vector<float>());
  REQUIRE((a + 1.0).to_vector<float>() == std::vector<float>{2, 3, 4, 5, 6, 7});
  REQUIRE((-a).to_vector<float>() == std::vector<float>{-1, -2, -3, -4, -5, -6});
  REQUIRE(maximum(a, Tensor::scalar(3.5)).to_vector<float>() == std::vector<float>{3.5f, 3.5f, 3.5f, 4, 5, 6});
  REQUIRE(minimum(a, r).to_vector<float>() == std::vector<float>{1, 2, 3, 4, 5, 6});
  REQUIRE(axpy(2.0, a, r).to_vector<float>() == std::vector<float>{12, 24, 36, 18, 30, 42});
  // transposed (strided) operands are packed first
  REQUIRE(add(a.t(), a.t()).to_vector<float>() == std::vector<float>{2, 8, 4, 10, 6, 12});
  // comparisons and where
  Tensor m = gt(a, Tensor::scalar(3.0));
  REQUIRE(m.dtype() == DType::u8);
  REQUIRE(m.to_vector<uint8_t>() == std::vector<uint8_t>{0, 0, 0, 1, 1, 1});
  REQUIRE(le(a, r).to_vector<uint8_t>() == std::vector<uint8_t>{1, 1, 1, 1, 1, 1});
  REQUIRE(where(m, a, Tensor::scalar(0.0)).to_vector<float>() == std::vector<float>{0, 0, 0, 4, 5, 6});
  Tensor labels = Tensor::from_vector(std::vector<int64_t>{2, 0}, {2});
  Tensor pred = Tensor::from_vector(std::vector<int64_t>{2, 1}, {2});
  REQUIRE(eq(labels, pred).to_vector<uint8_t>() == std::vector<uint8_t>{1, 0});
  // float64, 0-d and empty
  Tensor d = Tensor::from_vector(std::vector<double>{1.5, -2.5}, {2});
  REQUIRE((d * d).dtype() == DType::f64);
  REQUIRE((d * d).to_vector<double>() == std::vector<double>{2.25, 6.25});
  REQUIRE((Tensor::scalar(2) + Tensor::scalar(3)).dim() == 0);
  REQUIRE((Tensor::scalar(2) + Tensor::scalar(3)).item() == 5);
  Tensor e = Tensor::zeros({0, 3});
  REQUIRE((e + r).shape() == Shape{0, 3});
  REQUIRE(relu(e).shape() == Shape{0, 3});
  REQUIRE(ne(e, r).shape() == Shape{0, 3});
}

TEST_CASE("unary ops: values, 0-d and float64", "[elementwise][deterministic]") {
  Tensor x = Tensor::from_vector(std::vector<float>{-2, -0.0f, 0.5f, 4}, {2, 2});
  REQUIRE(relu(x).to_vector<float>() == std::vector<float>{0, 0, 0.5f, 4});
  REQUIRE(bits(relu(x).to_vector<float>()[1]) == bits(0.0f));
  REQUIRE(abs(x).to_vector<float>() == std::vector<float>{2, 0, 0.5f, 4});
  REQUIRE(sqrt(abs(x)).to_vector<float>()[3] == 2);
  REQUIRE(exp(x).to_vector<float>()[1] == 1);
  REQUIRE(log(exp(Tensor::scalar(0.0))).item() == 0);
  REQUIRE(tanh(x).to_vector<float>()[1] == 0);
  REQUIRE(sigmoid(Tensor::scalar(0.0)).item() == 0.5);
  REQUIRE(gelu(Tensor::scalar(0.0)).item() == 0);
  Tensor d = Tensor::from_vector(std::vector<double>{1.0}, {1});
  REQUIRE(std::fabs(exp(d).item() - M_E) < 1e-15);
  REQUIRE(std::fabs(gelu(d).item() - unary_ref(UnaryOp::gelu, 1.0)) < 1e-15);
}

// ---- gradients of the ops that tests/test_autograd.cpp does not cover ----

TEST_CASE("elementwise ops: gradients against finite differences", "[elementwise][autograd]") {
  auto leaf = [](const Shape& s, uint32_t seed, double lo, double hi) {
    Tensor t = Tensor::from_vector(lockstep_test::random_doubles(static_cast<size_t>(shape_numel(s)), seed, lo, hi), s);
    t.set_requires_grad(true);
    return t;
  };
  Tensor a = leaf({4, 5}, 1, -1, 1), b = leaf({5}, 2, -1, 1), c = leaf({4, 1}, 3, -1, 1);
  Tensor w = Tensor::from_vector(lockstep_test::random_doubles(20, 4), {4, 5});
  Tensor cond = gt(Tensor::from_vector(lockstep_test::random_doubles(20, 5), {4, 5}), Tensor::scalar(0.0, DType::f64));
  auto check = [&](const std::function<Tensor(const std::vector<Tensor>&)>& f, std::vector<Tensor> in) {
    lockstep_test::gradcheck([&](const std::vector<Tensor>& v) { return sum(mul(f(v), w)); }, in);
  };
  check([](auto& v) { return maximum(v[0], v[1]); }, {a, b});
  check([](auto& v) { return minimum(v[0], v[1]); }, {a, c});
  check([](auto& v) { return axpy(-1.5, v[0], v[1]); }, {b, a});
  check([&](auto& v) { return where(cond, v[0], v[1]); }, {a, c});
  check([](auto& v) { return abs(v[0]); }, {a});
  check([](auto& v) { return scale(v[0], 0.25); }, {a});
  check([](auto& v) { return v[0] / v[1] - v[1] * 2.0; }, {a, c});
  check([](auto& v) { return max(v[0], 0, true); }, {a});
  check([](auto& v) { return max(v[0], 1, true); }, {a});
  check([](auto& v) { return sum(v[0], 1, true); }, {a});
  check([](auto& v) { return mean(v[0], 0); }, {a});
}
