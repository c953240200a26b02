// The gelu and silu backward loops of activation.h compiled for AVX-512F (only when
// LOCKSTEP_HAVE_AVX512; called only when the kernel's Exec says ex.avx512()). The loops are
// the portable ones, as in activation_avx2.cpp: same bits, 16 lanes and no register spills.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math", "no-math-errno")
#endif

#include "kernels/activation.h"

namespace lockstep {

void gelu_backward_avx512(float* dx, const float* dy, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] = act::gelu_grad(dy[i], x[i]);
}
void gelu_backward_avx512(double* dx, const double* dy, const double* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] = act::gelu_grad(dy[i], x[i]);
}
void silu_backward_avx512(float* dx, const float* dy, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] = act::silu_grad(dy[i], x[i]);
}
void silu_backward_avx512(double* dx, const double* dy, const double* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] = act::silu_grad(dy[i], x[i]);
}

void gelu_forward_keep_avx512(float* y, float* t, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float ti = act::gelu_tanh(x[i]);
    t[i] = ti;
    y[i] = act::gelu_from_t(x[i], ti);
  }
}
void gelu_backward_kept_avx512(float* dx, const float* dy, const float* x, const float* t, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] = act::gelu_grad_t(dy[i], x[i], t[i]);
}
void gelu_forward_keep_avx512(double* y, double* t, const double* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double ti = act::gelu_tanh(x[i]);
    t[i] = ti;
    y[i] = act::gelu_from_t(x[i], ti);
  }
}
void gelu_backward_kept_avx512(double* dx, const double* dy, const double* x, const double* t, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] = act::gelu_grad_t(dy[i], x[i], t[i]);
}

}  // namespace lockstep
