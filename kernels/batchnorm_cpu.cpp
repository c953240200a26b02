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

// ---- the cut kernels: the fused kernels' expressions, one stage each ----

using bn::batch_sums;
using bn::inv_std;
using bn::kGrainElems;

void batchnorm_sum_cpu(float* s1, const float* x, int64_t N, int64_t C) {
  const int64_t grain = std::max<int64_t>(1, kGrainElems / std::max<int64_t>(N, 1));
  parallel_for(C, grain, [&](int64_t c0, int64_t c1) {
    std::vector<float> mem;
    batch_sums(s1 + c0, N, c1 - c0, mem, [&](float* acc, int64_t r) {
      const float* xr = x + r * C + c0;
      for (int64_t j = 0; j < c1 - c0; ++j) acc[j] += xr[j];
    });
  });
}

void batchnorm_mean_cpu(float* mean, const float* s1, int64_t N_total, int64_t C) {
  const float Nf = static_cast<float>(N_total);
  for (int64_t c = 0; c < C; ++c) mean[c] = s1[c] / Nf;
}

void batchnorm_sqdev_sum_cpu(float* s2, const float* x, const float* mean, int64_t N, int64_t C) {
  const int64_t grain = std::max<int64_t>(1, kGrainElems / std::max<int64_t>(N, 1));
  parallel_for(C, grain, [&](int64_t c0, int64_t c1) {
    std::vector<float> mem;
    const float* m = mean + c0;
    batch_sums(s2 + c0, N, c1 - c0, mem, [&](float* acc, int64_t r) {
      const float* xr = x + r * C + c0;
      for (int64_t j = 0; j < c1 - c0; ++j) {
        const float d = xr[j] - m[j];
        acc[j] = std::fma(d, d, acc[j]);
      }
    });
  });
}

void batchnorm_finish_stats_cpu(float* rstd, float* running_mean, float* running_var, const float* mean,
                                const float* s2, int64_t N_total, int64_t C, float eps, float momentum) {
  assert(N_total > 1);
  const float Nf = static_cast<float>(N_total), N1 = static_cast<float>(N_total - 1);
  const float a = 1.0f - momentum;
  for (int64_t c = 0; c < C; ++c) {
    rstd[c] = inv_std(s2[c] / Nf, eps);
    if (running_mean) running_mean[c] = a * running_mean[c] + momentum * mean[c];
    if (running_var) running_var[c] = a * running_var[c] + momentum * (s2[c] / N1);
  }
}

void batchnorm_normalize_cpu(float* y, const float* x, const float* mean, const float* rstd, const float* gamma,
                             const float* beta, int64_t N, int64_t C) {
  parallel_for(N, std::max<int64_t>(1, kGrainElems / std::max<int64_t>(C, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * C;
      float* yr = y + r * C;
      for (int64_t c = 0; c < C; ++c) {
        float v = (xr[c] - mean[c]) * rstd[c];
        if (gamma) v = v * gamma[c];
        if (beta) v = v + beta[c];
        yr[c] = v;
      }
    }
  });
}

void batchnorm_backward_sums_cpu(float* b, const float* dy, const float* x, const float* mean, const float* rstd,
                                 int64_t N, int64_t C) {
  const int64_t grain = std::max<int64_t>(1, kGrainElems / std::max<int64_t>(N, 1));
  parallel_for(C, grain, [&](int64_t c0, int64_t c1) {
    const int64_t w = c1 - c0;
    const float* m = mean + c0;
    const float* rs = rstd + c0;
    std::vector<float> mem, acc2(static_cast<size_t>(2 * w));
    batch_sums(acc2.data(), N, 2 * w, mem, [&](float* acc, int64_t r) {
      const float* xr = x + r * C + c0;
      const float* gr = dy + r * C + c0;
      for (int64_t j = 0; j < w; ++j) {
        const float xhat = (xr[j] - m[j]) * rs[j];
        acc[j] += gr[j];
        acc[w + j] = std::fma(gr[j], xhat, acc[w + j]);
      }
    });
    std::copy(acc2.begin(), acc2.begin() + w, b + c0);
    std::copy(acc2.begin() + w, acc2.end(), b + C + c0);
  });
}

void batchnorm_backward_dx_cpu(float* dx, const float* dy, const float* x, const float* mean, const float* rstd,
                               const float* gamma, const float* b, int64_t N, int64_t N_total, int64_t C) {
  const float Nf = static_cast<float>(N_total);
  std::vector<float> s(static_cast<size_t>(C)), a1(static_cast<size_t>(C)), a2(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; ++c) {
    s[c] = gamma ? rstd[c] * gamma[c] : rstd[c];
    a1[c] = b[c] / Nf, a2[c] = b[C + c] / Nf;
  }
  parallel_for(N, std::max<int64_t>(1, kGrainElems / std::max<int64_t>(C, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * C;
      const float* gr = dy + r * C;
      float* dr = dx + r * C;
      for (int64_t c = 0; c < C; ++c) {
        const float xhat = (xr[c] - mean[c]) * rstd[c];
        dr[c] = ((gr[c] - a1[c]) - xhat * a2[c]) * s[c];
      }
    }
  });
}

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
