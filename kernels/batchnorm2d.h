// BatchNorm2d over x: N x C x HW (NCHW with the H x W plane flattened, row-major), PyTorch
// semantics: per channel c the statistics are over the M = N * HW values x[n, c, :].
// The formulas are BatchNorm1d's (kernels/batchnorm.h) with the count M in place of N:
// Nf = T(M), N1 = T(M - 1); mean = S1 / Nf, var = S2 / Nf (biased), rstd = 1 / sqrt(var + eps)
// (0 where var + eps is 0), running_var uses S2 / N1; y = xhat * gamma + beta; backward
// dx = ((dy - B1 / Nf) - xhat * (B2 / Nf)) * rstd * gamma, dgamma = B2, dbeta = B1.
//
// The order of every per-channel sum (S1 of x, S2 of fma(d, d, acc), B1 of dy, B2 of
// fma(dy, xhat, acc)): the batch order of kernels/reduce_order.h with the SAMPLE as the row:
// the batch is cut into chunks of kBatchChunk samples; a chunk's partial starts at +0 and
// adds its terms sample by sample, inside a sample position by position (h, then w), i.e.
// the (n, h, w) rows in increasing order, in DOUBLE (for float data too: a chunk is
// 32 * H * W terms, 25,088 at 28 x 28, a chain that in float loses up to ~1e-3 of a
// cancelling sum such as a channel's sum of dy), and is rounded to T once when the chunk
// ends; the T chunk partials are combined by tree_sum. A
// data-parallel worker owning whole chunks of samples (distributed/batch_tree.h) therefore
// computes a node of the same tree with the cut kernels below, as for BatchNorm1d.
//
// Threads split the channels (a task owns whole channels and runs each channel's sums in
// that order; up to 8 channels advance together for instruction-level parallelism, which
// changes no order); the elementwise passes are per (n, c) plane. So the bits are the same
// for any thread count, run to run, with AVX2 (batchnorm2d_avx2.cpp: the same templates; a full
// group of 8 float channels sums on vectors, one lane a channel, each lane this order) and
// on CUDA (batchnorm2d_cuda.cu: one thread per (chunk, channel), then per channel the tree).
// In eval mode a sample's y depends on nothing else (batch invariance). Kernels WRITE.
// The front end requires M > 1 in training (PyTorch); the kernels assert.
#pragma once
#include <cstdint>

#include "base/exec.h"

namespace lockstep {

// As batchnorm_forward_cpu (kernels/batchnorm.h) over N x C x HW.
template <typename T>
void batchnorm2d_forward_cpu(const Exec& ex, T* y, T* mean, T* rstd, T* running_mean, T* running_var, const T* x,
                             const T* gamma, const T* beta, int64_t N, int64_t C, int64_t HW, bool training, T eps,
                             T momentum);
// As batchnorm_backward_cpu over N x C x HW; dx, dgamma, dbeta may be null.
template <typename T>
void batchnorm2d_backward_cpu(const Exec& ex, T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* mean,
                              const T* rstd, const T* gamma, int64_t N, int64_t C, int64_t HW, bool training);

// ---- cut kernels for data parallelism (float32, CPU; see kernels/batchnorm.h) ----
// The mean and the statistics' finish are batchnorm_mean_cpu / batchnorm_finish_stats_cpu
// with N_total = global samples * HW.
// s1[c] = the order above over this process's N samples.
void batchnorm2d_sum_cpu(const Exec& ex, float* s1, const float* x, int64_t N, int64_t C, int64_t HW);
void batchnorm2d_sqdev_sum_cpu(const Exec& ex, float* s2, const float* x, const float* mean, int64_t N, int64_t C,
                               int64_t HW);
void batchnorm2d_normalize_cpu(const Exec& ex, float* y, const float* x, const float* mean, const float* rstd,
                               const float* gamma, const float* beta, int64_t N, int64_t C, int64_t HW);
// b[0, C): sums of dy; b[C, 2C): sums of dy * xhat.
void batchnorm2d_backward_sums_cpu(const Exec& ex, float* b, const float* dy, const float* x, const float* mean,
                                   const float* rstd, int64_t N, int64_t C, int64_t HW);
// dx for this process's N samples from the whole batch's sums b and count M_total.
void batchnorm2d_backward_dx_cpu(const Exec& ex, float* dx, const float* dy, const float* x, const float* mean,
                                 const float* rstd, const float* gamma, const float* b, int64_t N, int64_t M_total,
                                 int64_t C, int64_t HW);

// ---- AVX2 (batchnorm2d_avx2.cpp, only with LOCKSTEP_HAVE_AVX2, when ex.avx2()): same bits ----
void batchnorm2d_forward_avx2(float* y, float* mean, float* rstd, float* running_mean, float* running_var,
                              const float* x, const float* gamma, const float* beta, int64_t N, int64_t C, int64_t HW,
                              bool training, float eps, float momentum);
void batchnorm2d_forward_avx2(double* y, double* mean, double* rstd, double* running_mean, double* running_var,
                              const double* x, const double* gamma, const double* beta, int64_t N, int64_t C,
                              int64_t HW, bool training, double eps, double momentum);
void batchnorm2d_backward_avx2(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                               const float* mean, const float* rstd, const float* gamma, int64_t N, int64_t C,
                               int64_t HW, bool training);
void batchnorm2d_backward_avx2(double* dx, double* dgamma, double* dbeta, const double* dy, const double* x,
                               const double* mean, const double* rstd, const double* gamma, int64_t N, int64_t C,
                               int64_t HW, bool training);

// ---- CUDA (batchnorm2d_cuda.cu): the same contracts with device pointers ----
template <typename T>
void batchnorm2d_forward_cuda(const Exec& ex, T* y, T* mean, T* rstd, T* running_mean, T* running_var, const T* x,
                              const T* gamma, const T* beta, int64_t N, int64_t C, int64_t HW, bool training, T eps,
                              T momentum);
template <typename T>
void batchnorm2d_backward_cuda(const Exec& ex, T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* mean,
                               const T* rstd, const T* gamma, int64_t N, int64_t C, int64_t HW, bool training);

}  // namespace lockstep
