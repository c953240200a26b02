// CUDA BatchNorm2d (kernels/batchnorm2d.h). The per-channel sums run through
// reduce_cuda.cuh's batch order with the sample as the row: one thread per (chunk of 32
// samples, channel) adds its samples' terms in (n, h, w) order from +0 into a double partial
// (x; fma(d, d, acc); dy; fma(dy, xhat, acc), as the CPU writes them), rounded to T when the
// chunk ends, then one thread per channel combines the chunk partials by tree_sum and
// finishes the channel. The elementwise passes are one thread
// per element. Same formulas, same order: the CPU's bits; no atomics.
// Fast mode (ex.fast()): the four sums use float atomics over groups of 64 samples
// (batch_reduce_atomic); the bits may then change from run to run.
#include "kernels/batchnorm2d.h"
#include "kernels/reduce_cuda.cuh"

namespace lockstep {
namespace {

using namespace cuda_detail;
using namespace cuda_reduce;

__device__ float sqrt_of(float v) { return sqrtf(v); }  // IEEE: --prec-sqrt=true
__device__ double sqrt_of(double v) { return sqrt(v); }

template <typename T>
__device__ T inv_std(T var, T eps) {
  const T d = sqrt_of(var + eps);
  return d == T(0) ? T(0) : T(1) / d;
}

template <typename T>
struct XStep {  // sample r's plane of channel j, in position order
  using acc_type = double;
  const T* x;
  int64_t C, HW;
  __device__ double operator()(double acc, int64_t, int64_t r, int64_t j) const {
    const T* p = x + (r * C + j) * HW;
    for (int64_t i = 0; i < HW; ++i) acc = acc + double(p[i]);
    return acc;
  }
};
template <typename T>
struct MeanFinish {
  T* mean;
  T Nf;
  __device__ void operator()(int64_t, int64_t j, T total) const { mean[j] = total / Nf; }
};
template <typename T>
struct DevStep {
  using acc_type = double;
  const T* x;
  const T* mean;
  int64_t C, HW;
  __device__ double operator()(double acc, int64_t, int64_t r, int64_t j) const {
    const T* p = x + (r * C + j) * HW;
    const T m = mean[j];
    for (int64_t i = 0; i < HW; ++i) {
      const double d = p[i] - m;  // the difference in T, then widened
      acc = fma_t(d, d, acc);
    }
    return acc;
  }
};
template <typename T>
struct VarFinish {
  T* rstd;
  T* running_mean;
  T* running_var;
  const T* mean;
  T Nf, N1, eps, momentum;
  __device__ void operator()(int64_t, int64_t j, T total) const {
    const T a = T(1) - momentum;
    rstd[j] = inv_std(total / Nf, eps);
    if (running_mean) running_mean[j] = a * running_mean[j] + momentum * mean[j];
    if (running_var) running_var[j] = a * running_var[j] + momentum * (total / N1);
  }
};

template <typename T>
__global__ void bn2d_running_stats_kernel(T* mean, T* rstd, const T* running_mean, const T* running_var, int64_t C,
                                          T eps) {
  LS_CUDA_FOR(j, C) {
    mean[j] = running_mean[j];
    rstd[j] = inv_std(running_var[j], eps);
  }
}

template <typename T>
__global__ void bn2d_normalize_kernel(T* y, const T* x, const T* mean, const T* rstd, const T* gamma, const T* beta,
                                 int64_t total, int64_t C, int64_t HW) {
  LS_CUDA_FOR(k, total) {
    const int64_t j = (k / HW) % C;
    T v = (x[k] - mean[j]) * rstd[j];
    if (gamma) v = v * gamma[j];
    if (beta) v = v + beta[j];
    y[k] = v;
  }
}

// o = 0 sums dy, o = 1 sums dy * xhat (one fma per term).
template <typename T>
struct GradStep {
  using acc_type = double;
  const T* dy;
  const T* x;
  const T* mean;
  const T* rstd;
  int64_t C, HW;
  __device__ double operator()(double acc, int64_t o, int64_t r, int64_t j) const {
    const int64_t base = (r * C + j) * HW;
    if (o == 0) {
      for (int64_t i = 0; i < HW; ++i) acc = acc + double(dy[base + i]);
      return acc;
    }
    const T m = mean[j], rs = rstd[j];
    for (int64_t i = 0; i < HW; ++i) {
      const T xhat = (x[base + i] - m) * rs;
      acc = fma_t(double(dy[base + i]), double(xhat), acc);
    }
    return acc;
  }
};
template <typename T>
struct GradFinish {
  T* b;
  T* dbeta;
  T* dgamma;
  int64_t C;
  __device__ void operator()(int64_t o, int64_t j, T total) const {
    b[o * C + j] = total;
    if (o == 0 && dbeta) dbeta[j] = total;
    if (o == 1 && dgamma) dgamma[j] = total;
  }
};

template <typename T>
__global__ void bn2d_dx_kernel(T* dx, const T* dy, const T* x, const T* mean, const T* rstd, const T* gamma, const T* b,
                          int64_t total, int64_t C, int64_t HW, T Nf, bool training) {
  LS_CUDA_FOR(k, total) {
    const int64_t j = (k / HW) % C;
    const T s = gamma ? rstd[j] * gamma[j] : rstd[j];
    if (training) {
      const T a1 = b[j] / Nf, a2 = b[C + j] / Nf;
      const T xhat = (x[k] - mean[j]) * rstd[j];
      dx[k] = ((dy[k] - a1) - xhat * a2) * s;
    } else {
      dx[k] = dy[k] * s;
    }
  }
}

}  // namespace

template <typename T>
void batchnorm2d_forward_cuda(const Exec& ex, T* y, T* mean, T* rstd, T* running_mean, T* running_var, const T* x,
                              const T* gamma, const T* beta, int64_t N, int64_t C, int64_t HW, bool training, T eps,
                              T momentum) {
  if (C <= 0) return;
  const bool fast = ex.fast();
  const T Nf = static_cast<T>(N * HW), N1 = static_cast<T>(N * HW - 1);
  if (training) {
    batch_reduce_mode<T>(fast, 1, N, C, XStep<T>{x, C, HW}, MeanFinish<T>{mean, Nf});
    batch_reduce_mode<T>(fast, 1, N, C, DevStep<T>{x, mean, C, HW},
                         VarFinish<T>{rstd, running_mean, running_var, mean, Nf, N1, eps, momentum});
  } else {
    LS_LAUNCH(bn2d_running_stats_kernel<T>, grid_for(C), kThreads, 0, cuda_stream(),
              mean, rstd, running_mean, running_var, C, eps);
    CUDA_CHECK_LAUNCH("bn2d_running_stats_kernel");
  }
  const int64_t total = N * C * HW;
  if (total <= 0) return;
  LS_LAUNCH(bn2d_normalize_kernel<T>, grid_for(total), kThreads, 0, cuda_stream(),
            y, x, mean, rstd, gamma, beta, total, C, HW);
  CUDA_CHECK_LAUNCH("bn2d_normalize_kernel");
}

template <typename T>
void batchnorm2d_backward_cuda(const Exec& ex, T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* mean,
                               const T* rstd, const T* gamma, int64_t N, int64_t C, int64_t HW, bool training) {
  if (C <= 0) return;
  const bool need_sums = training || dgamma || dbeta;
  DeviceBuffer<T> b(2 * C);
  if (need_sums)
    batch_reduce_mode<T>(ex.fast(), 2, N, C, GradStep<T>{dy, x, mean, rstd, C, HW},
                         GradFinish<T>{b.get(), dbeta, dgamma, C});
  const int64_t total = N * C * HW;
  if (!dx || total <= 0) return;
  LS_LAUNCH(bn2d_dx_kernel<T>, grid_for(total), kThreads, 0, cuda_stream(),
            dx, dy, x, mean, rstd, gamma, b.get(), total, C, HW, static_cast<T>(N * HW), training);
  CUDA_CHECK_LAUNCH("bn2d_dx_kernel");
}

#define LS_BATCHNORM2D(T)                                                                                       \
  template void batchnorm2d_forward_cuda<T>(const Exec&, T*, T*, T*, T*, T*, const T*, const T*, const T*,     \
                                            int64_t, int64_t, int64_t, bool, T, T);                            \
  template void batchnorm2d_backward_cuda<T>(const Exec&, T*, T*, T*, const T*, const T*, const T*, const T*,  \
                                             const T*, int64_t, int64_t, int64_t, bool);
LS_BATCHNORM2D(float)
LS_BATCHNORM2D(double)
#undef LS_BATCHNORM2D

}  // namespace lockstep
