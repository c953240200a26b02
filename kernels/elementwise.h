// Elementwise kernels: binary ops and comparisons with NumPy broadcasting, where(), axpy,
// scalar ops and unary math. Every output element depends only on the input elements at
// its position, computed by the same sequence of correctly rounded IEEE operations on every
// path, so results are bitwise reproducible for any thread count, SIMD path and batch:
// threads simply split the output.
//
// Broadcasting: the op front end describes the output as an up-to-8-d box and gives each
// input's element strides in it, 0 along the dims where that input is broadcast (NumPy
// rules, trailing dims aligned). make_broadcast merges adjacent dims that every operand
// walks contiguously and drops size-1 dims, so a same-shape op is 1-d with strides 1, a scalar
// operand has stride 0, and a row vector over a matrix is 2-d with strides (0, 1). Inputs
// are contiguous, so the innermost stride of every input is 0 or 1; the kernels rely on it.
//
// Semantics, element by element (T is float or double, written in T):
//   add a + b   sub a - b   mul a * b   div a / b
//   maximum: a if (a > b or a is NaN) else b   (NaN propagates; ties, -0 vs +0 included, give b)
//   minimum: a if (a < b or a is NaN) else b   (the same rules)
//   gt lt ge le eq ne: IEEE comparisons -> uint8 1/0 (NaN compares false, but ne is true)
//   where: cond != 0 ? a : b, copying bits
//   axpy:  fma(alpha, x, y) with one rounding
//   neg -x, abs |x| (sign bit cleared), sqrt (IEEE), relu: x if x > 0, NaN if x is NaN, else +0
//   exp, log, tanh: ls_expf/ls_logf/ls_tanhf (ls_exp/... for double; base/math.h)
//   sigmoid: ls_sigmoidf / ls_sigmoid (base/math.h: e = exp(-|x|), then a corrected
//            division of (x >= 0 ? 1 : e) by (1 + e); nothing overflows)
//   gelu (PyTorch approximate='tanh'), evaluated as
//       c = sqrt(2/pi) rounded to T;  x3 = (x * x) * x;  u = c * (x + 0.044715 * x3);
//       t = tanh(u);  y = (0.5 * x) * (1 + t)
//   silu:  y = x * sigmoid(x)  (one product of x and ls_sigmoidf(x) / ls_sigmoid(x))
// Compiled for AVX2+FMA the ls_* fma chains vectorise, while the portable build calls libm's
// fma for each one: exp 26 -> 0.5 ns and axpy 2.5 -> 0.15 ns per float on the dev box. So
// unary_cpu and axpy_cpu use elementwise_avx2.cpp when the Exec they are given says
// ex.avx2() (its SIMD level, base/exec.h): same operations, same bits.
// CUDA (elementwise_cuda.cu): the same signatures with device pointers, the same per-element
// functions (namespace elem below is host+device), one thread per output element.
#pragma once
#include <cmath>
#include <cstdint>

#include "base/exec.h"
#include "base/math.h"

namespace lockstep {

inline constexpr int kMaxBroadcastDims = 8;

enum class BinaryOp : uint8_t { add, sub, mul, div, maximum, minimum };
enum class CompareOp : uint8_t { gt, lt, ge, le, eq, ne };
enum class UnaryOp : uint8_t { neg, abs, sqrt, relu, exp, log, tanh, sigmoid, gelu, silu };

const char* binary_op_name(BinaryOp op);
const char* compare_op_name(CompareOp op);
const char* unary_op_name(UnaryOp op);

// The output box and each input's strides in it (inputs 0, 1, 2 = a, b, cond for where).
// ndim >= 1 after merging; a 0-d or all-ones output is ndim 1, shape {1}.
struct Broadcast {
  int ndim = 1;
  int64_t shape[kMaxBroadcastDims] = {1};
  int64_t stride[3][kMaxBroadcastDims] = {};
  int64_t numel() const {
    int64_t n = 1;
    for (int d = 0; d < ndim; ++d) n *= shape[d];
    return n;
  }
};

// Builds a Broadcast from the output shape and up to three input shapes (right-aligned,
// each dim equal to the output's or 1). Merges and drops dims as described above.
Broadcast make_broadcast(const int64_t* out_shape, int out_ndim, const int64_t* const* in_shapes,
                         const int* in_ndims, int nin);

// Every kernel takes the Exec first (base/exec.h): the SIMD level and mode it runs under,
// read once by the op's dispatch point; no kernel here reads a process-wide setting. Only
// unary and axpy look at it (ex.avx2() picks elementwise_avx2.cpp, same bits); the others
// take it for the common signature. T is float or double unless a line says otherwise.

// out = a op b over the box.
template <typename T>
void binary_cpu(const Exec& ex, BinaryOp op, T* out, const T* a, const T* b, const Broadcast& bc);
// out[i] = a[i] op s, i < n (a and out may be the same buffer).
template <typename T> void binary_scalar_cpu(const Exec& ex, BinaryOp op, T* out, const T* a, T s, int64_t n);
// out = (a op b) ? 1 : 0 over the box; T is float, double or int64 (labels against argmax).
template <typename T>
void compare_cpu(const Exec& ex, CompareOp op, uint8_t* out, const T* a, const T* b, const Broadcast& bc);
// out = cond ? a : b over the box; stride[2] is cond's. T is float, double, int64 or uint8
// (bits are copied).
template <typename T>
void where_cpu(const Exec& ex, T* out, const uint8_t* cond, const T* a, const T* b, const Broadcast& bc);
// out = fma(alpha, x, y) over the box (x is input 0, y input 1).
template <typename T> void axpy_cpu(const Exec& ex, T* out, T alpha, const T* x, const T* y, const Broadcast& bc);
// out[i] = op(x[i]), i < n (x and out may be the same buffer).
template <typename T> void unary_cpu(const Exec& ex, UnaryOp op, T* out, const T* x, int64_t n);
// The same on the calling thread only, for kernels that map inside their own parallel loop.
template <typename T> void unary_serial_cpu(const Exec& ex, UnaryOp op, T* out, const T* x, int64_t n);

// ---- AVX2 (kernels/elementwise_avx2.cpp; only with LOCKSTEP_HAVE_AVX2, when ex.avx2()) ----
void unary_avx2(UnaryOp op, float* out, const float* x, int64_t n);
void unary_avx2(UnaryOp op, double* out, const double* x, int64_t n);
// ---- AVX-512 (kernels/elementwise_avx512.cpp; only with LOCKSTEP_HAVE_AVX512, when ex.avx512()) ----
void unary_avx512(UnaryOp op, float* out, const float* x, int64_t n);
void unary_avx512(UnaryOp op, double* out, const double* x, int64_t n);
// One run of axpy: x advances when x_moves (else x[0] repeats), y likewise.
void axpy_run_avx2(float* out, float alpha, const float* x, const float* y, int64_t n, bool x_moves, bool y_moves);
void axpy_run_avx2(double* out, double alpha, const double* x, const double* y, int64_t n, bool x_moves,
                   bool y_moves);

// ---- CUDA: the same contracts with device pointers (elementwise_cuda.cu) ----
template <typename T>
void binary_cuda(const Exec& ex, BinaryOp op, T* out, const T* a, const T* b, const Broadcast& bc);
template <typename T> void binary_scalar_cuda(const Exec& ex, BinaryOp op, T* out, const T* a, T s, int64_t n);
template <typename T>
void compare_cuda(const Exec& ex, CompareOp op, uint8_t* out, const T* a, const T* b, const Broadcast& bc);
template <typename T>
void where_cuda(const Exec& ex, T* out, const uint8_t* cond, const T* a, const T* b, const Broadcast& bc);
template <typename T> void axpy_cuda(const Exec& ex, T* out, T alpha, const T* x, const T* y, const Broadcast& bc);
template <typename T> void unary_cuda(const Exec& ex, UnaryOp op, T* out, const T* x, int64_t n);

// ---- per-element definitions, shared by elementwise_cpu.cpp and elementwise_avx2.cpp ----
// static: every translation unit keeps its own copy, compiled with its own flags, so the
// linker can never hand the AVX2 build of a loop to the portable path. LS_HD: the scalar
// definitions are compiled for the GPU too (elementwise_cuda.cu), the same operations.
namespace elem {

LS_HD static inline float exp(float x) { return ls_expf(x); }
LS_HD static inline double exp(double x) { return ls_exp(x); }
LS_HD static inline float log(float x) { return ls_logf(x); }
LS_HD static inline double log(double x) { return ls_log(x); }
LS_HD static inline float tanh(float x) { return ls_tanhf(x); }
LS_HD static inline double tanh(double x) { return ls_tanh(x); }
LS_HD static inline float sigmoid(float x) { return ls_sigmoidf(x); }
LS_HD static inline double sigmoid(double x) { return ls_sigmoid(x); }
template <typename T>
LS_HD static inline T relu(T x) {
  return x > T(0) || x != x ? x : T(0);
}
// The tanh-form GELU, one rounding per step in this order (see the top of the file).
template <typename T>
LS_HD static inline T gelu(T x) {
  const T c = static_cast<T>(0.79788456080286535588);  // sqrt(2/pi)
  const T kappa = static_cast<T>(0.044715);
  const T x3 = (x * x) * x;
  const T u = c * (x + kappa * x3);
  return (T(0.5) * x) * (T(1) + elem::tanh(u));
}
template <typename T>
LS_HD static inline T silu(T x) {
  return x * sigmoid(x);
}

// out[i] = op(x[i]) for i < n: one plain loop per op, so each can vectorise.
template <typename T>
static inline void unary_map(UnaryOp op, T* out, const T* x, int64_t n) {
  switch (op) {
    case UnaryOp::neg: for (int64_t i = 0; i < n; ++i) out[i] = -x[i]; return;
    case UnaryOp::abs: for (int64_t i = 0; i < n; ++i) out[i] = std::fabs(x[i]); return;
    case UnaryOp::sqrt: for (int64_t i = 0; i < n; ++i) out[i] = std::sqrt(x[i]); return;
    case UnaryOp::relu: for (int64_t i = 0; i < n; ++i) out[i] = relu(x[i]); return;
    case UnaryOp::exp: for (int64_t i = 0; i < n; ++i) out[i] = elem::exp(x[i]); return;
    case UnaryOp::log: for (int64_t i = 0; i < n; ++i) out[i] = elem::log(x[i]); return;
    case UnaryOp::tanh: for (int64_t i = 0; i < n; ++i) out[i] = elem::tanh(x[i]); return;
    case UnaryOp::sigmoid: for (int64_t i = 0; i < n; ++i) out[i] = sigmoid(x[i]); return;
    case UnaryOp::gelu: for (int64_t i = 0; i < n; ++i) out[i] = gelu(x[i]); return;
    case UnaryOp::silu: for (int64_t i = 0; i < n; ++i) out[i] = silu(x[i]); return;
  }
}

// One run of axpy (see axpy_run_avx2).
template <bool XM, bool YM, typename T>
static inline void axpy_run(T* out, T alpha, const T* x, const T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = std::fma(alpha, x[XM ? i : 0], y[YM ? i : 0]);
}

}  // namespace elem
}  // namespace lockstep
