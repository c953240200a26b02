// Reductions: sums, max and argmax over a dim. Layouts are row-major and contiguous:
//   rows x cols          a reduction over cols (the last dim) gives one value per row;
//   outer x d x inner    a reduction over d (any other dim) gives outer x inner values.
//
// Orders (kernels/reduce_order.h):
//   contiguous order  sum_cpu, sum_rows_cpu, sum_serial_cpu: 32 lanes per 4096-element block,
//                     halving fold, tree_sum over the blocks of a row.
//   batch order       sum_cols_cpu, sum_mid_cpu: chunks of kBatchChunk rows (of d) summed
//                     row by row from +0.0f, chunk partials combined by the pairwise tree.
// Deterministic kernels promise: the bits depend on the shape and the data only; the same for
// any thread count, run to run, with the AVX2 path on or off, and (kernels/reduce_cuda.cu)
// on the GPU. Threads split outputs (rows, column tiles) or whole blocks and chunks whose
// partials are then combined in index order, so how the work was split never shows.
//
// max / argmax are exact (no rounding), so they have a single version: NaN propagates (the
// first NaN wins), ties go to the first index, and max is x[argmax] (so max(-0, +0) is -0).
//
// Fast mode (*_fast_cpu) gives up reproducibility for the shortcuts other frameworks take:
// work is cut into many pieces (kFastPiece elements, or groups of rows) that threads grab
// dynamically; a piece is summed with 16 interleaved accumulators added up in sequence;
// each thread adds the pieces it got into its own partial, and the thread partials are
// added into the result under a mutex in the order the threads finish. Which pieces a
// thread gets depends on timing, so the bits can change from run to run and with the thread
// count (with one thread they repeat; a row short enough for one piece never varies).
// Accuracy is that of a blocked sum: worst case |err| <= (kFastPiece/16 + 16 + pieces) *
// eps * sum|x|, typically far less; the tests hold it to 1e-5 * sum|x| against float64.
//
// Sizes may be zero: an empty sum is +0.0; max/argmax need d >= 1 (the op checks).
// CUDA (kernels/reduce_cuda.cu): the same signatures with device pointers and the same bits
// in deterministic mode (docs/cuda.md gives the GPU work split of each kernel).
#pragma once
#include <cstdint>

#include "base/exec.h"

namespace lockstep {

// Every kernel below exists for float and double (explicit instantiations in reduce_cpu.cpp
// and reduce_cuda.cu). ex.simd picks the AVX2 block sum of the contiguous order (float; the
// same bits at every level); nothing else reads ex: the op picks *_fast in fast mode.

// ---- contiguous order ----
// *out = sum of x[0..n) over all threads (block partials in parallel, then the tree serially).
template <typename T> void sum_cpu(const Exec& ex, T* out, const T* x, int64_t n);
// out[r] = sum of row r of x (rows x cols); threads over rows, or over blocks when rows are few.
template <typename T> void sum_rows_cpu(const Exec& ex, T* out, const T* x, int64_t rows, int64_t cols);
// The same order on the calling thread only, for kernels that sum inside their own parallel
// loop (softmax).
template <typename T> T sum_serial_cpu(const Exec& ex, const T* x, int64_t n);
// Reference: the contiguous order written as the plain element loop (tests; reads no setting).
template <typename T> T sum_cpu_ref(const T* x, int64_t n);

// ---- batch order ----
// out[j] (+)= sum over r of x[r, j], x: rows x cols. Threads split the columns (or, for
// narrow matrices, the chunks, whose partials are then combined by the same tree).
// With accumulate, out[j] = out[j] + sum (the old value first, as in the GEMM contract).
template <typename T>
void sum_cols_cpu(const Exec& ex, T* out, const T* x, int64_t rows, int64_t cols, bool accumulate);
// out[o, j] = sum over k of x[o, k, j], x: outer x d x inner: sum_cols on every outer slice.
template <typename T> void sum_mid_cpu(const Exec& ex, T* out, const T* x, int64_t outer, int64_t d, int64_t inner);
// Reference: chunk partials as plain loops, then tree_sum_inplace per column (tests; float).
void sum_cols_cpu_ref(float* out, const float* x, int64_t rows, int64_t cols);

// ---- max / argmax over d of outer x d x inner (inner == 1: over the rows' last dim) ----
template <typename T> void max_cpu(const Exec& ex, T* out, const T* x, int64_t outer, int64_t d, int64_t inner);
template <typename T>
void argmax_cpu(const Exec& ex, int64_t* out, const T* x, int64_t outer, int64_t d, int64_t inner);
// The same rule for one row x[0..n), n >= 1, on the calling thread (softmax's row max).
// Exact and scalar, so there is nothing for an Exec to choose.
template <typename T> int64_t argmax_serial_cpu(const T* x, int64_t n);

// ---- fast mode (see the top of this file for what they give up) ----
inline constexpr int64_t kFastPiece = 16384;
template <typename T> void sum_fast_cpu(const Exec& ex, T* out, const T* x, int64_t n);
template <typename T> void sum_rows_fast_cpu(const Exec& ex, T* out, const T* x, int64_t rows, int64_t cols);
template <typename T>
void sum_mid_fast_cpu(const Exec& ex, T* out, const T* x, int64_t outer, int64_t d, int64_t inner);

// ---- AVX2 (kernels/reduce_avx2.cpp; only with LOCKSTEP_HAVE_AVX2, only when ex.avx2()) ----
// The contiguous-order partial of one block, len <= kReduceBlock: the 32 lanes are four
// ymm accumulators (lanes 0-7, 8-15, 16-23, 24-31), so the fold is ymm, ymm, 128-bit halves,
// 64-bit halves, then lanes 0 and 1: the halving fold, bit for bit.
float sum_block_avx2(const float* x, int64_t len);

// ---- NEON (kernels/reduce_neon.cpp; aarch64, LOCKSTEP_HAVE_NEON, only when ex.neon()) ----
// The same partial with the 32 lanes in eight q registers (lanes 4q .. 4q+3).
float sum_block_neon(const float* x, int64_t len);

// ---- CUDA: the same contracts with device pointers (kernels/reduce_cuda.cu) ----
template <typename T> void sum_cuda(const Exec& ex, T* out, const T* x, int64_t n);
template <typename T> void sum_rows_cuda(const Exec& ex, T* out, const T* x, int64_t rows, int64_t cols);
template <typename T>
void sum_cols_cuda(const Exec& ex, T* out, const T* x, int64_t rows, int64_t cols, bool accumulate);
template <typename T>
void sum_mid_cuda(const Exec& ex, T* out, const T* x, int64_t outer, int64_t d, int64_t inner);
template <typename T> void max_cuda(const Exec& ex, T* out, const T* x, int64_t outer, int64_t d, int64_t inner);
template <typename T>
void argmax_cuda(const Exec& ex, int64_t* out, const T* x, int64_t outer, int64_t d, int64_t inner);
template <typename T> void sum_fast_cuda(const Exec& ex, T* out, const T* x, int64_t n);
template <typename T> void sum_rows_fast_cuda(const Exec& ex, T* out, const T* x, int64_t rows, int64_t cols);
template <typename T>
void sum_mid_fast_cuda(const Exec& ex, T* out, const T* x, int64_t outer, int64_t d, int64_t inner);

}  // namespace lockstep
