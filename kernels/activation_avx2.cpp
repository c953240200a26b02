// The gelu and silu backward loops of activation.h compiled for AVX2+FMA (only when
// LOCKSTEP_HAVE_AVX2; called only when the kernel's Exec says ex.avx2()). The loops are
// the portable ones (act::gelu_grad, act::silu_grad, base/math.h's ls_tanhf/ls_sigmoidf),
// which GCC vectorises in this translation unit: every operation is a correctly rounded
// basic operation or an explicit fma, so a vector lane computes exactly what the portable
// build computes (tests/kernels/test_activation.cpp, "AVX2 and portable").
//
// As in elementwise_avx2.cpp: the selects of the ls_* functions vectorise only if FP
// operations may be assumed not to trap; that changes no value, only exception flags,
// which lockstep never reads. It must come before any include.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math", "no-math-errno")
#endif

#include "kernels/activation.h"

namespace lockstep {

// Plain overloads, not template instantiations: those would be weak symbols that the
// linker could share with the portable build (tests/isa_symbols.sh).
void gelu_backward_avx2(float* dx, const float* dy, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] = act::gelu_grad(dy[i], x[i]);
}
void gelu_backward_avx2(double* dx, const double* dy, const double* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] = act::gelu_grad(dy[i], x[i]);
}
void silu_backward_avx2(float* dx, const float* dy, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] = act::silu_grad(dy[i], x[i]);
}
void silu_backward_avx2(double* dx, const double* dy, const double* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] = act::silu_grad(dy[i], x[i]);
}

void gelu_forward_keep_avx2(float* y, float* t, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float ti = act::gelu_tanh(x[i]);
    t[i] = ti;
    y[i] = act::gelu_from_t(x[i], ti);
  }
}
void gelu_backward_kept_avx2(float* dx, const float* dy, const float* x, const float* t, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] = act::gelu_grad_t(dy[i], x[i], t[i]);
}
void gelu_forward_keep_avx2(double* y, double* t, const double* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double ti = act::gelu_tanh(x[i]);
    t[i] = ti;
    y[i] = act::gelu_from_t(x[i], ti);
  }
}
void gelu_backward_kept_avx2(double* dx, const double* dy, const double* x, const double* t, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] = act::gelu_grad_t(dy[i], x[i], t[i]);
}

}  // namespace lockstep
