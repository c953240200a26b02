// BatchNorm1d over x: N x C, row-major (N samples, C features), PyTorch semantics.
// Written in T (float or double); eps and momentum are T; Nf = T(N), N1 = T(N - 1).
//
// Forward, batch statistics (training, or no running stats):
//   S1[c] = batch-order sum over rows of x[r,c]                     (reduce_order.h)
//   mean  = S1 / Nf
//   S2[c] = batch-order sum over rows of d*d, d = x[r,c] - mean,   two-pass; each term is
//           one fma: acc = fma(d, d, acc)
//   var   = S2 / Nf                                                 (biased)
//   rstd  = 1 / sqrt(var + eps)      IEEE sqrt, then a division; rstd = 0 where var + eps
//                                    is 0 (PyTorch's InvStd rule)
// Forward, running statistics (eval):  mean = running_mean;  rstd = 1 / sqrt(running_var + eps)
// Then, for every element:
//   xhat = (x - mean) * rstd;  y = xhat;  if (gamma) y = y * gamma;  if (beta) y = y + beta
// Running statistics (training with running_mean/running_var given), with a = 1 - momentum:
//   running_mean = a * running_mean + momentum * mean          (two products, then the sum)
//   running_var  = a * running_var  + momentum * (S2 / N1)     (S2 / N1: the unbiased var)
// Backward, with xhat recomputed as in the forward and s = gamma ? rstd * gamma : rstd:
//   B1[c] = batch-order sum of dy;  B2[c] = batch-order sum of dy * xhat (one fma per term)
//   dbeta = B1;  dgamma = B2
//   batch statistics: a1 = B1 / Nf;  a2 = B2 / Nf;  dx = ((dy - a1) - xhat * a2) * s
//                     (= gamma rstd / N (N dy - sum dy - xhat sum dy xhat), the standard form)
//   running statistics (constants): dx = dy * s
// Every kernel WRITES its outputs; none adds into them (the autograd engine accumulates).
//
// Threads split the features: a thread owns whole columns, and every sum over the batch is
// the canonical batch order, so the bits are the same for any thread count, run to run, and
// with CUDA. A sample's y depends on the others only through the statistics (training).
// N == 1 in training gives var_unbiased = 0/0: the front end rejects it first, as PyTorch
// does (batchnorm_check_train below); the kernels assert.
// CUDA (kernels/batchnorm_cuda.cu): the same signatures with device pointers and the same bits
// in deterministic mode (docs/cuda.md gives the GPU work split of each kernel).
#pragma once
#include <cstdint>

#include "core/error.h"

namespace lockstep {

// PyTorch's rule: training needs more than one value per feature.
inline void batchnorm_check_train(int64_t N, int64_t C) {
  LS_CHECK_ARG(N > 1, "batch_norm", "expected more than 1 value per channel when training, got input of size ",
               N, " x ", C);
}

// y: N x C. mean, rstd: C, written with the statistics used (backward's inputs).
// training: normalise with the batch statistics and, when running_mean/running_var are
// given (C each, may be null), update them in place; requires N > 1.
// !training: normalise with running_mean/running_var (required), which are not changed.
// gamma, beta: C, or null (no affine).
void batchnorm_forward_cpu(float* y, float* mean, float* rstd, float* running_mean, float* running_var,
                           const float* x, const float* gamma, const float* beta, int64_t N, int64_t C,
                           bool training, float eps, float momentum);
void batchnorm_forward_cpu(double* y, double* mean, double* rstd, double* running_mean, double* running_var,
                           const double* x, const double* gamma, const double* beta, int64_t N, int64_t C,
                           bool training, double eps, double momentum);

// dx: N x C; dgamma, dbeta: C. Any of the three may be null (not needed). mean and rstd are
// the forward's outputs; training is the forward's flag (batch statistics or constants).
void batchnorm_backward_cpu(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                            const float* mean, const float* rstd, const float* gamma, int64_t N, int64_t C,
                            bool training);
void batchnorm_backward_cpu(double* dx, double* dgamma, double* dbeta, const double* dy, const double* x,
                            const double* mean, const double* rstd, const double* gamma, int64_t N, int64_t C,
                            bool training);

// ---- CUDA: the same contracts with device pointers (kernels/batchnorm_cuda.cu) ----
void batchnorm_forward_cuda(float* y, float* mean, float* rstd, float* running_mean, float* running_var,
                            const float* x, const float* gamma, const float* beta, int64_t N, int64_t C,
                            bool training, float eps, float momentum);
void batchnorm_forward_cuda(double* y, double* mean, double* rstd, double* running_mean, double* running_var,
                            const double* x, const double* gamma, const double* beta, int64_t N, int64_t C,
                            bool training, double eps, double momentum);
void batchnorm_backward_cuda(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                             const float* mean, const float* rstd, const float* gamma, int64_t N, int64_t C,
                             bool training);
void batchnorm_backward_cuda(double* dx, double* dgamma, double* dbeta, const double* dy, const double* x,
                             const double* mean, const double* rstd, const double* gamma, int64_t N, int64_t C,
                             bool training);

}  // namespace lockstep
