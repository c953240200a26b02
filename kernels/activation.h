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
//            the rest is PyTorch's GeluBackward. ls_tanh is kernels/math.h.) For |x| so large
//            that x * x overflows (float: 1.8e19) dright is 0 * inf = NaN, as in PyTorch.
// CUDA: the same signatures with device pointers (kernels/no_cuda.cpp until issue 7).
#pragma once
#include <cstdint>

namespace lockstep {

// dx[i] = relu'(x[i]) * dy[i], i < n.
void relu_backward_cpu(float* dx, const float* dy, const float* x, int64_t n);
void relu_backward_cpu(double* dx, const double* dy, const double* x, int64_t n);
// dx[i] = dy[i] * (1 - y[i]^2), y = tanh(x) saved by the forward.
void tanh_backward_cpu(float* dx, const float* dy, const float* y, int64_t n);
void tanh_backward_cpu(double* dx, const double* dy, const double* y, int64_t n);
// dx[i] = dy[i] * (1 - y[i]) * y[i], y = sigmoid(x) saved by the forward.
void sigmoid_backward_cpu(float* dx, const float* dy, const float* y, int64_t n);
void sigmoid_backward_cpu(double* dx, const double* dy, const double* y, int64_t n);
// dx[i] = gelu'(x[i]) * dy[i] (tanh form), from the forward's input x.
void gelu_backward_cpu(float* dx, const float* dy, const float* x, int64_t n);
void gelu_backward_cpu(double* dx, const double* dy, const double* x, int64_t n);

// ---- CUDA: the same contracts with device pointers (not written yet: no_cuda.cpp) ----
void relu_backward_cuda(float* dx, const float* dy, const float* x, int64_t n);
void relu_backward_cuda(double* dx, const double* dy, const double* x, int64_t n);
void tanh_backward_cuda(float* dx, const float* dy, const float* y, int64_t n);
void tanh_backward_cuda(double* dx, const double* dy, const double* y, int64_t n);
void sigmoid_backward_cuda(float* dx, const float* dy, const float* y, int64_t n);
void sigmoid_backward_cuda(double* dx, const double* dy, const double* y, int64_t n);
void gelu_backward_cuda(float* dx, const float* dy, const float* x, int64_t n);
void gelu_backward_cuda(double* dx, const double* dy, const double* x, int64_t n);

}  // namespace lockstep
