// CUDA BatchNorm1d (kernels/batchnorm.h). Every sum over the batch is the canonical batch
// order through reduce_cuda.cuh: one thread per (chunk of 32 rows, feature) adds the
// chunk's terms in row order from +0 (x; fma(d, d, acc); dy; fma(dy, xhat, acc), as the
// CPU writes them), then one thread per feature combines the chunk partials by tree_sum
// and finishes the feature's statistics. The elementwise passes are one thread per
// element. Same formulas, same order, so the CPU's bits; no atomics.
// Fast mode (ex.fast(), the Exec's mode): the four sums use float atomics instead
// (reduce_cuda.cuh, batch_reduce_atomic); the bits may then change from run to run.
#include "kernels/batchnorm.h"
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

// ---- forward ----

template <typename T>
struct XStep {  // acc + x[r, j]
  const T* x;
  int64_t C;
  __device__ T operator()(T acc, int64_t, int64_t r, int64_t j) const { return acc + x[r * C + j]; }
};
template <typename T>
struct MeanFinish {  // mean = S1 / N
  T* mean;
  T Nf;
  __device__ void operator()(int64_t, int64_t j, T total) const { mean[j] = total / Nf; }
};
template <typename T>
struct DevStep {  // fma(d, d, acc), d = x[r, j] - mean[j]
  const T* x;
  const T* mean;
  int64_t C;
  __device__ T operator()(T acc, int64_t, int64_t r, int64_t j) const {
    const T d = x[r * C + j] - mean[j];
    return fma_t(d, d, acc);
  }
};
template <typename T>
struct VarFinish {  // rstd from the biased variance; running statistics from the unbiased one
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
__global__ void running_stats_kernel(T* mean, T* rstd, const T* running_mean, const T* running_var, int64_t C, T eps) {
  LS_CUDA_FOR(j, C) {
    mean[j] = running_mean[j];
    rstd[j] = inv_std(running_var[j], eps);
  }
}

template <typename T>
__global__ void normalize_kernel(T* y, const T* x, const T* mean, const T* rstd, const T* gamma, const T* beta,
                                 int64_t N, int64_t C) {
  LS_CUDA_FOR(k, N * C) {
    const int64_t j = k % C;
    T v = (x[k] - mean[j]) * rstd[j];
    if (gamma) v = v * gamma[j];
    if (beta) v = v + beta[j];
    y[k] = v;
  }
}

template <typename T>
void forward_impl(bool fast, T* y, T* mean, T* rstd, T* running_mean, T* running_var, const T* x, const T* gamma,
                  const T* beta, int64_t N, int64_t C, bool training, T eps, T momentum) {
  if (C <= 0) return;
  cudaStream_t s = cuda_stream();
  const T Nf = static_cast<T>(N), N1 = static_cast<T>(N - 1);
  if (training) {
    batch_reduce_mode<T>(fast, 1, N, C, XStep<T>{x, C}, MeanFinish<T>{mean, Nf});
    batch_reduce_mode<T>(fast, 1, N, C, DevStep<T>{x, mean, C},
                         VarFinish<T>{rstd, running_mean, running_var, mean, Nf, N1, eps, momentum});
  } else {
    LS_LAUNCH(running_stats_kernel, grid_for(C), kThreads, 0, s, mean, rstd, running_mean, running_var, C, eps);
    CUDA_CHECK_LAUNCH("running_stats_kernel");
  }
  if (N <= 0) return;
  LS_LAUNCH(normalize_kernel, grid_for(N * C), kThreads, 0, s, y, x, mean, rstd, gamma, beta, N, C);
  CUDA_CHECK_LAUNCH("normalize_kernel");
}

// ---- backward ----

// Two reductions in one pass: o = 0 sums dy, o = 1 sums dy * xhat (one fma per term).
template <typename T>
struct GradStep {
  const T* dy;
  const T* x;
  const T* mean;
  const T* rstd;
  int64_t C;
  __device__ T operator()(T acc, int64_t o, int64_t r, int64_t j) const {
    const T g = dy[r * C + j];
    if (o == 0) return acc + g;
    const T xhat = (x[r * C + j] - mean[j]) * rstd[j];
    return fma_t(g, xhat, acc);
  }
};
template <typename T>
struct GradFinish {  // b[o * C + j] = total; dbeta = B1, dgamma = B2 when asked for
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
__global__ void bn_dx_kernel(T* dx, const T* dy, const T* x, const T* mean, const T* rstd, const T* gamma,
                             const T* b, int64_t N, int64_t C, bool training) {
  const T Nf = static_cast<T>(N);
  LS_CUDA_FOR(k, N * C) {
    const int64_t j = k % C;
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

template <typename T>
void backward_impl(bool fast, T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* mean, const T* rstd,
                   const T* gamma, int64_t N, int64_t C, bool training) {
  if (C <= 0) return;
  const bool need_sums = training || dgamma || dbeta;
  DeviceBuffer<T> b(2 * C);
  if (need_sums)
    batch_reduce_mode<T>(fast, 2, N, C, GradStep<T>{dy, x, mean, rstd, C},
                         GradFinish<T>{b.get(), dbeta, dgamma, C});
  if (!dx || N <= 0) return;
  LS_LAUNCH(bn_dx_kernel, grid_for(N * C), kThreads, 0, cuda_stream(), dx, dy, x, mean, rstd, gamma, b.get(), N, C,
            training);
  CUDA_CHECK_LAUNCH("bn_dx_kernel");
}

}  // namespace

template <typename T>
void batchnorm_forward_cuda(const Exec& ex, T* y, T* mean, T* rstd, T* running_mean, T* running_var, const T* x,
                            const T* gamma, const T* beta, int64_t N, int64_t C, bool training, T eps, T momentum) {
  forward_impl(ex.fast(), y, mean, rstd, running_mean, running_var, x, gamma, beta, N, C, training, eps, momentum);
}
template <typename T>
void batchnorm_backward_cuda(const Exec& ex, T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* mean,
                             const T* rstd, const T* gamma, int64_t N, int64_t C, bool training) {
  backward_impl(ex.fast(), dx, dgamma, dbeta, dy, x, mean, rstd, gamma, N, C, training);
}

#define LS_BATCHNORM(T)                                                                                   \
  template void batchnorm_forward_cuda<T>(const Exec&, T*, T*, T*, T*, T*, const T*, const T*, const T*, \
                                          int64_t, int64_t, bool, T, T);                                 \
  template void batchnorm_backward_cuda<T>(const Exec&, T*, T*, T*, const T*, const T*, const T*,        \
                                           const T*, const T*, int64_t, int64_t, bool);
LS_BATCHNORM(float)
LS_BATCHNORM(double)
#undef LS_BATCHNORM

}  // namespace lockstep
