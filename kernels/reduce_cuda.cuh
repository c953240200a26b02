// Device building blocks of the canonical reduction orders (kernels/reduce_order.h), shared
// by every deterministic CUDA kernel that sums: reductions, softmax, losses, BatchNorm,
// gradient norms. Each reproduces the CPU order literally:
//   contiguous order  one warp per 4096-element block: lane l adds elements l, l+32, l+64,
//                     ... of the block in increasing order from +0 (the CPU's lane l), then
//                     the halving fold lane[j] = lane[j] + lane[j+s], s = 16 .. 1, by
//                     shuffles; block partials are combined by tree_sum, serially, by one
//                     thread per row (the CPU's tree_sum_inplace, in place, same order).
//   batch order       one thread per (chunk of kBatchChunk rows, column): the chunk summed
//                     row by row from +0 (the Step functor adds one row's term, an add or an
//                     fma as the CPU writes it); then one thread per column combines the
//                     chunk partials by tree_sum.
// No atomics; every launch size is a function of the shapes.
#pragma once
#include <type_traits>
#include <cstdint>

#include "kernels/cuda_common.cuh"
#include "kernels/reduce_order.h"

namespace lockstep {
namespace cuda_reduce {

constexpr unsigned kFullMask = 0xffffffffu;
constexpr int kWarpsPerBlock = 8;  // contiguous-order kernels: 8 warps of 32 per block
constexpr int kMaxTreeDepth = 64;  // a TreeStack never needs more slots than this

// fma written out for either type: one rounding, as std::fma on the CPU.
__device__ inline float fma_t(float a, float b, float c) { return fmaf(a, b, c); }
__device__ inline double fma_t(double a, double b, double c) { return fma(a, b, c); }

// Identity, square and absolute value: the per-element transforms of the sums.
struct Ident {
  template <typename T> __device__ T operator()(T v) const { return v; }
};
struct Square {
  template <typename T> __device__ T operator()(T v) const { return v * v; }
};
struct Abs {
  __device__ float operator()(float v) const { return fabsf(v); }
  __device__ double operator()(double v) const { return fabs(v); }
};

// The contiguous-order partial of x[0 .. len), len <= kReduceBlock, computed by one warp.
// Every lane returns the partial.
template <typename T, typename F>
__device__ T warp_block_partial(const T* x, int64_t len, F f) {
  const int lane = threadIdx.x & 31;
  T acc = T(0);
  for (int64_t i = lane; i < len; i += kReduceLanes) acc = acc + f(x[i]);
  // halving fold: lane j takes lane j + s, s = 16, 8, 4, 2, 1
  for (int s = kReduceLanes / 2; s >= 1; s /= 2) acc = acc + __shfl_down_sync(kFullMask, acc, s);
  return __shfl_sync(kFullMask, acc, 0);
}

// tree_sum_inplace over p[0], p[stride], ..., p[(n-1) * stride] by one thread: the CPU's
// loop, in the same order (n >= 1).
template <typename T>
__device__ T tree_sum_strided(T* p, int64_t n, int64_t stride) {
  while (n > 1) {
    const int64_t half = n / 2;
    for (int64_t i = 0; i < half; ++i) p[i * stride] = p[2 * i * stride] + p[(2 * i + 1) * stride];
    if (n & 1) p[half * stride] = p[(n - 1) * stride];
    n = half + (n & 1);
  }
  return p[0];
}

// The CPU's TreeStack of width 1 in registers/local memory: push partials in order, then
// finish(); equal bit for bit to tree_sum over them.
template <typename T>
struct TreeStack1 {
  T slot[kMaxTreeDepth + 1];
  int depth = 0;
  int64_t count = 0;
  __device__ void push(T v) {
    slot[depth++] = v;
    ++count;
    for (int64_t c = count; (c & 1) == 0; c >>= 1) {
      slot[depth - 2] = slot[depth - 2] + slot[depth - 1];
      --depth;
    }
  }
  __device__ T finish() {
    for (; depth > 1; --depth) slot[depth - 2] = slot[depth - 2] + slot[depth - 1];
    return slot[0];
  }
};

// The contiguous-order sum of a whole row x[0 .. n), by one warp (all lanes return it):
// block partials in order, combined by the tree. n == 0 gives +0.
template <typename T, typename F>
__device__ T warp_row_sum(const T* x, int64_t n, F f) {
  if (n <= kReduceBlock) return warp_block_partial(x, n, f);
  TreeStack1<T> stack;
  for (int64_t b = 0; b < n; b += kReduceBlock) {
    const int64_t len = n - b < kReduceBlock ? n - b : kReduceBlock;
    stack.push(warp_block_partial(x + b, len, f));
  }
  return stack.finish();
}

// ---- contiguous order over rows x cols, many blocks per row ----

// Warp w = r * nb + b: the partial of block b of row r. With one block per row (nb == 1)
// the partial is the row's sum and goes straight to out[r].
template <typename T, typename F>
__global__ void contig_partials_kernel(T* part, T* out, const T* x, int64_t rows, int64_t cols, int64_t nb, F f) {
  const int64_t w = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  if (w >= rows * nb) return;  // whole warps exit together
  const int64_t r = w / nb, b = w % nb, start = b * kReduceBlock;
  const int64_t len = cols - start < kReduceBlock ? cols - start : kReduceBlock;
  const T v = warp_block_partial(x + r * cols + start, len, f);
  if ((threadIdx.x & 31) == 0) {
    if (nb == 1)
      out[r] = v;
    else
      part[w] = v;
  }
}

// Thread r: out[r] = tree_sum of row r's nb partials.
template <typename T>
__global__ void tree_rows_kernel(T* out, T* part, int64_t rows, int64_t nb) {
  LS_CUDA_FOR(r, rows) out[r] = tree_sum_strided(part + r * nb, nb, int64_t(1));
}

// out[r] = contiguous-order sum of f(x[r, :]) for every row (cols may be 0: out = +0).
template <typename T, typename F>
void contig_rows(T* out, const T* x, int64_t rows, int64_t cols, F f) {
  using namespace cuda_detail;
  if (rows <= 0) return;
  cudaStream_t s = cuda_stream();
  const int64_t nb = cols <= kReduceBlock ? 1 : ceil_div(cols, kReduceBlock);
  const int64_t warps = rows * nb;
  const unsigned grid = static_cast<unsigned>(ceil_div(warps, kWarpsPerBlock));
  DeviceBuffer<T> part(nb > 1 ? warps : 1);
  LS_LAUNCH(contig_partials_kernel, grid, kWarpsPerBlock * 32, 0, s, part.get(), out, x, rows, cols, nb, f);
  CUDA_CHECK_LAUNCH("contig_partials_kernel");
  if (nb > 1) {
    LS_LAUNCH(tree_rows_kernel, grid_for(rows), kThreads, 0, s, out, part.get(), rows, nb);
    CUDA_CHECK_LAUNCH("tree_rows_kernel");
  }
}

// ---- batch order over outer x d x inner ----

// A Step adds row r's term for column j of outer slice o into acc and returns it:
//   A operator()(A acc, int64_t o, int64_t r, int64_t j) const
// where A, the chunk partial's type, is T unless the Step declares `using acc_type = ...`
// (BatchNorm2d: double), in which case the partial is rounded to T when its chunk ends.
// Finish writes the total of (o, j):  void operator()(int64_t o, int64_t j, T total) const
template <typename Step, typename T, typename = void>
struct StepAcc {
  using type = T;
};
template <typename Step, typename T>
struct StepAcc<Step, T, std::void_t<typename Step::acc_type>> {
  using type = typename Step::acc_type;
};

// Thread (o, c, j): chunk c's partial. With a single chunk it is the total: Finish it.
template <typename T, typename Step, typename Finish>
__global__ void batch_chunk_kernel(T* part, int64_t outer, int64_t d, int64_t inner, int64_t nchunks, Step step,
                                   Finish fin) {
  LS_CUDA_FOR(idx, outer * nchunks * inner) {
    const int64_t j = idx % inner, c = (idx / inner) % nchunks, o = idx / (inner * nchunks);
    const int64_t r0 = c * kBatchChunk, r1 = r0 + kBatchChunk < d ? r0 + kBatchChunk : d;
    using A = typename StepAcc<Step, T>::type;
    A acc = A(0);
    for (int64_t r = r0; r < r1; ++r) acc = step(acc, o, r, j);
    if (nchunks == 1)
      fin(o, j, static_cast<T>(acc));
    else
      part[idx] = static_cast<T>(acc);
  }
}

// Thread (o, j): the tree over the chunk partials of column j of slice o, then Finish.
template <typename T, typename Finish>
__global__ void batch_tree_kernel(T* part, int64_t outer, int64_t nchunks, int64_t inner, Finish fin) {
  LS_CUDA_FOR(idx, outer * inner) {
    const int64_t o = idx / inner, j = idx % inner;
    fin(o, j, tree_sum_strided(part + o * nchunks * inner + j, nchunks, inner));
  }
}

// d == 0: every total is the empty sum +0.
template <typename T, typename Finish>
__global__ void batch_empty_kernel(int64_t outer, int64_t inner, Finish fin) {
  LS_CUDA_FOR(idx, outer * inner) fin(idx / inner, idx % inner, T(0));
}

// Runs the batch-order reduction of `step` over d rows for every (o, j) and hands each
// total to `fin`.
template <typename T, typename Step, typename Finish>
void batch_reduce(int64_t outer, int64_t d, int64_t inner, Step step, Finish fin) {
  using namespace cuda_detail;
  if (outer <= 0 || inner <= 0) return;
  cudaStream_t s = cuda_stream();
  if (d <= 0) {
    LS_LAUNCH(batch_empty_kernel<T>, grid_for(outer * inner), kThreads, 0, s, outer, inner, fin);
    CUDA_CHECK_LAUNCH("batch_empty_kernel");
    return;
  }
  const int64_t nchunks = ceil_div(d, kBatchChunk);
  const int64_t total = outer * nchunks * inner;
  DeviceBuffer<T> part(nchunks > 1 ? total : 1);
  LS_LAUNCH(batch_chunk_kernel, grid_for(total), kThreads, 0, s, part.get(), outer, d, inner, nchunks, step, fin);
  CUDA_CHECK_LAUNCH("batch_chunk_kernel");
  if (nchunks > 1) {
    LS_LAUNCH(batch_tree_kernel, grid_for(outer * inner), kThreads, 0, s, part.get(), outer, nchunks, inner, fin);
    CUDA_CHECK_LAUNCH("batch_tree_kernel");
  }
}

// ---- fast mode: the same sums by float atomics ----
// Thread (o, g, j) adds the terms of rows [64 g, 64 g + 64) in order and atomically adds
// its partial into total[o, j]; the hardware's completion order decides the rounding, so
// the bits can change from run to run. Then Finish as above.
constexpr int64_t kAtomicRowGroup = 64;

template <typename T, typename Step>
__global__ void batch_atomic_kernel(T* total, int64_t outer, int64_t d, int64_t inner, int64_t groups, Step step) {
  LS_CUDA_FOR(idx, outer * groups * inner) {
    const int64_t j = idx % inner, g = (idx / inner) % groups, o = idx / (inner * groups);
    const int64_t r0 = g * kAtomicRowGroup, r1 = r0 + kAtomicRowGroup < d ? r0 + kAtomicRowGroup : d;
    using A = typename StepAcc<Step, T>::type;
    A acc = A(0);
    for (int64_t r = r0; r < r1; ++r) acc = step(acc, o, r, j);
    atomicAdd(total + o * inner + j, static_cast<T>(acc));
  }
}

template <typename T, typename Finish>
__global__ void batch_finish_kernel(const T* total, int64_t outer, int64_t inner, Finish fin) {
  LS_CUDA_FOR(idx, outer * inner) fin(idx / inner, idx % inner, total[idx]);
}

template <typename T, typename Step, typename Finish>
void batch_reduce_atomic(int64_t outer, int64_t d, int64_t inner, Step step, Finish fin) {
  using namespace cuda_detail;
  if (outer <= 0 || inner <= 0) return;
  cudaStream_t s = cuda_stream();
  DeviceBuffer<T> total(outer * inner);
  cuda_memset_zero(total.get(), sizeof(T) * outer * inner);
  const int64_t groups = ceil_div(d, kAtomicRowGroup);
  if (groups > 0) {
    const unsigned grid = grid_for(outer * groups * inner);
    LS_LAUNCH(batch_atomic_kernel, grid, kThreads, 0, s, total.get(), outer, d, inner, groups, step);
    CUDA_CHECK_LAUNCH("batch_atomic_kernel");
  }
  LS_LAUNCH(batch_finish_kernel, grid_for(outer * inner), kThreads, 0, s, total.get(), outer, inner, fin);
  CUDA_CHECK_LAUNCH("batch_finish_kernel");
}

// Deterministic (batch order) or fast (atomics), as the mode asks.
template <typename T, typename Step, typename Finish>
void batch_reduce_mode(bool fast, int64_t outer, int64_t d, int64_t inner, Step step, Finish fin) {
  if (fast)
    batch_reduce_atomic<T>(outer, d, inner, step, fin);
  else
    batch_reduce<T>(outer, d, inner, step, fin);
}

// Step: acc + x[o, r, j] (a plain sum of rows).
template <typename T>
struct SumRowStep {
  const T* x;
  int64_t d, inner;
  __device__ T operator()(T acc, int64_t o, int64_t r, int64_t j) const { return acc + x[(o * d + r) * inner + j]; }
};

// Finish: out[o, j] = total, or out[o, j] + total when accumulating (the old value first).
template <typename T>
struct StoreFinish {
  T* out;
  int64_t inner;
  bool accumulate;
  __device__ void operator()(int64_t o, int64_t j, T total) const {
    T* p = out + o * inner + j;
    *p = accumulate ? *p + total : total;
  }
};

}  // namespace cuda_reduce
}  // namespace lockstep
