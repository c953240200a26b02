// LayerNorm and RMSNorm over the last dim of a row-major rows x C matrix (PyTorch
// semantics: biased variance, eps inside the square root). Written in T (float or double).
//
// Forward, one row at a time (sums in the contiguous order of kernels/reduce_order.h, over
// the row's C values; a product or square is rounded, then summed):
//   layer_norm  s1 = sum(x);  mean = s1 / C;  d[j] = x[j] - mean;  s2 = sum(d[j] * d[j])
//               var = s2 / C;  rstd = 1 / sqrt(var + eps)  (IEEE sqrt, then a division)
//               y[j] = d[j] * rstd;  if (w) y = y * w[j];  if (b) y = y + b[j]
//   rms_norm    s2 = sum(x[j] * x[j]);  ms = s2 / C;  rstd = 1 / sqrt(ms + eps)
//               y[j] = x[j] * rstd;  if (w) y = y * w[j]
// mean (layer_norm) and rstd are written per row: the backward's inputs.
// Backward, one row at a time, with xhat[j] recomputed as in the forward (d[j] * rstd or
// x[j] * rstd, the same bits) and g[j] = w ? dy[j] * w[j] : dy[j]:
//   layer_norm  a1 = sum(g) / C;  a2 = sum(g[j] * xhat[j]) / C
//               dx[j] = ((g[j] - a1) - xhat[j] * a2) * rstd
//   rms_norm    a2 = sum(g[j] * xhat[j]) / C;  dx[j] = (g[j] - xhat[j] * a2) * rstd
// Weight and bias gradients are sums over the rows, in the *batch order* (reduce_order.h):
// chunks of kBatchChunk rows, each summed row by row from +0 (dw: acc = fma(dy, xhat, acc);
// db: acc = acc + dy), chunk partials combined by tree_sum: a function of the shapes only,
// so data-parallel workers holding whole chunks reproduce the single-process bits.
// Every kernel WRITES its outputs (the autograd engine accumulates).
//
// Work split: a row never spans threads (CPU: threads split the rows; CUDA: one warp per
// row, lanes l, l + 32, ... as the contiguous order's lanes); the weight/bias sums split the
// columns (CPU) or run one thread per (chunk, column) then per column (CUDA). So a row's y
// and dx depend on that row alone: bitwise batch-invariant, and the same for any thread
// count, at every SIMD level (the contiguous sum's AVX2 path gives the portable bits) and
// on CUDA. Both modes run the same code (nothing here is worth a fast variant).
#pragma once
#include <cstdint>

#include "base/exec.h"

namespace lockstep {

// y: rows x C; mean, rstd: rows; w, b: C or null.
template <typename T>
void layer_norm_forward_cpu(const Exec& ex, T* y, T* mean, T* rstd, const T* x, const T* w, const T* b, int64_t rows,
                            int64_t C, T eps);
// dx: rows x C; dw, db: C; any of the three may be null (not wanted). w may be null.
template <typename T>
void layer_norm_backward_cpu(const Exec& ex, T* dx, T* dw, T* db, const T* dy, const T* x, const T* mean,
                             const T* rstd, const T* w, int64_t rows, int64_t C);
template <typename T>
void rms_norm_forward_cpu(const Exec& ex, T* y, T* rstd, const T* x, const T* w, int64_t rows, int64_t C, T eps);
template <typename T>
void rms_norm_backward_cpu(const Exec& ex, T* dx, T* dw, const T* dy, const T* x, const T* rstd, const T* w,
                           int64_t rows, int64_t C);

// ---- AVX2 (layernorm_avx2.cpp; only with LOCKSTEP_HAVE_AVX2, when ex.avx2()): same bits ----
#define LS_LN_AVX2_DECL(T)                                                                                      \
  void layer_norm_forward_avx2(const Exec& ex, T* y, T* mean, T* rstd, const T* x, const T* w, const T* b,      \
                               int64_t rows, int64_t C, T eps);                                                 \
  void layer_norm_backward_avx2(const Exec& ex, T* dx, T* dw, T* db, const T* dy, const T* x, const T* mean,    \
                                const T* rstd, const T* w, int64_t rows, int64_t C);                            \
  void rms_norm_forward_avx2(const Exec& ex, T* y, T* rstd, const T* x, const T* w, int64_t rows, int64_t C,    \
                             T eps);                                                                            \
  void rms_norm_backward_avx2(const Exec& ex, T* dx, T* dw, const T* dy, const T* x, const T* rstd, const T* w, \
                              int64_t rows, int64_t C);
LS_LN_AVX2_DECL(float)
LS_LN_AVX2_DECL(double)
#undef LS_LN_AVX2_DECL
// ---- AVX-512 (layernorm_avx512.cpp; only with LOCKSTEP_HAVE_AVX512, when ex.avx512()): same bits ----
#define LS_LN_AVX512_DECL(T)                                                                                      \
  void layer_norm_forward_avx512(const Exec& ex, T* y, T* mean, T* rstd, const T* x, const T* w, const T* b,      \
                               int64_t rows, int64_t C, T eps);                                                 \
  void layer_norm_backward_avx512(const Exec& ex, T* dx, T* dw, T* db, const T* dy, const T* x, const T* mean,    \
                                const T* rstd, const T* w, int64_t rows, int64_t C);                            \
  void rms_norm_forward_avx512(const Exec& ex, T* y, T* rstd, const T* x, const T* w, int64_t rows, int64_t C,    \
                             T eps);                                                                            \
  void rms_norm_backward_avx512(const Exec& ex, T* dx, T* dw, const T* dy, const T* x, const T* rstd, const T* w, \
                              int64_t rows, int64_t C);
LS_LN_AVX512_DECL(float)
LS_LN_AVX512_DECL(double)
#undef LS_LN_AVX512_DECL

template <typename T>
void layer_norm_forward_cuda(const Exec& ex, T* y, T* mean, T* rstd, const T* x, const T* w, const T* b,
                             int64_t rows, int64_t C, T eps);
template <typename T>
void layer_norm_backward_cuda(const Exec& ex, T* dx, T* dw, T* db, const T* dy, const T* x, const T* mean,
                              const T* rstd, const T* w, int64_t rows, int64_t C);
template <typename T>
void rms_norm_forward_cuda(const Exec& ex, T* y, T* rstd, const T* x, const T* w, int64_t rows, int64_t C, T eps);
template <typename T>
void rms_norm_backward_cuda(const Exec& ex, T* dx, T* dw, const T* dy, const T* x, const T* rstd, const T* w,
                            int64_t rows, int64_t C);

}  // namespace lockstep
