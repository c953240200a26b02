// CPU BatchNorm1d (kernels/batchnorm.h): the loops of kernels/batchnorm_impl.h, portable or
// AVX2 (batchnorm_avx2.cpp, the same loops compiled with -mavx2 -mfma) when simd_enabled().
#include "core/simd.h"
#include "kernels/batchnorm_impl.h"
#include "lockstep/config.h"

namespace lockstep {
namespace {

template <typename T>
void forward_any(T* y, T* mean, T* rstd, T* running_mean, T* running_var, const T* x, const T* gamma,
                 const T* beta, int64_t N, int64_t C, bool training, T eps, T momentum) {
#if LOCKSTEP_HAVE_AVX2
  if (simd_enabled())
    return batchnorm_forward_avx2(y, mean, rstd, running_mean, running_var, x, gamma, beta, N, C, training, eps,
                                  momentum);
#endif
  bn::forward_impl(y, mean, rstd, running_mean, running_var, x, gamma, beta, N, C, training, eps, momentum);
}

template <typename T>
void backward_any(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* mean, const T* rstd,
                  const T* gamma, int64_t N, int64_t C, bool training) {
#if LOCKSTEP_HAVE_AVX2
  if (simd_enabled())
    return batchnorm_backward_avx2(dx, dgamma, dbeta, dy, x, mean, rstd, gamma, N, C, training);
#endif
  bn::backward_impl(dx, dgamma, dbeta, dy, x, mean, rstd, gamma, N, C, training);
}

}  // namespace

void batchnorm_forward_cpu(float* y, float* mean, float* rstd, float* running_mean, float* running_var,
                           const float* x, const float* gamma, const float* beta, int64_t N, int64_t C,
                           bool training, float eps, float momentum) {
  forward_any(y, mean, rstd, running_mean, running_var, x, gamma, beta, N, C, training, eps, momentum);
}
void batchnorm_forward_cpu(double* y, double* mean, double* rstd, double* running_mean, double* running_var,
                           const double* x, const double* gamma, const double* beta, int64_t N, int64_t C,
                           bool training, double eps, double momentum) {
  forward_any(y, mean, rstd, running_mean, running_var, x, gamma, beta, N, C, training, eps, momentum);
}
void batchnorm_backward_cpu(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                            const float* mean, const float* rstd, const float* gamma, int64_t N, int64_t C,
                            bool training) {
  backward_any(dx, dgamma, dbeta, dy, x, mean, rstd, gamma, N, C, training);
}
void batchnorm_backward_cpu(double* dx, double* dgamma, double* dbeta, const double* dy, const double* x,
                            const double* mean, const double* rstd, const double* gamma, int64_t N, int64_t C,
                            bool training) {
  backward_any(dx, dgamma, dbeta, dy, x, mean, rstd, gamma, N, C, training);
}

}  // namespace lockstep
