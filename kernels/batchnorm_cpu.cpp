// CPU BatchNorm1d (kernels/batchnorm.h): the loops of kernels/batchnorm_impl.h, portable or
// AVX2 (batchnorm_avx2.cpp, the same loops compiled with -mavx2 -mfma) when ex.avx2().
#include "kernels/batchnorm_impl.h"
#include "lockstep/config.h"

namespace lockstep {
namespace {

template <typename T>
void forward_any(const Exec& ex, T* y, T* mean, T* rstd, T* running_mean, T* running_var, const T* x, const T* gamma,
                 const T* beta, int64_t N, int64_t C, bool training, T eps, T momentum) {
#if LOCKSTEP_HAVE_AVX2
  if (ex.avx2())
    return batchnorm_forward_avx2(y, mean, rstd, running_mean, running_var, x, gamma, beta, N, C, training, eps,
                                  momentum);
#endif
  (void)ex;
  bn::forward_impl(y, mean, rstd, running_mean, running_var, x, gamma, beta, N, C, training, eps, momentum);
}

template <typename T>
void backward_any(const Exec& ex, T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* mean, const T* rstd,
                  const T* gamma, int64_t N, int64_t C, bool training) {
#if LOCKSTEP_HAVE_AVX2
  if (ex.avx2())
    return batchnorm_backward_avx2(dx, dgamma, dbeta, dy, x, mean, rstd, gamma, N, C, training);
#endif
  (void)ex;
  bn::backward_impl(dx, dgamma, dbeta, dy, x, mean, rstd, gamma, N, C, training);
}

}  // namespace

// ---- the cut kernels: the fused kernels' expressions, one stage each ----

namespace {

// Whole columns per task (the batch order of a column never depends on the split).
template <typename Fn>
void over_columns(int64_t N, int64_t C, const Fn& fn) {
  parallel_for(C, std::max<int64_t>(1, bn::kGrainElems / std::max<int64_t>(N, 1)), fn);
}
// Whole rows per task.
template <typename Fn>
void over_rows(int64_t N, int64_t C, const Fn& fn) {
  parallel_for(N, std::max<int64_t>(1, bn::kGrainElems / std::max<int64_t>(C, 1)), fn);
}

}  // namespace

void batchnorm_sum_cpu(const Exec&, float* s1, const float* x, int64_t N, int64_t C) {
  over_columns(N, C, [&](int64_t c0, int64_t c1) {
    bn::Scratch<float> mem;
    bn::column_sums(s1 + c0, x, N, C, c0, c1 - c0, mem);
  });
}

void batchnorm_mean_cpu(const Exec&, float* mean, const float* s1, int64_t N_total, int64_t C) {
  const float Nf = static_cast<float>(N_total);
  for (int64_t c = 0; c < C; ++c) mean[c] = s1[c] / Nf;
}

void batchnorm_sqdev_sum_cpu(const Exec&, float* s2, const float* x, const float* mean, int64_t N, int64_t C) {
  over_columns(N, C, [&](int64_t c0, int64_t c1) {
    bn::Scratch<float> mem;
    bn::sqdev_sums(s2 + c0, x, mean + c0, N, C, c0, c1 - c0, mem);
  });
}

void batchnorm_finish_stats_cpu(const Exec&, float* rstd, float* running_mean, float* running_var,
                                const float* mean, const float* s2, int64_t N_total, int64_t C, float eps,
                                float momentum) {
  assert(N_total > 1);
  const float Nf = static_cast<float>(N_total), N1 = static_cast<float>(N_total - 1);
  const float a = 1.0f - momentum;
  for (int64_t c = 0; c < C; ++c) {
    rstd[c] = bn::inv_std(s2[c] / Nf, eps);
    if (running_mean) running_mean[c] = a * running_mean[c] + momentum * mean[c];
    if (running_var) running_var[c] = a * running_var[c] + momentum * (s2[c] / N1);
  }
}

void batchnorm_normalize_cpu(const Exec&, float* y, const float* x, const float* mean, const float* rstd,
                             const float* gamma, const float* beta, int64_t N, int64_t C) {
  over_rows(N, C, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) bn::normalize_row(y + r * C, x + r * C, mean, rstd, gamma, beta, C);
  });
}

void batchnorm_backward_sums_cpu(const Exec&, float* b, const float* dy, const float* x, const float* mean,
                                 const float* rstd, int64_t N, int64_t C) {
  over_columns(N, C, [&](int64_t c0, int64_t c1) {
    const int64_t w = c1 - c0;
    bn::Scratch<float> mem, acc2(2 * w);
    bn::backward_sums(acc2.data(), dy, x, mean + c0, rstd + c0, N, C, c0, w, mem);
    std::copy(acc2.data(), acc2.data() + w, b + c0);
    std::copy(acc2.data() + w, acc2.data() + 2 * w, b + C + c0);
  });
}

void batchnorm_backward_dx_cpu(const Exec&, float* dx, const float* dy, const float* x, const float* mean,
                               const float* rstd, const float* gamma, const float* b, int64_t N, int64_t N_total,
                               int64_t C) {
  const float Nf = static_cast<float>(N_total);
  std::vector<float> s(static_cast<size_t>(C)), a1(static_cast<size_t>(C)), a2(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; ++c) {
    s[c] = gamma ? rstd[c] * gamma[c] : rstd[c];
    a1[c] = b[c] / Nf, a2[c] = b[C + c] / Nf;
  }
  over_rows(N, C, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      bn::dx_row(dx + r * C, dy + r * C, x + r * C, mean, rstd, a1.data(), a2.data(), s.data(), C);
  });
}

template <typename T>
void batchnorm_forward_cpu(const Exec& ex, T* y, T* mean, T* rstd, T* running_mean, T* running_var, const T* x,
                           const T* gamma, const T* beta, int64_t N, int64_t C, bool training, T eps, T momentum) {
  forward_any(ex, y, mean, rstd, running_mean, running_var, x, gamma, beta, N, C, training, eps, momentum);
}
template <typename T>
void batchnorm_backward_cpu(const Exec& ex, T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* mean,
                            const T* rstd, const T* gamma, int64_t N, int64_t C, bool training) {
  backward_any(ex, dx, dgamma, dbeta, dy, x, mean, rstd, gamma, N, C, training);
}

#define LS_BATCHNORM(T)                                                                                        \
  template void batchnorm_forward_cpu<T>(const Exec&, T*, T*, T*, T*, T*, const T*, const T*, const T*, int64_t, \
                                         int64_t, bool, T, T);                                                 \
  template void batchnorm_backward_cpu<T>(const Exec&, T*, T*, T*, const T*, const T*, const T*, const T*,      \
                                          const T*, int64_t, int64_t, bool);
LS_BATCHNORM(float)
LS_BATCHNORM(double)
#undef LS_BATCHNORM

}  // namespace lockstep
