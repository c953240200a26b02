// The op table: one row per public op (core/ops.h, optim/), in the spirit of ggml's
// test-backend-ops. A new op adds a row here; tests/test_op_table.cpp checks every row on
// the CPU and tests/cuda/test_op_table.cpp checks it against CUDA.
//
// A row holds:
//   make(dtype, small)  the inputs, on the CPU, from fixed seeds; float inputs in `dtype`.
//                       small: the shapes of the finite-difference check (every element is
//                       perturbed twice), otherwise the shapes of the other checks: odd sizes
//                       crossing the SIMD widths 8/16, the batch chunk of 32 rows and the
//                       reduction block of 4096 elements.
//   run(in, row0)       the op on those inputs (any device); returns its outputs, out[0]
//                       being the one differentiated. row0: the global index of in's first
//                       row when the checks hand it a slice of the batch (dropout's offset).
//   ref(in)             the expected outputs, computed by a double loop written here from
//                       the op's documented formula (in: the float32 inputs widened to float64).
//   rtol, atol          the float32 result against ref: |got - ref| <= atol + rtol |ref|.
//   n_diff              the first n_diff inputs get gradients (0: the op has no backward).
//   batch_in/batch_out  bit masks of the inputs/outputs whose dim 0 is the batch; nonzero
//                       when row i of the output depends only on row i of those inputs.
//   grad_rtol/atol      tolerances of the float64 finite-difference check.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "base/philox.h"
#include "core/autograd.h"
#include "core/tensor.h"
#include "optim/adam.h"
#include "optim/clip.h"
#include "optim/sgd.h"
#include "test_util.h"

namespace lockstep_test {

using lockstep::DType;
using lockstep::Shape;
using lockstep::Tensor;
using Ins = std::vector<Tensor>;
using Outs = std::vector<Tensor>;
using Ref = std::vector<std::vector<double>>;

struct OpRow {
  std::string name;
  std::function<Ins(DType, bool small)> make;
  std::function<Outs(const Ins&, int64_t row0)> run;
  std::function<Ref(const Ins&)> ref;
  double rtol = 0, atol = 0;
  int n_diff = 0;
  unsigned batch_in = 0, batch_out = 0;
  double grad_rtol = 1e-6, grad_atol = 1e-8;

  OpRow& tol(double r, double a) { rtol = r; atol = a; return *this; }
  OpRow& diff(int n) { n_diff = n; return *this; }
  OpRow& batch(unsigned in, unsigned out) { batch_in = in; batch_out = out; return *this; }
  OpRow& grad_tol(double r, double a) { grad_rtol = r; grad_atol = a; return *this; }
};

// ---- inputs ----

// Uniform values in [lo, hi) from a fixed seed, as float32 then converted, so the float32
// and float64 inputs of a row hold the same numbers.
inline Tensor rnd(const Shape& s, uint32_t seed, DType dt, double lo = -1, double hi = 1) {
  auto v = random_floats(static_cast<size_t>(lockstep::shape_numel(s)), seed, static_cast<float>(lo),
                         static_cast<float>(hi));
  return Tensor::from_vector(v, s).to(dt);
}

// Multiples of 1/4 in [-2, 2]: ties for max, argmax and the comparisons.
inline Tensor rnd_ties(const Shape& s, uint32_t seed, DType dt) {
  auto v = random_floats(static_cast<size_t>(lockstep::shape_numel(s)), seed, -2.f, 2.f);
  for (auto& x : v) x = std::round(x * 4.f) / 4.f;
  return Tensor::from_vector(v, s).to(dt);
}

inline Tensor labels(int64_t n, int64_t classes, uint32_t seed) {
  auto u = random_floats(static_cast<size_t>(n), seed, 0.f, 1.f);
  std::vector<int64_t> v(u.size());
  for (size_t i = 0; i < u.size(); ++i) v[i] = std::min<int64_t>(classes - 1, static_cast<int64_t>(u[i] * classes));
  return Tensor::from_vector(v, {n});
}

// Any tensor's values as doubles (on the host, row-major).
inline std::vector<double> vals(const Tensor& t_in) {
  Tensor t = t_in.to(lockstep::Device::cpu).contiguous();
  switch (t.dtype()) {
    case DType::f32: { auto v = t.to_vector<float>(); return {v.begin(), v.end()}; }
    case DType::f64: return t.to_vector<double>();
    case DType::i64: { auto v = t.to_vector<int64_t>(); return {v.begin(), v.end()}; }
    case DType::u8: { auto v = t.to_vector<uint8_t>(); return {v.begin(), v.end()}; }
  }
  return {};
}

// Rows [b, e) of a CPU tensor along dim 0, as a new contiguous tensor.
inline Tensor take_rows(const Tensor& t_in, int64_t b, int64_t e) {
  Tensor t = t_in.contiguous();
  Shape s = t.shape();
  const size_t row_bytes = s[0] ? t.nbytes() / static_cast<size_t>(s[0]) : 0;
  s[0] = e - b;
  Tensor out = Tensor::empty(s, t.dtype());
  std::memcpy(out.raw_data(), static_cast<const char*>(t.raw_data()) + row_bytes * b, row_bytes * (e - b));
  return out;
}

// "" when a and b have the same shape, dtype and bytes; otherwise where they first differ.
inline std::string bits_diff(const Tensor& a_in, const Tensor& b_in) {
  Tensor a = a_in.to(lockstep::Device::cpu).contiguous(), b = b_in.to(lockstep::Device::cpu).contiguous();
  if (a.shape() != b.shape() || a.dtype() != b.dtype())
    return "shape/dtype " + a.str() + " vs " + b.str();
  if (lockstep::equal_bits(a, b)) return "";
  const size_t w = lockstep::dtype_size(a.dtype());
  const char* pa = static_cast<const char*>(a.raw_data());
  const char* pb = static_cast<const char*>(b.raw_data());
  auto va = vals(a), vb = vals(b);
  for (size_t i = 0; i < va.size(); ++i)
    if (std::memcmp(pa + i * w, pb + i * w, w) != 0) {
      std::ostringstream os;
      os.precision(10);
      os << "first difference at element " << i << " of " << va.size() << ": " << va[i] << " vs " << vb[i];
      return os.str();
    }
  return "bytes differ";
}

// ---- double-precision references ----

// out[i] = f(a[ia], b[ib]) under NumPy broadcasting.
inline std::vector<double> ref_broadcast(const Tensor& a, const Tensor& b,
                                         const std::function<double(double, double)>& f) {
  const Shape& sa = a.shape();
  const Shape& sb = b.shape();
  const size_t nd = std::max(sa.size(), sb.size());
  Shape pa(nd, 1), pb(nd, 1), so(nd);
  std::copy(sa.begin(), sa.end(), pa.begin() + (nd - sa.size()));
  std::copy(sb.begin(), sb.end(), pb.begin() + (nd - sb.size()));
  for (size_t d = 0; d < nd; ++d) so[d] = std::max(pa[d], pb[d]);
  auto va = vals(a), vb = vals(b);
  std::vector<double> out(static_cast<size_t>(lockstep::shape_numel(so)));
  for (size_t i = 0; i < out.size(); ++i) {
    int64_t rem = static_cast<int64_t>(i), ia = 0, ib = 0, sta = 1, stb = 1;
    for (size_t d = nd; d-- > 0;) {
      const int64_t c = rem % so[d];
      rem /= so[d];
      if (pa[d] != 1) ia += c * sta;
      if (pb[d] != 1) ib += c * stb;
      sta *= pa[d];
      stb *= pb[d];
    }
    out[i] = f(va[static_cast<size_t>(ia)], vb[static_cast<size_t>(ib)]);
  }
  return out;
}

inline std::vector<double> ref_map(const Tensor& x, const std::function<double(double)>& f) {
  auto v = vals(x);
  for (auto& e : v) e = f(e);
  return v;
}

// x seen as outer x d x inner, reduced over d by f(values of one fibre).
inline std::vector<double> ref_reduce(const Tensor& x, int64_t dim,
                                      const std::function<double(const std::vector<double>&)>& f) {
  auto v = vals(x);
  const Shape& s = x.shape();
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < dim; ++i) outer *= s[i];
  for (size_t i = dim + 1; i < s.size(); ++i) inner *= s[i];
  const int64_t d = s[dim];
  std::vector<double> out, fibre(static_cast<size_t>(d));
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < inner; ++j) {
      for (int64_t k = 0; k < d; ++k) fibre[k] = v[(o * d + k) * inner + j];
      out.push_back(f(fibre));
    }
  return out;
}

inline double ref_sum(const std::vector<double>& v) {
  double s = 0;
  for (double e : v) s += e;
  return s;
}

inline double ref_max(const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); }

inline double ref_argmax(const std::vector<double>& v) {
  return static_cast<double>(std::max_element(v.begin(), v.end()) - v.begin());  // the first maximum
}

// C = op(A) op(B) with A stored M x K (K x M if ta) and B K x N (N x K if tb).
inline std::vector<double> ref_matmul(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  auto va = vals(a), vb = vals(b);
  const int64_t M = ta ? a.size(1) : a.size(0), K = ta ? a.size(0) : a.size(1);
  const int64_t N = tb ? b.size(0) : b.size(1);
  std::vector<double> c(static_cast<size_t>(M * N));
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k) s += va[ta ? k * M + i : i * K + k] * vb[tb ? j * K + k : k * N + j];
      c[i * N + j] = s;
    }
  return c;
}

// log_softmax of each row of an n x c matrix.
inline std::vector<double> ref_log_softmax(const std::vector<double>& x, int64_t n, int64_t c) {
  std::vector<double> y(x.size());
  for (int64_t i = 0; i < n; ++i) {
    const double* r = &x[i * c];
    const double m = *std::max_element(r, r + c);
    double s = 0;
    for (int64_t j = 0; j < c; ++j) s += std::exp(r[j] - m);
    for (int64_t j = 0; j < c; ++j) y[i * c + j] = (r[j] - m) - std::log(s);
  }
  return y;
}

inline std::vector<double> ref_reduced(const std::vector<double>& per, lockstep::Reduction red, double count) {
  if (red == lockstep::Reduction::none) return per;
  const double s = ref_sum(per);
  return {red == lockstep::Reduction::sum ? s : s / count};
}

// ---- the table ----

namespace rows {
using namespace lockstep;

inline void binary_rows(std::vector<OpRow>& t) {
  using Fn = Tensor (*)(const Tensor&, const Tensor&);
  struct B { const char* name; Fn op; double (*f)(double, double); double lo, hi; };
  // b is kept away from 0 for div (a quotient by ~0 is not a useful float32 test).
  const B ops[] = {
      {"add", [](const Tensor& a, const Tensor& b) { return add(a, b); },
       [](double a, double b) { return a + b; }, -1, 1},
      {"sub", [](const Tensor& a, const Tensor& b) { return sub(a, b); },
       [](double a, double b) { return a - b; }, -1, 1},
      {"mul", [](const Tensor& a, const Tensor& b) { return mul(a, b); },
       [](double a, double b) { return a * b; }, -1, 1},
      {"div", [](const Tensor& a, const Tensor& b) { return div(a, b); },
       [](double a, double b) { return a / b; }, 0.5, 2},
      {"maximum", maximum, [](double a, double b) { return std::max(a, b); }, -1, 1},
      {"minimum", minimum, [](double a, double b) { return std::min(a, b); }, -1, 1},
  };
  for (const B& o : ops) {
    // a: 67 x 1 x 61 against b: 65 x 61 -> 67 x 65 x 61 (both operands broadcast).
    t.push_back(OpRow{std::string(o.name) + " broadcast",
                      [o](DType dt, bool small) {
                        return Ins{rnd(small ? Shape{2, 1, 3} : Shape{67, 1, 61}, 11, dt),
                                   rnd(small ? Shape{3, 3} : Shape{65, 61}, 12, dt, o.lo, o.hi)};
                      },
                      [o](const Ins& in, int64_t) { return Outs{o.op(in[0], in[1])}; },
                      [o](const Ins& in) { return Ref{ref_broadcast(in[0], in[1], o.f)}; }}
                    .tol(6e-8, 0).diff(2).batch(1, 1));
    // Same shapes, 517 x 523: the contiguous path, with a tail after the vector width.
    t.push_back(OpRow{std::string(o.name) + " same shape",
                      [o](DType dt, bool small) {
                        const Shape s = small ? Shape{3, 4} : Shape{517, 523};
                        return Ins{rnd(s, 13, dt), rnd(s, 14, dt, o.lo, o.hi)};
                      },
                      [o](const Ins& in, int64_t) { return Outs{o.op(in[0], in[1])}; },
                      [o](const Ins& in) { return Ref{ref_broadcast(in[0], in[1], o.f)}; }}
                    .tol(6e-8, 0).diff(2).batch(3, 1));
  }
}

inline void scalar_rows(std::vector<OpRow>& t) {
  auto mk = [](DType dt, bool small) { return Ins{rnd(small ? Shape{3, 5} : Shape{517, 523}, 21, dt)}; };
  t.push_back(OpRow{"add scalar", mk, [](const Ins& in, int64_t) { return Outs{add(in[0], 0.3)}; },
                    [](const Ins& in) { return Ref{ref_map(in[0], [](double x) { return x + double(0.3f); })}; }}
                  .tol(6e-8, 0).diff(1).batch(1, 1));
  t.push_back(OpRow{"mul scalar", mk, [](const Ins& in, int64_t) { return Outs{mul(in[0], -1.7)}; },
                    [](const Ins& in) { return Ref{ref_map(in[0], [](double x) { return x * double(-1.7f); })}; }}
                  .tol(6e-8, 0).diff(1).batch(1, 1));
  t.push_back(OpRow{"scale", mk, [](const Ins& in, int64_t) { return Outs{scale(in[0], 0.125)}; },
                    [](const Ins& in) { return Ref{ref_map(in[0], [](double x) { return x * 0.125; })}; }}
                  .tol(0, 0).diff(1).batch(1, 1));
  // axpy: fma(alpha, x, y) with one rounding; x: 67 x 1 x 61 broadcast against y: 65 x 61.
  t.push_back(OpRow{"axpy broadcast",
                    [](DType dt, bool small) {
                      return Ins{rnd(small ? Shape{2, 1, 3} : Shape{67, 1, 61}, 22, dt),
                                 rnd(small ? Shape{3, 3} : Shape{65, 61}, 23, dt)};
                    },
                    [](const Ins& in, int64_t) { return Outs{axpy(0.75, in[0], in[1])}; },
                    [](const Ins& in) {
                      return Ref{ref_broadcast(in[0], in[1], [](double x, double y) { return 0.75 * x + y; })};
                    }}
                  .tol(6e-8, 0).diff(2).batch(1, 1));
}

inline void compare_rows(std::vector<OpRow>& t) {
  using Fn = Tensor (*)(const Tensor&, const Tensor&);
  struct C { const char* name; Fn op; bool (*f)(double, double); };
  const C ops[] = {
      {"gt", gt, [](double a, double b) { return a > b; }}, {"lt", lt, [](double a, double b) { return a < b; }},
      {"ge", ge, [](double a, double b) { return a >= b; }}, {"le", le, [](double a, double b) { return a <= b; }},
      {"eq", eq, [](double a, double b) { return a == b; }}, {"ne", ne, [](double a, double b) { return a != b; }},
  };
  for (const C& o : ops)
    t.push_back(OpRow{std::string(o.name) + " broadcast",
                      [](DType dt, bool) { return Ins{rnd_ties({67, 1, 61}, 31, dt), rnd_ties({65, 61}, 32, dt)}; },
                      [o](const Ins& in, int64_t) { return Outs{o.op(in[0], in[1])}; },
                      [o](const Ins& in) {
                        auto f = [o](double a, double b) { return o.f(a, b) ? 1.0 : 0.0; };
                        return Ref{ref_broadcast(in[0], in[1], f)};
                      }}
                    .batch(1, 1));
  // where(cond, a, b), cond: 67 x 65 x 1 from a comparison, a: 65 x 61, b: 67 x 1 x 61.
  t.push_back(OpRow{"where broadcast",
                    [](DType dt, bool small) {
                      Tensor c = rnd(small ? Shape{2, 3, 1} : Shape{67, 65, 1}, 33, DType::f32);
                      return Ins{rnd(small ? Shape{3, 4} : Shape{65, 61}, 34, dt),
                                 rnd(small ? Shape{2, 1, 4} : Shape{67, 1, 61}, 35, dt),
                                 gt(c, Tensor::zeros({1}))};
                    },
                    [](const Ins& in, int64_t) { return Outs{where(in[2], in[0], in[1])}; },
                    [](const Ins& in) {
                      auto pick_a = ref_broadcast(in[2], in[0], [](double c, double) { return c; });
                      auto va = ref_broadcast(in[2], in[0], [](double, double a) { return a; });
                      auto vb = ref_broadcast(in[2], in[1], [](double, double b) { return b; });
                      for (size_t i = 0; i < va.size(); ++i) va[i] = pick_a[i] != 0 ? va[i] : vb[i];
                      return Ref{va};
                    }}
                  .diff(2).batch(6, 1));
}

inline void unary_rows(std::vector<OpRow>& t) {
  using Fn = Tensor (*)(const Tensor&);
  // exp, log, tanh, sigmoid and gelu are the project's own functions (base/math.h): a few ulp.
  struct U { const char* name; Fn op; double (*f)(double); double lo, hi, rtol, atol; };
  const U ops[] = {
      {"neg", [](const Tensor& x) { return neg(x); }, [](double x) { return -x; }, -1, 1, 0, 0},
      {"abs", [](const Tensor& x) { return abs(x); }, [](double x) { return std::fabs(x); }, -1, 1, 0, 0},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, [](double x) { return std::sqrt(x); }, 0.01, 4, 6e-8, 0},
      {"relu", [](const Tensor& x) { return relu(x); }, [](double x) { return x > 0 ? x : 0.0; }, -1, 1, 0, 0},
      {"exp", [](const Tensor& x) { return exp(x); }, [](double x) { return std::exp(x); }, -8, 8, 3e-7, 0},
      {"log", [](const Tensor& x) { return log(x); }, [](double x) { return std::log(x); }, 0.01, 8, 3e-7, 1e-7},
      {"tanh", [](const Tensor& x) { return tanh(x); }, [](double x) { return std::tanh(x); }, -5, 5, 3e-7, 1e-7},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, [](double x) { return 1 / (1 + std::exp(-x)); }, -8, 8,
       3e-7, 1e-7},
      {"gelu", [](const Tensor& x) { return gelu(x); },
       [](double x) { return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))); }, -5, 5,
       3e-7, 1e-7},
  };
  for (const U& o : ops)
    t.push_back(OpRow{o.name,
                      [o](DType dt, bool small) {
                        return Ins{rnd(small ? Shape{3, 5} : Shape{517, 523}, 41, dt, o.lo, o.hi)};
                      },
                      [o](const Ins& in, int64_t) { return Outs{o.op(in[0])}; },
                      [o](const Ins& in) { return Ref{ref_map(in[0], o.f)}; }}
                    .tol(o.rtol, o.atol).diff(1).batch(1, 1));
}

inline void matmul_rows(std::vector<OpRow>& t) {
  // M = 197 (six batch chunks and a tail), K = 129, N = 131: no size a multiple of a tile,
  // and over 2^20 products (the GEMM's least work per thread) several times.
  for (int v = 0; v < 4; ++v) {
    const bool ta = v & 1, tb = v & 2;
    std::string name = std::string("matmul") + (ta ? " trans_a" : "") + (tb ? " trans_b" : "");
    t.push_back(OpRow{name,
                      [ta, tb](DType dt, bool small) {
                        const int64_t M = small ? 3 : 197, K = small ? 4 : 129, N = small ? 5 : 131;
                        return Ins{rnd(ta ? Shape{K, M} : Shape{M, K}, 51, dt),
                                   rnd(tb ? Shape{N, K} : Shape{K, N}, 52, dt)};
                      },
                      [ta, tb](const Ins& in, int64_t) { return Outs{matmul(in[0], in[1], ta, tb)}; },
                      [ta, tb](const Ins& in) { return Ref{ref_matmul(in[0], in[1], ta, tb)}; }}
                    .tol(1e-6, 2e-5).diff(2).batch(ta ? 0 : 1, ta ? 0 : 1));
  }
  for (bool bias : {true, false})
    t.push_back(OpRow{bias ? "linear" : "linear no bias",
                      [bias](DType dt, bool small) {
                        const int64_t B = small ? 3 : 197, I = small ? 4 : 129, O = small ? 5 : 131;
                        return Ins{rnd({B, I}, 53, dt), rnd({O, I}, 54, dt), bias ? rnd({O}, 55, dt) : Tensor()};
                      },
                      [](const Ins& in, int64_t) { return Outs{linear(in[0], in[1], in[2])}; },
                      [bias](const Ins& in) {
                        auto y = ref_matmul(in[0], in[1], false, true);
                        if (bias) {
                          auto b = vals(in[2]);
                          for (size_t i = 0; i < y.size(); ++i) y[i] += b[i % b.size()];
                        }
                        return Ref{y};
                      }}
                    .tol(1e-6, 2e-5).diff(bias ? 3 : 2).batch(1, 1));
  // grad_weight (+)= grad_out^T x over a batch of 197 (the batch order over K).
  for (bool acc : {false, true})
    t.push_back(OpRow{acc ? "linear_grad_weight accumulate" : "linear_grad_weight",
                      [](DType dt, bool) {
                        return Ins{rnd({197, 131}, 56, dt), rnd({197, 129}, 57, dt), rnd({131, 129}, 58, dt)};
                      },
                      [acc](const Ins& in, int64_t) {
                        Tensor gw = in[2].clone();
                        linear_grad_weight(gw, in[0], in[1], acc);
                        return Outs{gw};
                      },
                      [acc](const Ins& in) {
                        auto g = ref_matmul(in[0], in[1], true, false);
                        auto w0 = vals(in[2]);
                        if (acc)
                          for (size_t i = 0; i < g.size(); ++i) g[i] += w0[i];
                        return Ref{g};
                      }}
                    .tol(1e-6, 2e-6));
}

inline void reduce_rows(std::vector<OpRow>& t) {
  // Whole tensor: 270373 = 66 reduction blocks of 4096 and a tail of 37.
  t.push_back(OpRow{"sum all", [](DType dt, bool small) { return Ins{rnd({small ? 9 : 270373}, 61, dt)}; },
                    [](const Ins& in, int64_t) { return Outs{sum(in[0])}; },
                    [](const Ins& in) { return Ref{{ref_sum(vals(in[0]))}}; }}
                  .tol(0, 5e-5).diff(1));
  t.push_back(OpRow{"mean all", [](DType dt, bool small) { return Ins{rnd({small ? 9 : 270373}, 62, dt)}; },
                    [](const Ins& in, int64_t) { return Outs{mean(in[0])}; },
                    [](const Ins& in) { return Ref{{ref_sum(vals(in[0])) / double(in[0].numel())}}; }}
                  .tol(0, 1e-8).diff(1));
  // Over one dim: the last (rows of 4133, contiguous order), a middle one and the first
  // (batch order; 70 rows = two chunks and a tail; 1000 rows = 32 chunks, enough for the
  // kernel's narrow-and-tall path at 2 and 3 threads). dim 0 reduces the batch itself: no
  // invariance there.
  struct D { const char* name; Shape full, small; int64_t dim; bool keep; unsigned batch; };
  const D dims[] = {{"last dim", {67, 4133}, {2, 5}, 1, false, 1},
                    {"last dim keepdim", {67, 4133}, {2, 5}, -1, true, 1},
                    {"middle dim", {61, 70, 67}, {2, 3, 4}, 1, false, 1},
                    {"dim 0", {70, 19}, {3, 4}, 0, false, 0},
                    {"dim 0 tall", {1000, 19}, {3, 4}, 0, false, 0}};
  for (const D& d : dims) {
    const int64_t rd = d.dim < 0 ? static_cast<int64_t>(d.full.size()) + d.dim : d.dim;
    t.push_back(OpRow{std::string("sum ") + d.name,
                      [d](DType dt, bool small) { return Ins{rnd(small ? d.small : d.full, 63, dt)}; },
                      [d](const Ins& in, int64_t) { return Outs{sum(in[0], d.dim, d.keep)}; },
                      [rd](const Ins& in) { return Ref{ref_reduce(in[0], rd, ref_sum)}; }}
                    .tol(0, 5e-5).diff(1).batch(d.batch, d.batch));
    t.push_back(OpRow{std::string("mean ") + d.name,
                      [d](DType dt, bool small) { return Ins{rnd(small ? d.small : d.full, 64, dt)}; },
                      [d](const Ins& in, int64_t) { return Outs{mean(in[0], d.dim, d.keep)}; },
                      [rd](const Ins& in) {
                        auto f = [](const std::vector<double>& v) { return ref_sum(v) / double(v.size()); };
                        return Ref{ref_reduce(in[0], rd, f)};
                      }}
                    .tol(1e-6, 1e-7).diff(1).batch(d.batch, d.batch));
  }
  // max/argmax with ties (multiples of 1/4); the finite-difference inputs have none.
  struct M { const char* name; Shape full, small; int64_t dim; };
  const M mdims[] = {{"last dim", {517, 523}, {3, 5}, 1}, {"middle dim", {61, 70, 67}, {2, 3, 4}, 1}};
  for (const M& d : mdims) {
    auto mk = [d](DType dt, bool small) { return Ins{small ? rnd(d.small, 65, dt) : rnd_ties(d.full, 66, dt)}; };
    t.push_back(OpRow{std::string("max ") + d.name, mk, [d](const Ins& in, int64_t) { return Outs{max(in[0], d.dim)}; },
                      [d](const Ins& in) { return Ref{ref_reduce(in[0], d.dim, ref_max)}; }}
                    .diff(1).batch(1, 1));
    t.push_back(OpRow{std::string("argmax ") + d.name, mk,
                      [d](const Ins& in, int64_t) { return Outs{argmax(in[0], d.dim)}; },
                      [d](const Ins& in) { return Ref{ref_reduce(in[0], d.dim, ref_argmax)}; }}
                    .batch(1, 1));
  }
}

inline void softmax_rows(std::vector<OpRow>& t) {
  // 517 x 45 rows, and 7 rows of 4133 (a row sum over more than one reduction block).
  struct S { const char* name; Shape full; };
  for (const S& s : {S{"", {517, 45}}, S{" wide", {7, 4133}}}) {
    auto mk = [s](DType dt, bool small) { return Ins{rnd(small ? Shape{3, 5} : s.full, 71, dt, -4, 4)}; };
    t.push_back(OpRow{std::string("softmax") + s.name, mk, [](const Ins& in, int64_t) { return Outs{softmax(in[0])}; },
                      [](const Ins& in) {
                        auto y = ref_log_softmax(vals(in[0]), in[0].size(0), in[0].size(1));
                        for (auto& e : y) e = std::exp(e);
                        return Ref{y};
                      }}
                    .tol(2e-6, 1e-9).diff(1).batch(1, 1));
    t.push_back(OpRow{std::string("log_softmax") + s.name, mk,
                      [](const Ins& in, int64_t) { return Outs{log_softmax(in[0])}; },
                      [](const Ins& in) { return Ref{ref_log_softmax(vals(in[0]), in[0].size(0), in[0].size(1))}; }}
                    .tol(1e-6, 2e-6).diff(1).batch(1, 1));
  }
}

inline void loss_rows(std::vector<OpRow>& t) {
  struct L { Reduction red; const char* name; double eps; };
  const L ce[] = {{Reduction::none, "none", 0}, {Reduction::mean, "mean", 0}, {Reduction::sum, "sum", 0},
                  {Reduction::none, "none smoothing 0.1", 0.1}, {Reduction::mean, "mean smoothing 0.1", 0.1}};
  for (const L& l : ce) {
    const unsigned b = l.red == Reduction::none ? 1 : 0;
    // 1000 rows (31 batch chunks and a tail of 8) of 13 classes; input 1 is the int64 target.
    t.push_back(OpRow{std::string("cross_entropy ") + l.name,
                      [](DType dt, bool small) {
                        const int64_t N = small ? 4 : 1000, C = small ? 5 : 13;
                        return Ins{rnd({N, C}, 81, dt, -3, 3), labels(N, C, 82)};
                      },
                      [l](const Ins& in, int64_t) { return Outs{cross_entropy(in[0], in[1], l.red, l.eps)}; },
                      [l](const Ins& in) {
                        const int64_t N = in[0].size(0), C = in[0].size(1);
                        auto lp = ref_log_softmax(vals(in[0]), N, C);
                        auto tg = vals(in[1]);
                        std::vector<double> per(static_cast<size_t>(N));
                        for (int64_t i = 0; i < N; ++i) {
                          const double nll = -lp[i * C + static_cast<int64_t>(tg[i])];
                          double s = 0;
                          for (int64_t j = 0; j < C; ++j) s += lp[i * C + j];
                          per[i] = l.eps == 0 ? nll : (1 - l.eps) * nll - s * (l.eps / C);
                        }
                        return Ref{ref_reduced(per, l.red, double(N))};
                      }}
                    .tol(1e-6, 2e-6).diff(1).batch(b ? 3 : 0, b));
  }
  const L mse[] = {{Reduction::none, "none", 0}, {Reduction::mean, "mean", 0}, {Reduction::sum, "sum", 0}};
  for (const L& l : mse) {
    const unsigned b = l.red == Reduction::none ? 3 : 0;
    t.push_back(OpRow{std::string("mse_loss ") + l.name,
                      [](DType dt, bool small) {
                        const Shape s = small ? Shape{3, 4} : Shape{1000, 67};
                        return Ins{rnd(s, 83, dt), rnd(s, 84, dt)};
                      },
                      [l](const Ins& in, int64_t) { return Outs{mse_loss(in[0], in[1], l.red)}; },
                      [l](const Ins& in) {
                        auto d = ref_broadcast(in[0], in[1], [](double x, double y) { return (x - y) * (x - y); });
                        return Ref{ref_reduced(d, l.red, double(d.size()))};
                      }}
                    .tol(1e-6, 1e-6).diff(1).batch(b, b ? 1 : 0));
  }
}

inline void batchnorm_rows(std::vector<OpRow>& t) {
  // x: 1000 x 67; inputs x, weight, bias (affine rows), then running_mean, running_var.
  for (bool training : {true, false})
    for (bool affine : {true, false}) {
      std::string name = std::string("batch_norm ") + (training ? "training" : "eval") + (affine ? " affine" : "");
      t.push_back(OpRow{name,
                        [affine](DType dt, bool small) {
                          const int64_t N = small ? 4 : 1000, C = small ? 3 : 67;
                          Ins in{rnd({N, C}, 91, dt, -2, 3)};
                          if (affine) in.insert(in.end(), {rnd({C}, 92, dt, 0.5, 1.5), rnd({C}, 93, dt)});
                          in.insert(in.end(), {rnd({C}, 94, dt), rnd({C}, 95, dt, 0.5, 2)});
                          return in;
                        },
                        [affine, training](const Ins& in, int64_t) {
                          const size_t r = affine ? 3 : 1;
                          Tensor rm = in[r].clone(), rv = in[r + 1].clone();
                          Tensor y = batch_norm(in[0], rm, rv, affine ? in[1] : Tensor(), affine ? in[2] : Tensor(),
                                                training, 0.1, 1e-5);
                          return training ? Outs{y, rm, rv} : Outs{y};
                        },
                        [affine, training](const Ins& in) {
                          const int64_t N = in[0].size(0), C = in[0].size(1);
                          const size_t r = affine ? 3 : 1;
                          auto x = vals(in[0]), rm = vals(in[r]), rv = vals(in[r + 1]);
                          std::vector<double> y(x.size()), mean(C), var(C);
                          for (int64_t c = 0; c < C; ++c) {
                            double s = 0, s2 = 0;
                            for (int64_t i = 0; i < N; ++i) s += x[i * C + c];
                            mean[c] = s / N;
                            for (int64_t i = 0; i < N; ++i) s2 += (x[i * C + c] - mean[c]) * (x[i * C + c] - mean[c]);
                            var[c] = s2 / N;
                            const double m = training ? mean[c] : rm[c], v = training ? var[c] : rv[c];
                            const double g = affine ? vals(in[1])[c] : 1, b = affine ? vals(in[2])[c] : 0;
                            for (int64_t i = 0; i < N; ++i)
                              y[i * C + c] = (x[i * C + c] - m) / std::sqrt(v + 1e-5) * g + b;
                            rm[c] = 0.9 * rm[c] + 0.1 * mean[c];
                            rv[c] = 0.9 * rv[c] + 0.1 * s2 / (N - 1);
                          }
                          return training ? Ref{y, rm, rv} : Ref{y};
                        }}
                      .tol(2e-6, 2e-6).diff(affine ? 3 : 1).batch(training ? 0 : 1, training ? 0 : 1));
    }
}

inline void dropout_rows(std::vector<OpRow>& t) {
  // 1000 x 67 = 67000 elements, rows of 67: a row starts inside a Philox block of 4. The reference draws
  // the mask from the rule of kernels/dropout.h with base/philox.h.
  const uint64_t seed = 1234, stream = 7, step = 5;
  const double p = 0.3;
  t.push_back(OpRow{"dropout",
                    [](DType dt, bool small) { return Ins{rnd(small ? Shape{3, 5} : Shape{1000, 67}, 101, dt)}; },
                    [=](const Ins& in, int64_t row0) {
                      const int64_t row = in[0].numel() / std::max<int64_t>(1, in[0].size(0));
                      const uint64_t off = static_cast<uint64_t>(row0 * row);
                      return Outs{dropout(in[0], p, true, seed, stream, step, off)};
                    },
                    [=](const Ins& in) {
                      auto y = vals(in[0]);
                      size_t kept = 0;
                      for (size_t i = 0; i < y.size(); ++i) {
                        const float u = lockstep::uniform_f32(seed, stream, (step << 40) + i);
                        const bool keep = u >= static_cast<float>(p);
                        kept += keep;
                        y[i] = keep ? y[i] / (1 - double(static_cast<float>(p))) : 0.0;
                      }
                      // The mask is not degenerate: about 70% kept.
                      CHECK(std::fabs(double(kept) / double(y.size()) - 0.7) < 0.05);
                      return Ref{y};
                    }}
                  .tol(2e-7, 0).diff(1).batch(1, 1));
  t.push_back(OpRow{"dropout eval",
                    [](DType dt, bool small) { return Ins{rnd(small ? Shape{3, 5} : Shape{1000, 67}, 102, dt)}; },
                    [=](const Ins& in, int64_t) { return Outs{dropout(in[0], p, false, seed, stream, step)}; },
                    [](const Ins& in) { return Ref{vals(in[0])}; }}
                  .diff(1).batch(1, 1));
}

// Three optimizer steps on a 517 x 131 parameter (inputs: p, then the three gradients);
// outputs: the parameter, then its state tensors. The update is elementwise, so row i of
// the parameter alone steps to the same bits.
inline Ins optim_inputs(DType dt, bool) {
  const Shape s{517, 131};
  return Ins{rnd(s, 111, dt), rnd(s, 112, dt), rnd(s, 113, dt), rnd(s, 114, dt)};
}

template <typename Opt, typename Options>
Outs optim_run(const Ins& in, const Options& o, const std::vector<std::string>& state) {
  Tensor p = in[0].clone();
  p.set_requires_grad(true);
  Opt opt({p}, o);
  for (int s = 1; s <= 3; ++s) {
    p.set_grad(in[s].clone());
    opt.step();
  }
  Outs out{p.detach().clone()};
  for (const auto& n : state) out.push_back(opt.state(0, n).clone());
  return out;
}

inline void optim_rows(std::vector<OpRow>& t) {
  struct S { const char* name; double momentum, dampening, wd; bool nesterov; };
  for (const S& c : {S{"sgd", 0, 0, 0, false}, S{"sgd momentum dampening", 0.9, 0.1, 0.01, false},
                     S{"sgd nesterov", 0.9, 0, 0.01, true}}) {
    const double lr = 0.1;
    auto opts =
        optim::SGDOptions(lr).momentum(c.momentum).dampening(c.dampening).weight_decay(c.wd).nesterov(c.nesterov);
    std::vector<std::string> st;
    if (c.momentum != 0) st.push_back("momentum_buffer");
    t.push_back(OpRow{std::string("optim ") + c.name, optim_inputs,
                      [opts, st](const Ins& in, int64_t) { return optim_run<optim::SGD>(in, opts, st); },
                      [c, lr](const Ins& in) {
                        auto p = vals(in[0]);
                        std::vector<double> b(p.size());
                        for (int s = 1; s <= 3; ++s) {
                          auto g = vals(in[s]);
                          for (size_t i = 0; i < p.size(); ++i) {
                            double gi = g[i] + c.wd * p[i];
                            if (c.momentum != 0) {
                              b[i] = s == 1 ? gi : c.momentum * b[i] + (1 - c.dampening) * gi;
                              gi = c.nesterov ? gi + c.momentum * b[i] : b[i];
                            }
                            p[i] -= lr * gi;
                          }
                        }
                        return c.momentum != 0 ? Ref{p, b} : Ref{p};
                      }}
                    .tol(1e-6, 1e-6).batch(15, c.momentum != 0 ? 3 : 1));
  }
  struct A { const char* name; double wd; bool decoupled, amsgrad; };
  for (const A& c : {A{"adam", 0.01, false, false}, A{"adamw", 0.1, true, false}, A{"adam amsgrad", 0, false, true}}) {
    const double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8;
    auto opts = optim::AdamOptions(lr).betas(b1, b2).eps(eps).weight_decay(c.wd).amsgrad(c.amsgrad);
    std::vector<std::string> st{"exp_avg", "exp_avg_sq"};
    if (c.amsgrad) st.push_back("max_exp_avg_sq");
    std::function<Outs(const Ins&, int64_t)> run = [opts, st](const Ins& in, int64_t) {
      return optim_run<optim::Adam>(in, opts, st);
    };
    if (c.decoupled)
      run = [opts, st](const Ins& in, int64_t) { return optim_run<optim::AdamW>(in, opts, st); };
    t.push_back(OpRow{std::string("optim ") + c.name, optim_inputs, run,
                      [=](const Ins& in) {
                        auto p = vals(in[0]);
                        std::vector<double> m(p.size()), v(p.size()), vmax(p.size());
                        for (int s = 1; s <= 3; ++s) {
                          auto g = vals(in[s]);
                          for (size_t i = 0; i < p.size(); ++i) {
                            double gi = g[i];
                            if (c.decoupled) p[i] *= 1 - lr * c.wd;
                            else gi += c.wd * p[i];
                            m[i] = b1 * m[i] + (1 - b1) * gi;
                            v[i] = b2 * v[i] + (1 - b2) * gi * gi;
                            vmax[i] = std::max(vmax[i], v[i]);
                            const double vv = c.amsgrad ? vmax[i] : v[i];
                            const double denom = std::sqrt(vv) / std::sqrt(1 - std::pow(b2, s)) + eps;
                            p[i] -= lr / (1 - std::pow(b1, s)) * m[i] / denom;
                          }
                        }
                        return c.amsgrad ? Ref{p, m, v, vmax} : Ref{p, m, v};
                      }}
                    .tol(1e-6, 1e-6).batch(15, c.amsgrad ? 15 : 7));
  }
}

// clip_grad_norm_ over two gradients, 37 x 19 and 100003 (25 reduction blocks);
// outputs: the clipped gradients and the total norm before clipping (float64, 0-d).
inline void clip_rows(std::vector<OpRow>& t) {
  const double inf = std::numeric_limits<double>::infinity();
  for (double nt : {2.0, 1.0, inf}) {
    const double max_norm = 0.5;
    t.push_back(OpRow{std::string("clip_grad_norm ") + (nt == inf ? "inf" : nt == 1 ? "L1" : "L2"),
                      [](DType dt, bool) { return Ins{rnd({37, 19}, 121, dt), rnd({100003}, 122, dt)}; },
                      [=](const Ins& in, int64_t) {
                        std::vector<Tensor> ps;
                        for (const Tensor& g : in) {
                          Tensor p = Tensor::zeros(g.shape(), g.dtype(), g.device());
                          p.set_requires_grad(true);
                          p.set_grad(g.clone());
                          ps.push_back(p);
                        }
                        const double total = optim::clip_grad_norm_(ps, max_norm, nt);
                        return Outs{ps[0].grad(), ps[1].grad(), Tensor::scalar(total, DType::f64)};
                      },
                      [=](const Ins& in) {
                        auto g0 = vals(in[0]), g1 = vals(in[1]);
                        double s = 0;
                        for (const auto* g : {&g0, &g1})
                          for (double e : *g)
                            s = nt == inf ? std::max(s, std::fabs(e)) : s + (nt == 1 ? std::fabs(e) : e * e);
                        const double total = nt == 2 ? std::sqrt(s) : s;
                        const double coef = std::min(1.0, max_norm / (total + 1e-6));
                        for (auto* g : {&g0, &g1})
                          for (double& e : *g) e *= coef;
                        return Ref{g0, g1, {total}};
                      }}
                    .tol(1e-6, 1e-8));
  }
}

}  // namespace rows
}  // namespace lockstep_test

#include "op_table_cnn.h"  // pooling, BatchNorm2d
#include "op_table_conv.h"
#include "op_table_transformer.h"  // embedding, norms, batched matmul, attention

namespace lockstep_test {

// Every row, built once.
inline const std::vector<OpRow>& op_table() {
  static const std::vector<OpRow> table = [] {
    std::vector<OpRow> t;
    rows::matmul_rows(t);
    rows::binary_rows(t);
    rows::scalar_rows(t);
    rows::compare_rows(t);
    rows::unary_rows(t);
    rows::reduce_rows(t);
    rows::softmax_rows(t);
    rows::loss_rows(t);
    rows::batchnorm_rows(t);
    rows::pool_rows(t);
    rows::batchnorm2d_rows(t);
    rows::dropout_rows(t);
    rows::optim_rows(t);
    rows::clip_rows(t);
    rows::conv_rows(t);
    rows::transformer_rows(t);
    return t;
  }();
  return table;
}

// ---- running a row ----

// A row's outputs and, when asked, the gradients of its first n_diff inputs under the
// objective sum(out[0] * w), w fixed weights; everything copied to the CPU.
struct RowResult {
  Outs outs;
  Outs grads;
};

inline Tensor objective_weights(const Tensor& out) {
  return rnd(out.shape(), 4242, out.dtype()).to(out.device());
}

inline RowResult run_row(const OpRow& r, const Ins& in, bool with_grads, int64_t row0 = 0) {
  Ins args = in;
  if (with_grads)
    for (int k = 0; k < r.n_diff; ++k)
      if (args[k].defined()) {
        args[k] = in[k].clone();
        args[k].set_requires_grad(true);
      }
  RowResult res;
  Outs outs = r.run(args, row0);
  if (with_grads && r.n_diff > 0) {
    lockstep::sum(lockstep::mul(outs[0], objective_weights(outs[0]))).backward();
    for (int k = 0; k < r.n_diff; ++k)
      if (args[k].defined()) res.grads.push_back(args[k].grad().to(lockstep::Device::cpu));
  }
  for (const Tensor& o : outs) res.outs.push_back(o.detach().to(lockstep::Device::cpu));
  return res;
}

// Every output and gradient of got equals want bit for bit.
inline void require_same_bits(const RowResult& got, const RowResult& want) {
  REQUIRE(got.outs.size() == want.outs.size());
  REQUIRE(got.grads.size() == want.grads.size());
  for (size_t j = 0; j < want.outs.size(); ++j) {
    INFO("output " << j << ": " << bits_diff(got.outs[j], want.outs[j]));
    REQUIRE(bits_diff(got.outs[j], want.outs[j]).empty());
  }
  for (size_t j = 0; j < want.grads.size(); ++j) {
    INFO("gradient of input " << j << ": " << bits_diff(got.grads[j], want.grads[j]));
    REQUIRE(bits_diff(got.grads[j], want.grads[j]).empty());
  }
}

}  // namespace lockstep_test
