// The CPU BatchNorm1d loops of kernels/batchnorm.h as templates, compiled twice: by
// batchnorm_cpu.cpp (portable) and by batchnorm_avx2.cpp (-mavx2 -mfma, used when
// simd_enabled()). Threads split the C features; a task owns a range of whole columns and
// walks the rows in order, so each row's slice of the range is one contiguous run. The
// batch-order sums are fused with the terms they add (x, (x - mean)^2, dy, dy * xhat), so no
// N x C temporary is written; the order is still the canonical one: chunks of kBatchChunk
// rows accumulated from +0, chunk partials merged by TreeStack. Every inner loop runs over
// independent columns, so vectorising it changes no rounding: both builds give the same bits
// (std::fma is one correctly rounded fma in each; the AVX2 build inlines it).
#pragma once
#include <algorithm>
#include <cassert>
#include <cmath>
#include <vector>

#include "core/parallel.h"
#include "kernels/batchnorm.h"
#include "kernels/reduce_order.h"

// An anonymous namespace: each including file gets its own copies, so the AVX2 build and
// the portable build are never merged by the linker.
namespace lockstep::bn {
namespace {

constexpr int64_t kGrainElems = 16384;  // elements of x per task, at least

// out[0 .. width) = batch-order sums over rows 0 .. N-1, where add_row(acc, r) adds row r's
// terms into the chunk partials acc[0 .. width). mem is scratch for the tree.
template <typename T, typename AddRow>
void batch_sums(T* out, int64_t N, int64_t width, std::vector<T>& mem, const AddRow& add_row) {
  if (N <= 0) {
    std::fill(out, out + width, T(0));
    return;
  }
  const int64_t nchunks = (N + kBatchChunk - 1) / kBatchChunk;
  int64_t levels = 0;
  while ((int64_t(1) << levels) < nchunks) ++levels;
  mem.resize(static_cast<size_t>((levels + 1) * width));
  TreeStack<T> stack(mem.data(), width);
  for (int64_t r0 = 0; r0 < N; r0 += kBatchChunk) {
    T* acc = stack.next();
    std::fill(acc, acc + width, T(0));
    for (int64_t r = r0; r < std::min(N, r0 + kBatchChunk); ++r) add_row(acc, r);
    stack.push();
  }
  const T* total = stack.finish();
  std::copy(total, total + width, out);
}

template <typename T>
T inv_std(T var, T eps) {
  const T d = std::sqrt(var + eps);
  return d == T(0) ? T(0) : T(1) / d;
}

template <typename T>
void forward_impl(T* y, T* mean, T* rstd, T* running_mean, T* running_var, const T* x, const T* gamma,
                  const T* beta, int64_t N, int64_t C, bool training, T eps, T momentum) {
  assert(!training || N > 1);
  assert(training || (running_mean && running_var));
  const T Nf = static_cast<T>(N), N1 = static_cast<T>(N - 1);
  const int64_t grain = std::max<int64_t>(1, kGrainElems / std::max<int64_t>(N, 1));
  parallel_for(C, grain, [&](int64_t c0, int64_t c1) {
    const int64_t w = c1 - c0;
    T* m = mean + c0;
    T* rs = rstd + c0;
    if (training) {
      std::vector<T> mem, s(static_cast<size_t>(w));
      batch_sums(s.data(), N, w, mem, [&](T* acc, int64_t r) {
        const T* xr = x + r * C + c0;
        for (int64_t j = 0; j < w; ++j) acc[j] += xr[j];
      });
      for (int64_t j = 0; j < w; ++j) m[j] = s[j] / Nf;
      // second pass: squared deviations from the mean just computed
      batch_sums(s.data(), N, w, mem, [&](T* acc, int64_t r) {
        const T* xr = x + r * C + c0;
        for (int64_t j = 0; j < w; ++j) {
          const T d = xr[j] - m[j];
          acc[j] = std::fma(d, d, acc[j]);
        }
      });
      const T a = T(1) - momentum;
      for (int64_t j = 0; j < w; ++j) {
        rs[j] = inv_std(s[j] / Nf, eps);
        if (running_mean) running_mean[c0 + j] = a * running_mean[c0 + j] + momentum * m[j];
        if (running_var) running_var[c0 + j] = a * running_var[c0 + j] + momentum * (s[j] / N1);
      }
    } else {
      for (int64_t j = 0; j < w; ++j) {
        m[j] = running_mean[c0 + j];
        rs[j] = inv_std(running_var[c0 + j], eps);
      }
    }
    for (int64_t r = 0; r < N; ++r) {
      const T* xr = x + r * C + c0;
      T* yr = y + r * C + c0;
      for (int64_t j = 0; j < w; ++j) {
        T v = (xr[j] - m[j]) * rs[j];
        if (gamma) v = v * gamma[c0 + j];
        if (beta) v = v + beta[c0 + j];
        yr[j] = v;
      }
    }
  });
}

template <typename T>
void backward_impl(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* mean, const T* rstd,
                   const T* gamma, int64_t N, int64_t C, bool training) {
  const T Nf = static_cast<T>(N);
  const bool need_sums = training || dgamma || dbeta;
  const int64_t grain = std::max<int64_t>(1, kGrainElems / std::max<int64_t>(N, 1));
  parallel_for(C, grain, [&](int64_t c0, int64_t c1) {
    const int64_t w = c1 - c0;
    const T* m = mean + c0;
    const T* rs = rstd + c0;
    // b[0 .. w): sum of dy;  b[w .. 2w): sum of dy * xhat
    std::vector<T> mem, b(static_cast<size_t>(2 * w));
    if (need_sums) {
      batch_sums(b.data(), N, 2 * w, mem, [&](T* acc, int64_t r) {
        const T* xr = x + r * C + c0;
        const T* gr = dy + r * C + c0;
        for (int64_t j = 0; j < w; ++j) {
          const T xhat = (xr[j] - m[j]) * rs[j];
          acc[j] += gr[j];
          acc[w + j] = std::fma(gr[j], xhat, acc[w + j]);
        }
      });
      if (dbeta) std::copy(b.begin(), b.begin() + w, dbeta + c0);
      if (dgamma) std::copy(b.begin() + w, b.end(), dgamma + c0);
    }
    if (!dx) return;
    // per column: s = rstd * gamma, and for batch statistics the two means
    std::vector<T> s(static_cast<size_t>(w)), a1(static_cast<size_t>(w)), a2(static_cast<size_t>(w));
    for (int64_t j = 0; j < w; ++j) {
      s[j] = gamma ? rs[j] * gamma[c0 + j] : rs[j];
      if (training) a1[j] = b[j] / Nf, a2[j] = b[w + j] / Nf;
    }
    for (int64_t r = 0; r < N; ++r) {
      const T* xr = x + r * C + c0;
      const T* gr = dy + r * C + c0;
      T* dr = dx + r * C + c0;
      if (training) {
        for (int64_t j = 0; j < w; ++j) {
          const T xhat = (xr[j] - m[j]) * rs[j];
          dr[j] = ((gr[j] - a1[j]) - xhat * a2[j]) * s[j];
        }
      } else {
        for (int64_t j = 0; j < w; ++j) dr[j] = gr[j] * s[j];
      }
    }
  });
}

}  // namespace
}  // namespace lockstep::bn
