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

#include "base/reduction.h"

namespace lockstep {

// out: N values (none) or 1 (mean, sum). N may be 0 (sum 0, mean NaN); C >= 1.
void cross_entropy_forward_cpu(float* out, const float* logits, const int64_t* target, int64_t N, int64_t C,
                               float label_smoothing, Reduction reduction);
void cross_entropy_forward_cpu(double* out, const double* logits, const int64_t* target, int64_t N, int64_t C,
                               double label_smoothing, Reduction reduction);
// dlogits: N x C; dout: N values (none) or 1.
void cross_entropy_backward_cpu(float* dlogits, const float* dout, const float* logits, const int64_t* target,
                                int64_t N, int64_t C, float label_smoothing, Reduction reduction);
void cross_entropy_backward_cpu(double* dlogits, const double* dout, const double* logits,
                                const int64_t* target, int64_t N, int64_t C, double label_smoothing,
                                Reduction reduction);

// out: N x D values (none) or 1 (mean, sum).
void mse_forward_cpu(float* out, const float* x, const float* y, int64_t N, int64_t D, Reduction reduction);
void mse_forward_cpu(double* out, const double* x, const double* y, int64_t N, int64_t D, Reduction reduction);
// dx: N x D; dy: N x D or null (the target's gradient); dout: N x D values (none) or 1.
void mse_backward_cpu(float* dx, float* dy, const float* dout, const float* x, const float* y, int64_t N,
                      int64_t D, Reduction reduction);
void mse_backward_cpu(double* dx, double* dy, const double* dout, const double* x, const double* y, int64_t N,
                      int64_t D, Reduction reduction);

// ---- CUDA: the same contracts with device pointers (kernels/loss_cuda.cu) ----
void cross_entropy_forward_cuda(float* out, const float* logits, const int64_t* target, int64_t N, int64_t C,
                                float label_smoothing, Reduction reduction);
void cross_entropy_forward_cuda(double* out, const double* logits, const int64_t* target, int64_t N, int64_t C,
                                double label_smoothing, Reduction reduction);
void cross_entropy_backward_cuda(float* dlogits, const float* dout, const float* logits, const int64_t* target,
                                 int64_t N, int64_t C, float label_smoothing, Reduction reduction);
void cross_entropy_backward_cuda(double* dlogits, const double* dout, const double* logits,
                                 const int64_t* target, int64_t N, int64_t C, double label_smoothing,
                                 Reduction reduction);
void mse_forward_cuda(float* out, const float* x, const float* y, int64_t N, int64_t D, Reduction reduction);
void mse_forward_cuda(double* out, const double* x, const double* y, int64_t N, int64_t D, Reduction reduction);
void mse_backward_cuda(float* dx, float* dy, const float* dout, const float* x, const float* y, int64_t N,
                       int64_t D, Reduction reduction);
void mse_backward_cuda(double* dx, double* dy, const double* dout, const double* x, const double* y, int64_t N,
                       int64_t D, Reduction reduction);

}  // namespace lockstep
