// CPU LayerNorm / RMSNorm (kernels/layernorm.h): the loops of kernels/layernorm_impl.h,
// portable or AVX2 (layernorm_avx2.cpp, the same loops compiled with -mavx2 -mfma) when
// ex.avx2(), AVX-512 (layernorm_avx512.cpp) when ex.avx512().
#include "kernels/layernorm_impl.h"
#include "lockstep/config.h"

namespace lockstep {

template <typename T>
void layer_norm_forward_cpu(const Exec& ex, T* y, T* mean, T* rstd, const T* x, const T* w, const T* b, int64_t rows,
                            int64_t C, T eps) {
#if LOCKSTEP_HAVE_AVX512
  if (ex.avx512()) return layer_norm_forward_avx512(ex, y, mean, rstd, x, w, b, rows, C, eps);
#endif
#if LOCKSTEP_HAVE_AVX2
  if (ex.avx2()) return layer_norm_forward_avx2(ex, y, mean, rstd, x, w, b, rows, C, eps);
#endif
  lnorm::layer_norm_forward_impl(ex, y, mean, rstd, x, w, b, rows, C, eps);
}
template <typename T>
void layer_norm_backward_cpu(const Exec& ex, T* dx, T* dw, T* db, const T* dy, const T* x, const T* mean,
                             const T* rstd, const T* w, int64_t rows, int64_t C) {
#if LOCKSTEP_HAVE_AVX512
  if (ex.avx512()) return layer_norm_backward_avx512(ex, dx, dw, db, dy, x, mean, rstd, w, rows, C);
#endif
#if LOCKSTEP_HAVE_AVX2
  if (ex.avx2()) return layer_norm_backward_avx2(ex, dx, dw, db, dy, x, mean, rstd, w, rows, C);
#endif
  lnorm::layer_norm_backward_impl(ex, dx, dw, db, dy, x, mean, rstd, w, rows, C);
}
template <typename T>
void rms_norm_forward_cpu(const Exec& ex, T* y, T* rstd, const T* x, const T* w, int64_t rows, int64_t C, T eps) {
#if LOCKSTEP_HAVE_AVX512
  if (ex.avx512()) return rms_norm_forward_avx512(ex, y, rstd, x, w, rows, C, eps);
#endif
#if LOCKSTEP_HAVE_AVX2
  if (ex.avx2()) return rms_norm_forward_avx2(ex, y, rstd, x, w, rows, C, eps);
#endif
  lnorm::rms_norm_forward_impl(ex, y, rstd, x, w, rows, C, eps);
}
template <typename T>
void rms_norm_backward_cpu(const Exec& ex, T* dx, T* dw, const T* dy, const T* x, const T* rstd, const T* w,
                           int64_t rows, int64_t C) {
#if LOCKSTEP_HAVE_AVX512
  if (ex.avx512()) return rms_norm_backward_avx512(ex, dx, dw, dy, x, rstd, w, rows, C);
#endif
#if LOCKSTEP_HAVE_AVX2
  if (ex.avx2()) return rms_norm_backward_avx2(ex, dx, dw, dy, x, rstd, w, rows, C);
#endif
  lnorm::rms_norm_backward_impl(ex, dx, dw, dy, x, rstd, w, rows, C);
}

#define LS_LAYERNORM(T)                                                                                            \
  template void layer_norm_forward_cpu<T>(const Exec&, T*, T*, T*, const T*, const T*, const T*, int64_t, int64_t, \
                                          T);                                                                      \
  template void layer_norm_backward_cpu<T>(const Exec&, T*, T*, T*, const T*, const T*, const T*, const T*,        \
                                           const T*, int64_t, int64_t);                                            \
  template void rms_norm_forward_cpu<T>(const Exec&, T*, T*, const T*, const T*, int64_t, int64_t, T);             \
  template void rms_norm_backward_cpu<T>(const Exec&, T*, T*, const T*, const T*, const T*, const T*, int64_t,     \
                                         int64_t);
LS_LAYERNORM(float)
LS_LAYERNORM(double)
#undef LS_LAYERNORM

}  // namespace lockstep
