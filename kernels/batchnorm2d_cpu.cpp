// CPU BatchNorm2d (kernels/batchnorm2d.h): the loops of kernels/batchnorm2d_impl.h, portable
// or AVX2 (batchnorm2d_avx2.cpp, the same templates compiled with -mavx2 -mfma) when ex.avx2().
#include "kernels/batchnorm2d_impl.h"
#include "lockstep/config.h"

namespace lockstep {

template <typename T>
void batchnorm2d_forward_cpu(const Exec& ex, T* y, T* mean, T* rstd, T* running_mean, T* running_var, const T* x,
                             const T* gamma, const T* beta, int64_t N, int64_t C, int64_t HW, bool training, T eps,
                             T momentum) {
#if LOCKSTEP_HAVE_AVX2
  if (ex.avx2())
    return batchnorm2d_forward_avx2(y, mean, rstd, running_mean, running_var, x, gamma, beta, N, C, HW, training,
                                    eps, momentum);
#endif
  (void)ex;
  bn2d::forward_impl(y, mean, rstd, running_mean, running_var, x, gamma, beta, N, C, HW, training, eps, momentum);
}

template <typename T>
void batchnorm2d_backward_cpu(const Exec& ex, T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* mean,
                              const T* rstd, const T* gamma, int64_t N, int64_t C, int64_t HW, bool training) {
#if LOCKSTEP_HAVE_AVX2
  if (ex.avx2())
    return batchnorm2d_backward_avx2(dx, dgamma, dbeta, dy, x, mean, rstd, gamma, N, C, HW, training);
#endif
  (void)ex;
  bn2d::backward_impl(dx, dgamma, dbeta, dy, x, mean, rstd, gamma, N, C, HW, training);
}

// ---- the cut kernels: the fused kernels' stages (portable build at every SIMD level) ----

namespace {
template <typename Fn>
void over_channel_groups(int64_t N, int64_t C, int64_t HW, const Fn& fn) {
  parallel_for(C, bn2d::channel_grain<float>(N, HW), [&](int64_t c0, int64_t c1) {
    bn::Scratch<float> mem;
    for (int64_t cb = c0; cb < c1; cb += bn2d::kGroup) fn(cb, std::min(bn2d::kGroup, c1 - cb), mem);
  });
}
}  // namespace

void batchnorm2d_sum_cpu(const Exec&, float* s1, const float* x, int64_t N, int64_t C, int64_t HW) {
  over_channel_groups(N, C, HW, [&](int64_t cb, int64_t w, bn::Scratch<float>& mem) {
    bn2d::channel_sums(s1 + cb, x, N, C, HW, cb, w, mem);
  });
}

void batchnorm2d_sqdev_sum_cpu(const Exec&, float* s2, const float* x, const float* mean, int64_t N, int64_t C,
                               int64_t HW) {
  over_channel_groups(N, C, HW, [&](int64_t cb, int64_t w, bn::Scratch<float>& mem) {
    bn2d::sqdev_sums(s2 + cb, x, mean + cb, N, C, HW, cb, w, mem);
  });
}

void batchnorm2d_normalize_cpu(const Exec&, float* y, const float* x, const float* mean, const float* rstd,
                               const float* gamma, const float* beta, int64_t N, int64_t C, int64_t HW) {
  parallel_for(N * C, std::max<int64_t>(1, bn::kGrainElems / std::max<int64_t>(HW, 1)), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t c = p % C;
      bn2d::normalize_plane(y + p * HW, x + p * HW, mean[c], rstd[c], gamma ? gamma + c : nullptr,
                            beta ? beta + c : nullptr, HW);
    }
  });
}

void batchnorm2d_backward_sums_cpu(const Exec&, float* b, const float* dy, const float* x, const float* mean,
                                   const float* rstd, int64_t N, int64_t C, int64_t HW) {
  over_channel_groups(N, C, HW, [&](int64_t cb, int64_t w, bn::Scratch<float>& mem) {
    float acc[2 * bn2d::kGroup];
    bn2d::backward_sums(acc, dy, x, mean + cb, rstd + cb, N, C, HW, cb, w, mem);
    for (int64_t j = 0; j < w; ++j) b[cb + j] = acc[j], b[C + cb + j] = acc[w + j];
  });
}

void batchnorm2d_backward_dx_cpu(const Exec&, float* dx, const float* dy, const float* x, const float* mean,
                                 const float* rstd, const float* gamma, const float* b, int64_t N, int64_t M_total,
                                 int64_t C, int64_t HW) {
  const float Nf = static_cast<float>(M_total);
  parallel_for(N * C, std::max<int64_t>(1, bn::kGrainElems / std::max<int64_t>(HW, 1)), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t c = p % C;
      const float s = gamma ? rstd[c] * gamma[c] : rstd[c];
      bn2d::dx_plane(dx + p * HW, dy + p * HW, x + p * HW, mean[c], rstd[c], b[c] / Nf, b[C + c] / Nf, s, HW);
    }
  });
}

#define LS_BATCHNORM2D(T)                                                                                        \
  template void batchnorm2d_forward_cpu<T>(const Exec&, T*, T*, T*, T*, T*, const T*, const T*, const T*,       \
                                           int64_t, int64_t, int64_t, bool, T, T);                              \
  template void batchnorm2d_backward_cpu<T>(const Exec&, T*, T*, T*, const T*, const T*, const T*, const T*,    \
                                            const T*, int64_t, int64_t, int64_t, bool);
LS_BATCHNORM2D(float)
LS_BATCHNORM2D(double)
#undef LS_BATCHNORM2D

}  // namespace lockstep
