// Activation backward kernels (the forwards are unary ops in kernels/elementwise.h).
// n elements, contiguous. Each kernel WRITES dx (overwrites it); it does not add into it:
// the autograd engine accumulates. Every element is its own computation, written in T
// (float or double), so the bits are the same for any thread count, SIMD path or batch;
// threads split the elements.
//
// Formulas, in the exact order of operations (each line one rounding, no fma):
//   relu     dx = (x <= 0) ? +0 : dy         from the input x. The gradient at x == 0 is 0
//            (PyTorch's threshold_backward); a NaN x passes dy through, as PyTorch does
//            (its rule reads the output, which is NaN where x is NaN).
//   tanh     from the saved output y:  s = y * y;  u = 1 - s;  dx = dy * u
//   sigmoid  from the saved output y:  u = 1 - y;  v = dy * u;  dx = v * y
//            (PyTorch's grouping: (dy * (1 - y)) * y)
//   gelu     tanh form (PyTorch approximate='tanh'), from the input x. With
//            c = sqrt(2/pi) and k = 0.044715 rounded to T (the constants of the forward):
//              gelu(x) = 0.5 x (1 + tanh(u)),  u = c (x + k x^3)
//              gelu'(x) = 0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 k x^2),  t = tanh(u)
//            evaluated as
//              x2 = x * x;  x3 = x2 * x;  w = k * x3;  v = x + w;  u = c * v;  t = ls_tanh(u)
//              left = 0.5 * x;  right = 1 + t;  dleft = 0.5 * right
//              t2 = t * t;  dt = 1 - t2
//              k3 = 3 * k;  q = k3 * x2;  r = 1 + q;  du = c * r
//              a = left * dt;  dright = a * du
//              g = dleft + dright;  dx = dy * g
//            (u is the forward's u bit for bit: x3 = (x * x) * x there too; the grouping of
//            the rest is PyTorch's GeluBackward. ls_tanh is base/math.h.) For |x| so large
//            that x * x overflows (float: 1.8e19) dright is 0 * inf = NaN, as in PyTorch.
//   silu     from the input x (PyTorch's SiluBackward grouping):
//              s = sigmoid(x) (ls_sigmoidf);  u = 1 - s;  v = x * u;  r = 1 + v;  q = s * r
//              dx = dy * q
// CUDA (activation_cuda.cu): the same signatures with device pointers; both files evaluate
// the per-element functions of namespace act below (host+device), so the bits agree.
#pragma once
#include <cstdint>

#include "base/exec.h"
#include "base/math.h"

namespace lockstep {

// T is float or double. The Exec (base/exec.h: mode, SIMD level) is the dispatch point's;
// no activation kernel varies by it, but every kernel takes it (one signature per kernel).
// dx[i] = relu'(x[i]) * dy[i], i < n.
template <typename T> void relu_backward_cpu(const Exec& ex, T* dx, const T* dy, const T* x, int64_t n);
// dx[i] = dy[i] * (1 - y[i]^2), y = tanh(x) saved by the forward.
template <typename T> void tanh_backward_cpu(const Exec& ex, T* dx, const T* dy, const T* y, int64_t n);
// dx[i] = dy[i] * (1 - y[i]) * y[i], y = sigmoid(x) saved by the forward.
template <typename T> void sigmoid_backward_cpu(const Exec& ex, T* dx, const T* dy, const T* y, int64_t n);
// dx[i] = gelu'(x[i]) * dy[i] (tanh form), from the forward's input x.
template <typename T> void gelu_backward_cpu(const Exec& ex, T* dx, const T* dy, const T* x, int64_t n);
// dx[i] = silu'(x[i]) * dy[i], from the forward's input x.
template <typename T> void silu_backward_cpu(const Exec& ex, T* dx, const T* dy, const T* x, int64_t n);

// gelu with its tanh kept (CPU, what autograd's gelu uses when it records): the forward
// writes y = gelu(x), the bits of unary gelu (elementwise.h), and t = tanh(u), the value
// both that forward and gelu_backward_cpu compute; the backward takes t instead of
// recomputing it and gives the bits of gelu_backward_cpu. Saves one ls_tanh per element.
template <typename T> void gelu_forward_keep_cpu(const Exec& ex, T* y, T* t, const T* x, int64_t n);
template <typename T>
void gelu_backward_kept_cpu(const Exec& ex, T* dx, const T* dy, const T* x, const T* t, int64_t n);

// ---- AVX2 (kernels/activation_avx2.cpp; only with LOCKSTEP_HAVE_AVX2, when ex.avx2()) ----
// The same loops on [0, n) of this thread, vectorised; the same bits as the portable loop.
void gelu_backward_avx2(float* dx, const float* dy, const float* x, int64_t n);
void gelu_backward_avx2(double* dx, const double* dy, const double* x, int64_t n);
void silu_backward_avx2(float* dx, const float* dy, const float* x, int64_t n);
void silu_backward_avx2(double* dx, const double* dy, const double* x, int64_t n);
void gelu_forward_keep_avx2(float* y, float* t, const float* x, int64_t n);
void gelu_forward_keep_avx2(double* y, double* t, const double* x, int64_t n);
void gelu_backward_kept_avx2(float* dx, const float* dy, const float* x, const float* t, int64_t n);
void gelu_backward_kept_avx2(double* dx, const double* dy, const double* x, const double* t, int64_t n);
// ---- AVX-512 (kernels/activation_avx512.cpp; only with LOCKSTEP_HAVE_AVX512, when ex.avx512()) ----
void gelu_backward_avx512(float* dx, const float* dy, const float* x, int64_t n);
void gelu_backward_avx512(double* dx, const double* dy, const double* x, int64_t n);
void silu_backward_avx512(float* dx, const float* dy, const float* x, int64_t n);
void silu_backward_avx512(double* dx, const double* dy, const double* x, int64_t n);
void gelu_forward_keep_avx512(float* y, float* t, const float* x, int64_t n);
void gelu_forward_keep_avx512(double* y, double* t, const double* x, int64_t n);
void gelu_backward_kept_avx512(float* dx, const float* dy, const float* x, const float* t, int64_t n);
void gelu_backward_kept_avx512(double* dx, const double* dy, const double* x, const double* t, int64_t n);

// ---- CUDA: the same contracts with device pointers (activation_cuda.cu) ----
template <typename T> void relu_backward_cuda(const Exec& ex, T* dx, const T* dy, const T* x, int64_t n);
template <typename T> void tanh_backward_cuda(const Exec& ex, T* dx, const T* dy, const T* y, int64_t n);
template <typename T> void sigmoid_backward_cuda(const Exec& ex, T* dx, const T* dy, const T* y, int64_t n);
template <typename T> void gelu_backward_cuda(const Exec& ex, T* dx, const T* dy, const T* x, int64_t n);
template <typename T> void silu_backward_cuda(const Exec& ex, T* dx, const T* dy, const T* x, int64_t n);

// ---- the per-element formulas (the order above), shared by the CPU and CUDA kernels ----
// static: each translation unit keeps its own copy, compiled with its own flags.
namespace act {

LS_HD static inline float tanh_of(float x) { return ls_tanhf(x); }
LS_HD static inline double tanh_of(double x) { return ls_tanh(x); }
LS_HD static inline float sigmoid_of(float x) { return ls_sigmoidf(x); }
LS_HD static inline double sigmoid_of(double x) { return ls_sigmoid(x); }

template <typename T>
LS_HD static inline T relu_grad(T dy, T x) {
  return x <= T(0) ? T(0) : dy;
}

template <typename T>
LS_HD static inline T tanh_grad(T dy, T y) {
  const T u = T(1) - y * y;
  return dy * u;
}

template <typename T>
LS_HD static inline T sigmoid_grad(T dy, T y) {
  const T v = dy * (T(1) - y);
  return v * y;
}

// tanh(u) of gelu at x: u as in the forward (x3 = (x * x) * x) and the backward.
template <typename T>
LS_HD static inline T gelu_tanh(T x) {
  const T c = static_cast<T>(0.79788456080286535588);  // sqrt(2/pi), as in the forward
  const T k = static_cast<T>(0.044715);
  const T x2 = x * x;
  const T x3 = x2 * x;
  const T u = c * (x + k * x3);
  return tanh_of(u);
}

// gelu'(x) * dy given t = gelu_tanh(x).
template <typename T>
LS_HD static inline T gelu_grad_t(T dy, T x, T t) {
  const T c = static_cast<T>(0.79788456080286535588);
  const T k = static_cast<T>(0.044715);
  const T x2 = x * x;
  const T dleft = T(0.5) * (T(1) + t);  // d/dx of the 0.5 x factor, times (1 + t)
  const T dt = T(1) - t * t;            // tanh'(u)
  const T k3 = T(3) * k;
  const T du = c * (T(1) + k3 * x2);    // u'(x)
  const T dright = ((T(0.5) * x) * dt) * du;
  return dy * (dleft + dright);
}

template <typename T>
LS_HD static inline T gelu_grad(T dy, T x) {
  return gelu_grad_t(dy, x, gelu_tanh(x));
}

// The forward from t = gelu_tanh(x): the bits of elem::gelu.
template <typename T>
LS_HD static inline T gelu_from_t(T x, T t) {
  return (T(0.5) * x) * (T(1) + t);
}

template <typename T>
LS_HD static inline T silu_grad(T dy, T x) {
  const T s = sigmoid_of(x);
  const T q = s * (T(1) + x * (T(1) - s));
  return dy * q;
}

}  // namespace act
}  // namespace lockstep
