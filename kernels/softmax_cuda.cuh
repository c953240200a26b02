// The per-row statistics of softmax, log-softmax and cross-entropy on the GPU, computed by
// one warp per row in the CPU's order (kernels/softmax.h):
//   m = x[argmax]: the first NaN if any, else the first maximum (exact, any split works:
//       each lane finds its own first NaN / first maximum, then the lanes compare indices);
//   s = the contiguous-order sum of ls_exp(x[j] - m) (reduce_cuda.cuh: lane l of the warp
//       is lane l of the CPU's 32 lanes).
#pragma once
#include <cstdint>

#include "kernels/elementwise.h"
#include "kernels/reduce_cuda.cuh"

namespace lockstep {
namespace cuda_softmax {

constexpr int kRowsPerBlock = 8;  // one warp per row, 8 warps per block

// ls_exp(v - m): the CPU's e[j], element by element.
template <typename T>
struct ExpShift {
  T m;
  __device__ T operator()(T v) const { return elem::exp(v - m); }
};

// (x[j] - m) - log_s: the CPU's log_softmax[j].
template <typename T>
struct LogSoftmaxOf {
  T m, log_s;
  __device__ T operator()(T v) const { return (v - m) - log_s; }
};

// x[argmax] of the row x[0 .. n), n >= 1, by one warp (every lane returns it).
template <typename T>
__device__ T warp_row_max(const T* x, int64_t n) {
  const int lane = threadIdx.x & 31;
  T best = T(0);
  int64_t bi = INT64_MAX;  // no element yet
  for (int64_t j = lane; j < n; j += 32) {
    const T v = x[j];
    if (bi == INT64_MAX || (best == best && (v > best || v != v))) {
      best = v;
      bi = j;
    }
  }
  // combine: a NaN beats a number; between two NaNs or two equal numbers the lower index
  for (int s = 16; s >= 1; s /= 2) {
    const T ov = __shfl_xor_sync(cuda_reduce::kFullMask, best, s);
    const int64_t oi = __shfl_xor_sync(cuda_reduce::kFullMask, bi, s);
    if (oi == INT64_MAX) continue;
    bool take;
    if (bi == INT64_MAX) take = true;
    else if ((ov != ov) != (best != best)) take = ov != ov;
    else if (ov != ov || ov == best) take = oi < bi;
    else take = ov > best;
    if (take) {
      best = ov;
      bi = oi;
    }
  }
  return x[bi];
}

// m and s of a row (cols >= 1).
template <typename T>
struct RowStats {
  T m, s;
};
template <typename T>
__device__ RowStats<T> warp_row_stats(const T* x, int64_t cols) {
  RowStats<T> r;
  r.m = warp_row_max(x, cols);
  r.s = cuda_reduce::warp_row_sum(x, cols, ExpShift<T>{r.m});
  return r;
}

}  // namespace cuda_softmax
}  // namespace lockstep
