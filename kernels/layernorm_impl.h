// The CPU LayerNorm / RMSNorm loops of kernels/layernorm.h as templates, compiled twice: by
// layernorm_cpu.cpp (portable) and layernorm_avx2.cpp (-mavx2 -mfma, when ex.avx2()): the
// weight gradient's std::fma becomes one instruction instead of a libm call and the column
// loops vectorise; every loop runs over independent outputs, so the bits are the same.
// Threads split the rows for y and dx (the row sums are sum_serial_cpu's contiguous order
// over a scratch row of the rounded terms); threads split the columns for dw and db, each
// column block summed over the rows in the batch order with a TreeStack of chunk partials.
#pragma once
#include <algorithm>
#include <cmath>

#include "base/parallel.h"
#include "kernels/layernorm.h"
#include "kernels/reduce.h"
#include "kernels/reduce_order.h"
#include "kernels/scratch_impl.h"

// An anonymous namespace: each including file keeps its own copies.
namespace lockstep::lnorm {
namespace {

constexpr int64_t kGrainElems = 16384;  // elements per task
constexpr int64_t kColBlock = 32;       // columns per task of the weight sums (C = 128: 4 tasks)
constexpr int kMaxLevels = 64;

template <typename T>
T inv_std(T var, T eps) {
  return T(1) / std::sqrt(var + eps);
}

template <typename Fn>
void over_rows(int64_t rows, int64_t C, const Fn& fn) {
  parallel_for(rows, std::max<int64_t>(1, kGrainElems / std::max<int64_t>(C, 1)), fn);
}

// out[j] for columns [c0, c1): the batch-order sum over the rows of term(r, j).
template <typename T, typename Term>
void batch_cols(T* out, int64_t rows, int64_t c0, int64_t c1, const Term& term) {
  const int64_t w = c1 - c0;
  Scratch<T> store((kMaxLevels + 1) * w);
  TreeStack<T> stack(store.data(), w);
  for (int64_t r0 = 0; r0 < rows; r0 += kBatchChunk) {
    const int64_t r1 = std::min(rows, r0 + kBatchChunk);
    T* acc = stack.next();
    std::fill(acc, acc + w, T(0));
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t j = 0; j < w; ++j) acc[j] = term(acc[j], r, c0 + j);
    stack.push();
  }
  if (rows == 0) {
    std::fill(out + c0, out + c1, T(0));
    return;
  }
  const T* res = stack.finish();
  std::copy(res, res + w, out + c0);
}

template <typename T, typename Term>
void batch_sums(T* out, int64_t rows, int64_t C, const Term& term) {
  if (!out) return;
  const int64_t blocks = (C + kColBlock - 1) / kColBlock;
  // Columns are independent sums: the split into tasks never enters the bits.
  const int64_t grain = std::max<int64_t>(1, kGrainElems / std::max<int64_t>(1, rows * kColBlock));
  parallel_for(blocks, grain, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) batch_cols(out, rows, b * kColBlock, std::min(C, (b + 1) * kColBlock), term);
  });
}

template <typename T>
void layer_norm_forward_impl(const Exec& ex, T* y, T* mean, T* rstd, const T* x, const T* w, const T* b, int64_t rows,
                            int64_t C, T eps) {
  const T Cf = static_cast<T>(C);
  over_rows(rows, C, [&](int64_t r0, int64_t r1) {
    Scratch<T> qb(C);
    T* q = qb.data();
    for (int64_t r = r0; r < r1; ++r) {
      const T* xr = x + r * C;
      T* yr = y + r * C;
      const T m = sum_serial_cpu(ex, xr, C) / Cf;
      for (int64_t j = 0; j < C; ++j) {
        const T d = xr[j] - m;
        q[j] = d * d;
      }
      const T rs = inv_std(sum_serial_cpu(ex, q, C) / Cf, eps);
      for (int64_t j = 0; j < C; ++j) {
        T v = (xr[j] - m) * rs;
        if (w) v = v * w[j];
        if (b) v = v + b[j];
        yr[j] = v;
      }
      mean[r] = m;
      rstd[r] = rs;
    }
  });
}

template <typename T>
void layer_norm_backward_impl(const Exec& ex, T* dx, T* dw, T* db, const T* dy, const T* x, const T* mean,
                             const T* rstd, const T* w, int64_t rows, int64_t C) {
  const T Cf = static_cast<T>(C);
  if (dx)
    over_rows(rows, C, [&](int64_t r0, int64_t r1) {
      Scratch<T> gb(C), pb(C), xb(C);
      T *g = gb.data(), *p = pb.data(), *xh = xb.data();
      for (int64_t r = r0; r < r1; ++r) {
        const T* xr = x + r * C;
        const T* dyr = dy + r * C;
        const T m = mean[r], rs = rstd[r];
        for (int64_t j = 0; j < C; ++j) {
          xh[j] = (xr[j] - m) * rs;
          g[j] = w ? dyr[j] * w[j] : dyr[j];
          p[j] = g[j] * xh[j];
        }
        const T a1 = sum_serial_cpu(ex, g, C) / Cf;
        const T a2 = sum_serial_cpu(ex, p, C) / Cf;
        T* dxr = dx + r * C;
        for (int64_t j = 0; j < C; ++j) dxr[j] = ((g[j] - a1) - xh[j] * a2) * rs;
      }
    });
  batch_sums(dw, rows, C, [&](T acc, int64_t r, int64_t j) {
    const T xh = (x[r * C + j] - mean[r]) * rstd[r];
    return std::fma(dy[r * C + j], xh, acc);
  });
  batch_sums(db, rows, C, [&](T acc, int64_t r, int64_t j) { return acc + dy[r * C + j]; });
}

template <typename T>
void rms_norm_forward_impl(const Exec& ex, T* y, T* rstd, const T* x, const T* w, int64_t rows, int64_t C, T eps) {
  const T Cf = static_cast<T>(C);
  over_rows(rows, C, [&](int64_t r0, int64_t r1) {
    Scratch<T> qb(C);
    T* q = qb.data();
    for (int64_t r = r0; r < r1; ++r) {
      const T* xr = x + r * C;
      T* yr = y + r * C;
      for (int64_t j = 0; j < C; ++j) q[j] = xr[j] * xr[j];
      const T rs = inv_std(sum_serial_cpu(ex, q, C) / Cf, eps);
      for (int64_t j = 0; j < C; ++j) {
        T v = xr[j] * rs;
        if (w) v = v * w[j];
        yr[j] = v;
      }
      rstd[r] = rs;
    }
  });
}

template <typename T>
void rms_norm_backward_impl(const Exec& ex, T* dx, T* dw, const T* dy, const T* x, const T* rstd, const T* w,
                           int64_t rows, int64_t C) {
  const T Cf = static_cast<T>(C);
  if (dx)
    over_rows(rows, C, [&](int64_t r0, int64_t r1) {
      Scratch<T> gb(C), pb(C), xb(C);
      T *g = gb.data(), *p = pb.data(), *xh = xb.data();
      for (int64_t r = r0; r < r1; ++r) {
        const T* xr = x + r * C;
        const T* dyr = dy + r * C;
        const T rs = rstd[r];
        for (int64_t j = 0; j < C; ++j) {
          xh[j] = xr[j] * rs;
          g[j] = w ? dyr[j] * w[j] : dyr[j];
          p[j] = g[j] * xh[j];
        }
        const T a2 = sum_serial_cpu(ex, p, C) / Cf;
        T* dxr = dx + r * C;
        for (int64_t j = 0; j < C; ++j) dxr[j] = (g[j] - xh[j] * a2) * rs;
      }
    });
  batch_sums(dw, rows, C, [&](T acc, int64_t r, int64_t j) {
    const T xh = x[r * C + j] * rstd[r];
    return std::fma(dy[r * C + j], xh, acc);
  });
}

}  // namespace
}  // namespace lockstep::lnorm
