// CUDA reductions (kernels/reduce.h). Deterministic kernels: the CPU's orders through the
// building blocks of reduce_cuda.cuh; max/argmax are exact, one thread per output.
// Fast kernels: float atomicAdd into the zeroed output, in whatever order the hardware
// completes them, as other frameworks' reductions do; the bits can change from run to run.
#include "kernels/reduce.h"
#include "kernels/reduce_cuda.cuh"

namespace lockstep {
namespace {

using namespace cuda_detail;
using namespace cuda_reduce;

// ---- max / argmax: one thread per output (o, j), k in increasing order ----
// The CPU's rule: the first NaN wins; otherwise the first maximum. val is x at that index.
template <typename T>
__global__ void max_kernel(T* val, int64_t* idx, const T* x, int64_t outer, int64_t d, int64_t inner) {
  LS_CUDA_FOR(t, outer * inner) {
    const int64_t o = t / inner, j = t % inner;
    const T* p = x + o * d * inner + j;
    T best = p[0];
    int64_t bi = 0;
    for (int64_t k = 1; k < d && best == best; ++k) {
      const T v = p[k * inner];
      if (v > best || v != v) {
        best = v;
        bi = k;
      }
    }
    if (val) val[t] = best;
    if (idx) idx[t] = bi;
  }
}

template <typename T>
void max_impl(T* val, int64_t* idx, const T* x, int64_t outer, int64_t d, int64_t inner) {
  if (outer <= 0 || inner <= 0 || d <= 0) return;
  LS_LAUNCH(max_kernel, grid_for(outer * inner), kThreads, 0, cuda_stream(), val, idx, x, outer, d, inner);
  CUDA_CHECK_LAUNCH("max_kernel");
}

template <typename T>
void sum_mid_det(T* out, const T* x, int64_t outer, int64_t d, int64_t inner, bool accumulate) {
  batch_reduce<T>(outer, d, inner, SumRowStep<T>{x, d, inner}, StoreFinish<T>{out, inner, accumulate});
}

// ---- fast mode ----
constexpr int64_t kFastPieceCuda = 8192;  // elements per warp (rows) / rows per thread group
constexpr int64_t kFastRowGroup = 64;

// Warp w sums piece w % pieces of row w / pieces and atomically adds it into out[row].
template <typename T>
__global__ void sum_rows_fast_kernel(T* out, const T* x, int64_t rows, int64_t cols, int64_t pieces) {
  const int64_t w = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  if (w >= rows * pieces) return;
  const int lane = threadIdx.x & 31;
  const int64_t r = w / pieces, b = (w % pieces) * kFastPieceCuda;
  const int64_t e = b + kFastPieceCuda < cols ? b + kFastPieceCuda : cols;
  T acc = T(0);
  for (int64_t i = b + lane; i < e; i += 32) acc += x[r * cols + i];
  for (int s = 16; s >= 1; s /= 2) acc += __shfl_xor_sync(kFullMask, acc, s);
  if (lane == 0) atomicAdd(out + r, acc);
}

// Thread (o, g, j) sums rows [g * 64, g * 64 + 64) of column j and atomically adds.
template <typename T>
__global__ void sum_mid_fast_kernel(T* out, const T* x, int64_t outer, int64_t d, int64_t inner, int64_t groups) {
  LS_CUDA_FOR(t, outer * groups * inner) {
    const int64_t j = t % inner, g = (t / inner) % groups, o = t / (inner * groups);
    const int64_t r0 = g * kFastRowGroup, r1 = r0 + kFastRowGroup < d ? r0 + kFastRowGroup : d;
    T acc = T(0);
    for (int64_t r = r0; r < r1; ++r) acc += x[(o * d + r) * inner + j];
    atomicAdd(out + o * inner + j, acc);
  }
}

template <typename T>
void sum_rows_fast(T* out, const T* x, int64_t rows, int64_t cols) {
  if (rows <= 0) return;
  cuda_memset_zero(out, sizeof(T) * rows);
  const int64_t pieces = ceil_div(cols, kFastPieceCuda);
  if (pieces == 0) return;
  const int64_t warps = rows * pieces;
  const unsigned grid = static_cast<unsigned>(ceil_div(warps, 8));
  LS_LAUNCH(sum_rows_fast_kernel, grid, 256, 0, cuda_stream(), out, x, rows, cols, pieces);
  CUDA_CHECK_LAUNCH("sum_rows_fast_kernel");
}

template <typename T>
void sum_mid_fast(T* out, const T* x, int64_t outer, int64_t d, int64_t inner) {
  if (outer <= 0 || inner <= 0) return;
  cuda_memset_zero(out, sizeof(T) * outer * inner);
  const int64_t groups = ceil_div(d, kFastRowGroup);
  if (groups == 0) return;
  const unsigned grid = grid_for(outer * groups * inner);
  LS_LAUNCH(sum_mid_fast_kernel, grid, kThreads, 0, cuda_stream(), out, x, outer, d, inner, groups);
  CUDA_CHECK_LAUNCH("sum_mid_fast_kernel");
}

}  // namespace

// The CUDA kernels read nothing from ex: the op picks *_fast in fast mode.
template <typename T>
void sum_cuda(const Exec&, T* out, const T* x, int64_t n) {
  contig_rows(out, x, 1, n, Ident{});
}
template <typename T>
void sum_rows_cuda(const Exec&, T* out, const T* x, int64_t rows, int64_t cols) {
  contig_rows(out, x, rows, cols, Ident{});
}
template <typename T>
void sum_cols_cuda(const Exec&, T* out, const T* x, int64_t rows, int64_t cols, bool accumulate) {
  sum_mid_det(out, x, 1, rows, cols, accumulate);
}
template <typename T>
void sum_mid_cuda(const Exec&, T* out, const T* x, int64_t outer, int64_t d, int64_t inner) {
  sum_mid_det(out, x, outer, d, inner, false);
}
template <typename T>
void max_cuda(const Exec&, T* out, const T* x, int64_t outer, int64_t d, int64_t inner) {
  max_impl<T>(out, nullptr, x, outer, d, inner);
}
template <typename T>
void argmax_cuda(const Exec&, int64_t* out, const T* x, int64_t outer, int64_t d, int64_t inner) {
  max_impl<T>(nullptr, out, x, outer, d, inner);
}
template <typename T>
void sum_fast_cuda(const Exec&, T* out, const T* x, int64_t n) {
  sum_rows_fast(out, x, 1, n);
}
template <typename T>
void sum_rows_fast_cuda(const Exec&, T* out, const T* x, int64_t rows, int64_t cols) {
  sum_rows_fast(out, x, rows, cols);
}
template <typename T>
void sum_mid_fast_cuda(const Exec&, T* out, const T* x, int64_t outer, int64_t d, int64_t inner) {
  sum_mid_fast(out, x, outer, d, inner);
}

// float and double of every kernel above.
#define LS_REDUCE_CUDA(T)                                                                    \
  template void sum_cuda<T>(const Exec&, T*, const T*, int64_t);                             \
  template void sum_rows_cuda<T>(const Exec&, T*, const T*, int64_t, int64_t);               \
  template void sum_cols_cuda<T>(const Exec&, T*, const T*, int64_t, int64_t, bool);         \
  template void sum_mid_cuda<T>(const Exec&, T*, const T*, int64_t, int64_t, int64_t);       \
  template void max_cuda<T>(const Exec&, T*, const T*, int64_t, int64_t, int64_t);           \
  template void argmax_cuda<T>(const Exec&, int64_t*, const T*, int64_t, int64_t, int64_t);  \
  template void sum_fast_cuda<T>(const Exec&, T*, const T*, int64_t);                        \
  template void sum_rows_fast_cuda<T>(const Exec&, T*, const T*, int64_t, int64_t);          \
  template void sum_mid_fast_cuda<T>(const Exec&, T*, const T*, int64_t, int64_t, int64_t);
LS_REDUCE_CUDA(float)
LS_REDUCE_CUDA(double)
#undef LS_REDUCE_CUDA

}  // namespace lockstep
