// The LayerNorm / RMSNorm loops of kernels/layernorm_impl.h compiled for AVX-512F (only
// when LOCKSTEP_HAVE_AVX512; called only when the kernel's Exec says ex.avx512()). Same bits.
#include "kernels/layernorm_impl.h"

namespace lockstep {

#define LS_LN_AVX512(T)                                                                                           \
  void layer_norm_forward_avx512(const Exec& ex, T* y, T* mean, T* rstd, const T* x, const T* w, const T* b,      \
                               int64_t rows, int64_t C, T eps) {                                                \
    lnorm::layer_norm_forward_impl(ex, y, mean, rstd, x, w, b, rows, C, eps);                                   \
  }                                                                                                             \
  void layer_norm_backward_avx512(const Exec& ex, T* dx, T* dw, T* db, const T* dy, const T* x, const T* mean,    \
                                const T* rstd, const T* w, int64_t rows, int64_t C) {                           \
    lnorm::layer_norm_backward_impl(ex, dx, dw, db, dy, x, mean, rstd, w, rows, C);                             \
  }                                                                                                             \
  void rms_norm_forward_avx512(const Exec& ex, T* y, T* rstd, const T* x, const T* w, int64_t rows, int64_t C,    \
                             T eps) {                                                                           \
    lnorm::rms_norm_forward_impl(ex, y, rstd, x, w, rows, C, eps);                                              \
  }                                                                                                             \
  void rms_norm_backward_avx512(const Exec& ex, T* dx, T* dw, const T* dy, const T* x, const T* rstd, const T* w, \
                              int64_t rows, int64_t C) {                                                        \
    lnorm::rms_norm_backward_impl(ex, dx, dw, dy, x, rstd, w, rows, C);                                         \
  }
LS_LN_AVX512(float)
LS_LN_AVX512(double)
#undef LS_LN_AVX512

}  // namespace lockstep
