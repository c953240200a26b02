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

#include "base/error.h"
#include "base/exec.h"

namespace lockstep {

// PyTorch's rule: training needs more than one value per feature.
inline void batchnorm_check_train(int64_t N, int64_t C) {
  LS_CHECK_ARG(N > 1, "batch_norm", "expected more than 1 value per channel when training, got input of size ",
               N, " x ", C);
}

// T is float or double. The Exec (base/exec.h) is the dispatch point's: on the CPU ex.avx2()
// runs the loops compiled for AVX2 (batchnorm_avx2.cpp, same bits); on CUDA ex.fast() lets
// the four batch sums use float atomics (batchnorm_cuda.cu).
// y: N x C. mean, rstd: C, written with the statistics used (backward's inputs).
// training: normalise with the batch statistics and, when running_mean/running_var are
// given (C each, may be null), update them in place; requires N > 1.
// !training: normalise with running_mean/running_var (required), which are not changed.
// gamma, beta: C, or null (no affine).
template <typename T>
void batchnorm_forward_cpu(const Exec& ex, T* y, T* mean, T* rstd, T* running_mean, T* running_var, const T* x,
                           const T* gamma, const T* beta, int64_t N, int64_t C, bool training, T eps, T momentum);

// dx: N x C; dgamma, dbeta: C. Any of the three may be null (not needed). mean and rstd are
// the forward's outputs; training is the forward's flag (batch statistics or constants).
template <typename T>
void batchnorm_backward_cpu(const Exec& ex, T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* mean,
                            const T* rstd, const T* gamma, int64_t N, int64_t C, bool training);

// ---- the training kernels cut where data-parallel workers combine sums (float32) ----
// A worker holding rows [b, e) of a batch of N rows, b a multiple of kBatchChunk, gets from
// batchnorm_sum_cpu / batchnorm_sqdev_sum_cpu / batchnorm_backward_sums_cpu the node of the
// batch tree over its chunks. Combining the workers' nodes by that tree (distributed/batch_tree.h)
// and finishing with the whole batch's N gives, row for row, the bits of the fused kernels
// above on the whole batch: the expressions are the same, in the same order. CPU only, float
// only (no overloads to choose between); they take the Exec like every kernel but have one
// (portable) build, which gives the fused kernels' bits at every SIMD level.
// s1[c] = batch-order sum of x[r, c] over the N rows given.
void batchnorm_sum_cpu(const Exec& ex, float* s1, const float* x, int64_t N, int64_t C);
// mean[c] = s1[c] / float(N_total)
void batchnorm_mean_cpu(const Exec& ex, float* mean, const float* s1, int64_t N_total, int64_t C);
// s2[c] = batch-order sum of fma(d, d, acc), d = x[r, c] - mean[c].
void batchnorm_sqdev_sum_cpu(const Exec& ex, float* s2, const float* x, const float* mean, int64_t N, int64_t C);
// rstd from the whole batch's s2 (N_total > 1); running statistics updated when not null.
void batchnorm_finish_stats_cpu(const Exec& ex, float* rstd, float* running_mean, float* running_var,
                                const float* mean, const float* s2, int64_t N_total, int64_t C, float eps,
                                float momentum);
// y = xhat * gamma + beta for the N rows given (gamma, beta may be null).
void batchnorm_normalize_cpu(const Exec& ex, float* y, const float* x, const float* mean, const float* rstd,
                             const float* gamma, const float* beta, int64_t N, int64_t C);
// b[0, C): batch-order sum of dy;  b[C, 2C): batch-order sum of dy * xhat (one fma a term).
void batchnorm_backward_sums_cpu(const Exec& ex, float* b, const float* dy, const float* x, const float* mean,
                                 const float* rstd, int64_t N, int64_t C);
// dx for the N rows given, from the whole batch's sums b (2C) and size N_total.
void batchnorm_backward_dx_cpu(const Exec& ex, float* dx, const float* dy, const float* x, const float* mean,
                               const float* rstd, const float* gamma, const float* b, int64_t N, int64_t N_total,
                               int64_t C);

// ---- AVX2 (kernels/batchnorm_avx2.cpp; only with LOCKSTEP_HAVE_AVX2, when ex.avx2()) ----
// The same loops and bits as the _cpu functions, which call these when the Exec asks.
void batchnorm_forward_avx2(float* y, float* mean, float* rstd, float* running_mean, float* running_var,
                            const float* x, const float* gamma, const float* beta, int64_t N, int64_t C,
                            bool training, float eps, float momentum);
void batchnorm_forward_avx2(double* y, double* mean, double* rstd, double* running_mean, double* running_var,
                            const double* x, const double* gamma, const double* beta, int64_t N, int64_t C,
                            bool training, double eps, double momentum);
void batchnorm_backward_avx2(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                             const float* mean, const float* rstd, const float* gamma, int64_t N, int64_t C,
                             bool training);
void batchnorm_backward_avx2(double* dx, double* dgamma, double* dbeta, const double* dy, const double* x,
                             const double* mean, const double* rstd, const double* gamma, int64_t N, int64_t C,
                             bool training);

// ---- CUDA: the same contracts with device pointers (kernels/batchnorm_cuda.cu) ----
template <typename T>
void batchnorm_forward_cuda(const Exec& ex, T* y, T* mean, T* rstd, T* running_mean, T* running_var, const T* x,
                            const T* gamma, const T* beta, int64_t N, int64_t C, bool training, T eps, T momentum);
template <typename T>
void batchnorm_backward_cuda(const Exec& ex, T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* mean,
                             const T* rstd, const T* gamma, int64_t N, int64_t C, bool training);

}  // namespace lockstep
