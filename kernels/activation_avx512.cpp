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

}  // namespace lockstep
