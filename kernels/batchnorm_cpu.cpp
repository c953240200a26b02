// CPU BatchNorm1d (kernels/batchnorm.h). Threads split the C features; a task owns a range
// of whole columns and walks the rows in order, so each row's slice of the range is one
// contiguous run. The batch-order sums are fused with the terms they add (x, (x - mean)^2,
// dy, dy * xhat), so no N x C temporary is written; the order is still the canonical one:
// chunks of kBatchChunk rows accumulated from +0, chunk partials merged by TreeStack.
#include "kernels/batchnorm.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <vector>

#include "core/parallel.h"
#include "kernels/reduce_order.h"

namespace lockstep {
namespace {

constexpr int64_t kGrainElems = 16384;  // elements of x per task, at least

// out[0 .. width) = batch-order sums over rows 0 .. N-1, where add_row(acc, r) adds row r's
// terms into the chunk partials acc[0 .. width). mem is scratch for the tree.
template <typename T, typename AddRow>
void batch_sums(T* out, int64_t N, int64_t width, std::vector<T>& mem, const AddRow& add_row) {
  if (N <= 0) {
    std::fill(out, out + width, T(0));
    return;
  }
  const int64_t nchunks = (N + kBatchChunk - 1) / kBatchChunk;
  int64_t levels = 0;
  while ((int64_t(1) << levels) < nchunks) ++levels;
  mem.resize(static_cast<size_t>((levels + 1) * width));
  TreeStack<T> stack(mem.data(), width);
  for (int64_t r0 = 0; r0 < N; r0 += kBatchChunk) {
    T* acc = stack.next();
    std::fill(acc, acc + width, T(0));
    for (int64_t r = r0; r < std::min(N, r0 + kBatchChunk); ++r) add_row(acc, r);
    stack.push();
  }
  const T* total = stack.finish();
  std::copy(total, total + width, out);
}

template <typename T>
T inv_std(T var, T eps) {
  const T d = std::sqrt(var + eps);
  return d == T(0) ? T(0) : T(1) / d;
}

template <typename T>
void forward_impl(T* y, T* mean, T* rstd, T* running_mean, T* running_var, const T* x, const T* gamma,
                  const T* beta, int64_t N, int64_t C, bool training, T eps, T momentum) {
  assert(!training || N > 1);
  assert(training || (running_mean && running_var));
  const T Nf = static_cast<T>(N), N1 = static_cast<T>(N - 1);
  const int64_t grain = std::max<int64_t>(1, kGrainElems / std::max<int64_t>(N, 1));
  parallel_for(C, grain, [&](int64_t c0, int64_t c1) {
    const int64_t w = c1 - c0;
    T* m = mean + c0;
    T* rs = rstd + c0;
    if (training) {
      std::vector<T> mem, s(static_cast<size_t>(w));
      batch_sums(s.data(), N, w, mem, [&](T* acc, int64_t r) {
        const T* xr = x + r * C + c0;
        for (int64_t j = 0; j < w; ++j) acc[j] += xr[j];
      });
      for (int64_t j = 0; j < w; ++j) m[j] = s[j] / Nf;
      // second pass: squared deviations from the mean just computed
      batch_sums(s.data(), N, w, mem, [&](T* acc, int64_t r) {
        const T* xr = x + r * C + c0;
        for (int64_t j = 0; j < w; ++j) {
          const T d = xr[j] - m[j];
          acc[j] = std::fma(d, d, acc[j]);
        }
      });
      const T a = T(1) - momentum;
      for (int64_t j = 0; j < w; ++j) {
        rs[j] = inv_std(s[j] / Nf, eps);
        if (running_mean) running_mean[c0 + j] = a * running_mean[c0 + j] + momentum * m[j];
        if (running_var) running_var[c0 + j] = a * running_var[c0 + j] + momentum * (s[j] / N1);
      }
    } else {
      for (int64_t j = 0; j < w; ++j) {
        m[j] = running_mean[c0 + j];
        rs[j] = inv_std(running_var[c0 + j], eps);
      }
    }
    for (int64_t r = 0; r < N; ++r) {
      const T* xr = x + r * C + c0;
      T* yr = y + r * C + c0;
      for (int64_t j = 0; j < w; ++j) {
        T v = (xr[j] - m[j]) * rs[j];
        if (gamma) v = v * gamma[c0 + j];
        if (beta) v = v + beta[c0 + j];
        yr[j] = v;
      }
    }
  });
}

template <typename T>
void backward_impl(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* mean, const T* rstd,
                   const T* gamma, int64_t N, int64_t C, bool training) {
  const T Nf = static_cast<T>(N);
  const bool need_sums = training || dgamma || dbeta;
  const int64_t grain = std::max<int64_t>(1, kGrainElems / std::max<int64_t>(N, 1));
  parallel_for(C, grain, [&](int64_t c0, int64_t c1) {
    const int64_t w = c1 - c0;
    const T* m = mean + c0;
    const T* rs = rstd + c0;
    // b[0 .. w): sum of dy;  b[w .. 2w): sum of dy * xhat
    std::vector<T> mem, b(static_cast<size_t>(2 * w));
    if (need_sums) {
      batch_sums(b.data(), N, 2 * w, mem, [&](T* acc, int64_t r) {
        const T* xr = x + r * C + c0;
        const T* gr = dy + r * C + c0;
        for (int64_t j = 0; j < w; ++j) {
          const T xhat = (xr[j] - m[j]) * rs[j];
          acc[j] += gr[j];
          acc[w + j] = std::fma(gr[j], xhat, acc[w + j]);
        }
      });
      if (dbeta) std::copy(b.begin(), b.begin() + w, dbeta + c0);
      if (dgamma) std::copy(b.begin() + w, b.end(), dgamma + c0);
    }
    if (!dx) return;
    // per column: s = rstd * gamma, and for batch statistics the two means
    std::vector<T> s(static_cast<size_t>(w)), a1(static_cast<size_t>(w)), a2(static_cast<size_t>(w));
    for (int64_t j = 0; j < w; ++j) {
      s[j] = gamma ? rs[j] * gamma[c0 + j] : rs[j];
      if (training) a1[j] = b[j] / Nf, a2[j] = b[w + j] / Nf;
    }
    for (int64_t r = 0; r < N; ++r) {
      const T* xr = x + r * C + c0;
      const T* gr = dy + r * C + c0;
      T* dr = dx + r * C + c0;
      if (training) {
        for (int64_t j = 0; j < w; ++j) {
          const T xhat = (xr[j] - m[j]) * rs[j];
          dr[j] = ((gr[j] - a1[j]) - xhat * a2[j]) * s[j];
        }
      } else {
        for (int64_t j = 0; j < w; ++j) dr[j] = gr[j] * s[j];
      }
    }
  });
}

}  // namespace

// ---- the cut kernels: the fused kernels' expressions, one stage each ----

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
  forward_impl(y, mean, rstd, running_mean, running_var, x, gamma, beta, N, C, training, eps, momentum);
}
void batchnorm_forward_cpu(double* y, double* mean, double* rstd, double* running_mean, double* running_var,
                           const double* x, const double* gamma, const double* beta, int64_t N, int64_t C,
                           bool training, double eps, double momentum) {
  forward_impl(y, mean, rstd, running_mean, running_var, x, gamma, beta, N, C, training, eps, momentum);
}
void batchnorm_backward_cpu(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                            const float* mean, const float* rstd, const float* gamma, int64_t N, int64_t C,
                            bool training) {
  backward_impl(dx, dgamma, dbeta, dy, x, mean, rstd, gamma, N, C, training);
}
void batchnorm_backward_cpu(double* dx, double* dgamma, double* dbeta, const double* dy, const double* x,
                            const double* mean, const double* rstd, const double* gamma, int64_t N, int64_t C,
                            bool training) {
  backward_impl(dx, dgamma, dbeta, dy, x, mean, rstd, gamma, N, C, training);
}

}  // namespace lockstep
