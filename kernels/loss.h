// Loss kernels: cross-entropy from logits with class-index targets, and mean squared error.
// Written in T (float or double); label_smoothing is T. Every kernel WRITES its outputs;
// none adds into them (the autograd engine accumulates).
//
// Cross-entropy, logits N x C row-major, target[i] in [0, C) (the front end checks; the
// kernels assert), row i, with t = target[i]:
//   logp = log_softmax(logits[i])   the order of kernels/softmax.h: m = row max,
//          s = contiguous-order sum of ls_exp(x - m), logp[j] = (x[j] - m) - ls_log(s)
//   nll  = -logp[t]
//   eps == 0:  loss_i = nll               (the smoothing term is skipped, not multiplied by 0,
//                                          so -inf logits away from t leave the loss finite)
//   eps  > 0:  a = 1 - eps;  b = eps / T(C);  S = contiguous-order sum of logp[0 .. C)
//              loss_i = a * nll + (-S) * b      (PyTorch's (1-eps) nll + eps/C sum_j -logp[j];
//                                                -inf logits then give +inf, as in PyTorch)
//   reduction none: out[i] = loss_i (N values)
//             sum:  out[0] = batch-order sum of loss_i (the N x 1 column, kernels/reduce.h)
//             mean: out[0] = (that sum) / T(N)      (PyTorch's unweighted mean)
// Backward, dout as the forward's out (N values for none, 1 otherwise):
//   w_i = dout[i] (none) | dout[0] (sum) | dout[0] / T(N) (mean)
//   p = softmax(logits[i])          kernels/softmax.h: p[j] = ls_exp(x[j] - m) / s
//   q[j] = b for j != t;  q[t] = a + b      (eps == 0: q is one-hot)
//   dlogits[i, j] = (p[j] - q[j]) * w_i
//
// MSE, x and y N x D row-major (the front end passes N = size(0), D = numel / N; a 0-d
// tensor is 1 x 1). d = x - y; sq = d * d (rounded: one product, not an fma).
//   none: out = sq (N x D)
//   sum:  R_i = contiguous-order sum of row i of sq; out[0] = batch-order sum of R_i
//   mean: out[0] = (that sum) / T(N * D)
// So a loss over a batch cut at kBatchChunk boundaries reproduces the whole batch's bits,
// like the other batch-order reductions (docs/determinism.md).
// Backward: norm = 2 (none, sum) | 2 / T(N * D) (mean);  g = dout[i, j] (none) | dout[0]
//   dx = (norm * d) * g;   dy = -dx (exactly), when asked for
//
// Deterministic: rows are split across threads, a row never spans two, and the reductions
// over rows are the canonical batch order, so the bits are the same for any thread count
// and run to run; a row's loss_i and gradient do not depend on the other rows except through
// the mean's 1/N.
// CUDA (kernels/loss_cuda.cu): the same signatures with device pointers and the same bits
// in deterministic mode (docs/cuda.md gives the GPU work split of each kernel).
#pragma once
#include <cstdint>

#include "base/exec.h"
#include "base/reduction.h"

namespace lockstep {

// T is float or double. The Exec (base/exec.h) is the dispatch point's: the CPU kernels
// pass its SIMD level to the softmax and sum kernels they are built from (same bits at every
// level); on CUDA, ex.fast() lets the sums over rows use float atomics (loss_cuda.cu).
// out: N values (none) or 1 (mean, sum). N may be 0 (sum 0, mean NaN); C >= 1.
template <typename T>
void cross_entropy_forward_cpu(const Exec& ex, T* out, const T* logits, const int64_t* target, int64_t N, int64_t C,
                               T label_smoothing, Reduction reduction);
// dlogits: N x C; dout: N values (none) or 1.
template <typename T>
void cross_entropy_backward_cpu(const Exec& ex, T* dlogits, const T* dout, const T* logits, const int64_t* target,
                                int64_t N, int64_t C, T label_smoothing, Reduction reduction);
// out: N x D values (none) or 1 (mean, sum).
template <typename T>
void mse_forward_cpu(const Exec& ex, T* out, const T* x, const T* y, int64_t N, int64_t D, Reduction reduction);
// dx: N x D; dy: N x D or null (the target's gradient); dout: N x D values (none) or 1.
template <typename T>
void mse_backward_cpu(const Exec& ex, T* dx, T* dy, const T* dout, const T* x, const T* y, int64_t N, int64_t D,
                      Reduction reduction);

// ---- CUDA: the same contracts with device pointers (kernels/loss_cuda.cu) ----
template <typename T>
void cross_entropy_forward_cuda(const Exec& ex, T* out, const T* logits, const int64_t* target, int64_t N,
                                int64_t C, T label_smoothing, Reduction reduction);
template <typename T>
void cross_entropy_backward_cuda(const Exec& ex, T* dlogits, const T* dout, const T* logits, const int64_t* target,
                                 int64_t N, int64_t C, T label_smoothing, Reduction reduction);
template <typename T>
void mse_forward_cuda(const Exec& ex, T* out, const T* x, const T* y, int64_t N, int64_t D, Reduction reduction);
template <typename T>
void mse_backward_cuda(const Exec& ex, T* dx, T* dy, const T* dout, const T* x, const T* y, int64_t N, int64_t D,
                       Reduction reduction);

}  // namespace lockstep
