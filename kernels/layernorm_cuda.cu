// CUDA LayerNorm / RMSNorm (kernels/layernorm.h). y and dx: one warp per row; its row sums
// are the contiguous order (lane l adds elements l, l + 32, ... of each 4096-element block
// from +0, the halving fold by shuffles, block partials by the tree: warp_row_sum of
// reduce_cuda.cuh), over the same rounded terms as the CPU. dw and db: the batch order by
// batch_reduce (one thread per (chunk, column), then one per column). No atomics.
#include "kernels/cuda_common.cuh"
#include "kernels/layernorm.h"
#include "kernels/reduce_cuda.cuh"

namespace lockstep {
namespace {

using namespace cuda_detail;
using cuda_reduce::kWarpsPerBlock;

__device__ inline float ln_inv_std(float var, float eps) { return 1.0f / sqrtf(var + eps); }
__device__ inline double ln_inv_std(double var, double eps) { return 1.0 / sqrt(var + eps); }

// The contiguous-order partial of terms [b0, b0 + len), len <= kReduceBlock, by one warp.
template <typename T, typename Term>
__device__ T warp_block_terms(int64_t b0, int64_t len, Term term) {
  const int lane = threadIdx.x & 31;
  T acc = T(0);
  for (int64_t i = lane; i < len; i += kReduceLanes) acc = acc + term(b0 + i);
  for (int s = kReduceLanes / 2; s >= 1; s /= 2) acc = acc + __shfl_down_sync(cuda_reduce::kFullMask, acc, s);
  return __shfl_sync(cuda_reduce::kFullMask, acc, 0);
}

// The contiguous-order sum over j < n of term(j), by one warp (every lane returns it).
template <typename T, typename Term>
__device__ T warp_sum_terms(int64_t n, Term term) {
  if (n <= kReduceBlock) return warp_block_terms<T>(0, n, term);
  cuda_reduce::TreeStack1<T> stack;
  for (int64_t b0 = 0; b0 < n; b0 += kReduceBlock)
    stack.push(warp_block_terms<T>(b0, n - b0 < kReduceBlock ? n - b0 : kReduceBlock, term));
  return stack.finish();
}

template <typename T>
__global__ void ln_forward_kernel(T* y, T* mean, T* rstd, const T* x, const T* w, const T* b, int64_t rows,
                                  int64_t C, T eps, bool rms) {
  const int64_t r = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  if (r >= rows) return;  // whole warps exit together
  const int lane = threadIdx.x & 31;
  const T* xr = x + r * C;
  const T Cf = static_cast<T>(C);
  T m = T(0);
  if (!rms) m = warp_sum_terms<T>(C, [&](int64_t j) { return xr[j]; }) / Cf;
  const T s2 = warp_sum_terms<T>(C, [&](int64_t j) {
    const T d = rms ? xr[j] : xr[j] - m;
    return d * d;
  });
  const T rs = ln_inv_std(s2 / Cf, eps);
  for (int64_t j = lane; j < C; j += 32) {
    T v = (rms ? xr[j] : xr[j] - m) * rs;
    if (w) v = v * w[j];
    if (b) v = v + b[j];
    y[r * C + j] = v;
  }
  if (lane == 0) {
    if (mean) mean[r] = m;
    rstd[r] = rs;
  }
}

template <typename T>
__global__ void ln_backward_dx_kernel(T* dx, const T* dy, const T* x, const T* mean, const T* rstd, const T* w,
                                      int64_t rows, int64_t C, bool rms) {
  const int64_t r = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  if (r >= rows) return;
  const int lane = threadIdx.x & 31;
  const T* xr = x + r * C;
  const T* dyr = dy + r * C;
  const T m = rms ? T(0) : mean[r], rs = rstd[r], Cf = static_cast<T>(C);
  auto xhat = [&](int64_t j) { return (rms ? xr[j] : xr[j] - m) * rs; };
  auto g = [&](int64_t j) { return w ? dyr[j] * w[j] : dyr[j]; };
  const T a1 = rms ? T(0) : warp_sum_terms<T>(C, g) / Cf;
  const T a2 = warp_sum_terms<T>(C, [&](int64_t j) { return g(j) * xhat(j); }) / Cf;
  for (int64_t j = lane; j < C; j += 32)
    dx[r * C + j] = rms ? (g(j) - xhat(j) * a2) * rs : ((g(j) - a1) - xhat(j) * a2) * rs;
}

// batch_reduce steps: acc = fma(dy, xhat, acc) and acc + dy over the rows of column j.
template <typename T>
struct DwStep {
  const T *dy, *x, *mean, *rstd;
  int64_t C;
  __device__ T operator()(T acc, int64_t, int64_t r, int64_t j) const {
    const T xh = (mean ? x[r * C + j] - mean[r] : x[r * C + j]) * rstd[r];
    return cuda_reduce::fma_t(dy[r * C + j], xh, acc);
  }
};
template <typename T>
struct StoreTotal {
  T* out;
  __device__ void operator()(int64_t, int64_t j, T total) const { out[j] = total; }
};

template <typename T>
void launch_rows(T* y, T* mean, T* rstd, const T* x, const T* w, const T* b, int64_t rows, int64_t C, T eps,
                 bool rms) {
  if (rows <= 0) return;
  const unsigned grid = static_cast<unsigned>(ceil_div(rows, kWarpsPerBlock));
  LS_LAUNCH(ln_forward_kernel, grid, kWarpsPerBlock * 32, 0, cuda_stream(), y, mean, rstd, x, w, b, rows, C, eps, rms);
  CUDA_CHECK_LAUNCH("ln_forward_kernel");
}

template <typename T>
void backward_impl(T* dx, T* dw, T* db, const T* dy, const T* x, const T* mean, const T* rstd, const T* w,
                   int64_t rows, int64_t C, bool rms) {
  if (dx && rows > 0) {
    const unsigned grid = static_cast<unsigned>(ceil_div(rows, kWarpsPerBlock));
    LS_LAUNCH(ln_backward_dx_kernel, grid, kWarpsPerBlock * 32, 0, cuda_stream(), dx, dy, x, mean, rstd, w, rows, C,
              rms);
    CUDA_CHECK_LAUNCH("ln_backward_dx_kernel");
  }
  if (dw) cuda_reduce::batch_reduce<T>(1, rows, C, DwStep<T>{dy, x, rms ? nullptr : mean, rstd, C}, StoreTotal<T>{dw});
  if (db) cuda_reduce::batch_reduce<T>(1, rows, C, cuda_reduce::SumRowStep<T>{dy, rows, C}, StoreTotal<T>{db});
}

}  // namespace

template <typename T>
void layer_norm_forward_cuda(const Exec&, T* y, T* mean, T* rstd, const T* x, const T* w, const T* b, int64_t rows,
                             int64_t C, T eps) {
  launch_rows(y, mean, rstd, x, w, b, rows, C, eps, false);
}
template <typename T>
void layer_norm_backward_cuda(const Exec&, T* dx, T* dw, T* db, const T* dy, const T* x, const T* mean,
                              const T* rstd, const T* w, int64_t rows, int64_t C) {
  backward_impl(dx, dw, db, dy, x, mean, rstd, w, rows, C, false);
}
template <typename T>
void rms_norm_forward_cuda(const Exec&, T* y, T* rstd, const T* x, const T* w, int64_t rows, int64_t C, T eps) {
  launch_rows(y, static_cast<T*>(nullptr), rstd, x, w, static_cast<const T*>(nullptr), rows, C, eps, true);
}
template <typename T>
void rms_norm_backward_cuda(const Exec&, T* dx, T* dw, const T* dy, const T* x, const T* rstd, const T* w,
                            int64_t rows, int64_t C) {
  backward_impl(dx, dw, static_cast<T*>(nullptr), dy, x, static_cast<const T*>(nullptr), rstd, w, rows, C, true);
}

#define LS_LAYERNORM(T)                                                                                             \
  template void layer_norm_forward_cuda<T>(const Exec&, T*, T*, T*, const T*, const T*, const T*, int64_t, int64_t, \
                                           T);                                                                      \
  template void layer_norm_backward_cuda<T>(const Exec&, T*, T*, T*, const T*, const T*, const T*, const T*,        \
                                            const T*, int64_t, int64_t);                                            \
  template void rms_norm_forward_cuda<T>(const Exec&, T*, T*, const T*, const T*, int64_t, int64_t, T);             \
  template void rms_norm_backward_cuda<T>(const Exec&, T*, T*, const T*, const T*, const T*, const T*, int64_t,     \
                                          int64_t);
LS_LAYERNORM(float)
LS_LAYERNORM(double)
#undef LS_LAYERNORM

}  // namespace lockstep
