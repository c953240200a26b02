// Softmax and log-softmax over the last dim of a row-major rows x cols matrix, one row at a
// time (threads split the rows):
//   m = max of the row (NaN propagates)
//   e[j] = exp(x[j] - m)                  ls_expf / ls_exp (base/math.h)
//   s = sum of e in the contiguous order  (sum_serial_cpu, kernels/reduce.h)
//   softmax[j] = e[j] / s
//   log_softmax[j] = (x[j] - m) - log(s)  ls_logf / ls_log
// Subtracting the max keeps exp <= 1 and s in [1, cols], so large inputs do not overflow.
// A row of length 1 gives 1 (and 0); -inf entries give 0 (and -inf); a row that is all -inf,
// or holds +inf or NaN, gives NaN, as in PyTorch. cols == 0 writes nothing.
// out must not alias x. Deterministic in both modes: one row never spans threads, and every
// step above is elementwise or the canonical contiguous sum, so the bits are the same for
// any thread count, SIMD path and batch (a row's result does not depend on the other rows).
// CUDA (kernels/softmax_cuda.cu): the same signatures with device pointers and the same bits
// in deterministic mode (docs/cuda.md gives the GPU work split of each kernel).
#pragma once
#include <cstdint>

#include "base/exec.h"

namespace lockstep {

// float and double; ex.simd picks the vector exp and sum (same bits at every level).
template <typename T> void softmax_forward_cpu(const Exec& ex, T* out, const T* x, int64_t rows, int64_t cols);
template <typename T> void log_softmax_forward_cpu(const Exec& ex, T* out, const T* x, int64_t rows, int64_t cols);

template <typename T> void softmax_forward_cuda(const Exec& ex, T* out, const T* x, int64_t rows, int64_t cols);
template <typename T> void log_softmax_forward_cuda(const Exec& ex, T* out, const T* x, int64_t rows, int64_t cols);

}  // namespace lockstep
