// The BatchNorm2d loops of kernels/batchnorm2d_impl.h compiled for AVX2+FMA (only when
// LOCKSTEP_HAVE_AVX2; called when the kernel's Exec says ex.avx2()). The same templates: the
// plane passes vectorise, std::fma becomes one vfmadd. Same bits as the portable build.
#include "kernels/batchnorm2d_impl.h"

namespace lockstep {

void batchnorm2d_forward_avx2(float* y, float* mean, float* rstd, float* running_mean, float* running_var,
                              const float* x, const float* gamma, const float* beta, int64_t N, int64_t C, int64_t HW,
                              bool training, float eps, float momentum) {
  bn2d::forward_impl(y, mean, rstd, running_mean, running_var, x, gamma, beta, N, C, HW, training, eps, momentum);
}
void batchnorm2d_forward_avx2(double* y, double* mean, double* rstd, double* running_mean, double* running_var,
                              const double* x, const double* gamma, const double* beta, int64_t N, int64_t C,
                              int64_t HW, bool training, double eps, double momentum) {
  bn2d::forward_impl(y, mean, rstd, running_mean, running_var, x, gamma, beta, N, C, HW, training, eps, momentum);
}
void batchnorm2d_backward_avx2(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                               const float* mean, const float* rstd, const float* gamma, int64_t N, int64_t C,
                               int64_t HW, bool training) {
  bn2d::backward_impl(dx, dgamma, dbeta, dy, x, mean, rstd, gamma, N, C, HW, training);
}
void batchnorm2d_backward_avx2(double* dx, double* dgamma, double* dbeta, const double* dy, const double* x,
                               const double* mean, const double* rstd, const double* gamma, int64_t N, int64_t C,
                               int64_t HW, bool training) {
  bn2d::backward_impl(dx, dgamma, dbeta, dy, x, mean, rstd, gamma, N, C, HW, training);
}

}  // namespace lockstep
