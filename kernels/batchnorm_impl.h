// The CPU BatchNorm1d loops of kernels/batchnorm.h as templates, compiled twice: by
// batchnorm_cpu.cpp (portable) and by batchnorm_avx2.cpp (-mavx2 -mfma, used when the
// kernel's Exec says ex.avx2()). Threads split the C features; a task owns a range of whole columns and
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
#include <type_traits>

#include "base/parallel.h"
#include "kernels/batchnorm.h"
#include "kernels/reduce_order.h"
#include "kernels/scratch_impl.h"

// An anonymous namespace: each including file gets its own copies, so the AVX2 build and
// the portable build are never merged by the linker. For the same reason no standard
// container is instantiated here: std::vector<float>'s out-of-line members would be weak
// symbols shared with every other file (tests/isa_symbols.sh).
namespace lockstep::bn {
namespace {

constexpr int64_t kGrainElems = 16384;  // elements of x per task, at least

using lockstep::Scratch;  // kernels/scratch_impl.h (bn::Scratch for batchnorm2d_impl.h and the callers)

// out[0 .. width) = batch-order sums over rows 0 .. N-1, where add_row(acc, r) adds row r's
// terms into the chunk partials acc[0 .. width). mem is scratch for the tree. With Acc wider
// than T (BatchNorm2d: double for float data) each chunk partial is held in Acc and rounded
// to T once when its chunk ends; then width <= kMaxWideWidth.
inline constexpr int64_t kMaxWideWidth = 16;
template <typename T, typename Acc = T, typename AddRow>
void batch_sums(T* out, int64_t N, int64_t width, Scratch<T>& mem, const AddRow& add_row) {
  if (N <= 0) {
    std::fill(out, out + width, T(0));
    return;
  }
  const int64_t nchunks = (N + kBatchChunk - 1) / kBatchChunk;
  int64_t levels = 0;
  while ((int64_t(1) << levels) < nchunks) ++levels;
  mem.resize((levels + 1) * width);
  TreeStack<T> stack(mem.data(), width);
  for (int64_t r0 = 0; r0 < N; r0 += kBatchChunk) {
    T* part = stack.next();
    if constexpr (std::is_same_v<Acc, T>) {
      std::fill(part, part + width, T(0));
      for (int64_t r = r0; r < std::min(N, r0 + kBatchChunk); ++r) add_row(part, r);
    } else {
      assert(width <= kMaxWideWidth);
      Acc acc[kMaxWideWidth];
      std::fill(acc, acc + width, Acc(0));
      for (int64_t r = r0; r < std::min(N, r0 + kBatchChunk); ++r) add_row(acc, r);
      for (int64_t j = 0; j < width; ++j) part[j] = static_cast<T>(acc[j]);
    }
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

// ---- the stages, on columns [c0, c0 + w) of an N x C batch ----
// The fused kernels below and the data-parallel stage kernels (batchnorm_cpu.cpp) are both
// built from these, so the two compute the same expressions by construction.

// s[0 .. w) = batch-order sums of x.
template <typename T>
void column_sums(T* s, const T* x, int64_t N, int64_t C, int64_t c0, int64_t w, Scratch<T>& mem) {
  batch_sums(s, N, w, mem, [&](T* acc, int64_t r) {
    const T* xr = x + r * C + c0;
    for (int64_t j = 0; j < w; ++j) acc[j] += xr[j];
  });
}

// s[0 .. w) = batch-order sums of fma(d, d, acc), d = x - m (m: the w means).
template <typename T>
void sqdev_sums(T* s, const T* x, const T* m, int64_t N, int64_t C, int64_t c0, int64_t w, Scratch<T>& mem) {
  batch_sums(s, N, w, mem, [&](T* acc, int64_t r) {
    const T* xr = x + r * C + c0;
    for (int64_t j = 0; j < w; ++j) {
      const T d = xr[j] - m[j];
      acc[j] = std::fma(d, d, acc[j]);
    }
  });
}

// b[0 .. w) = batch-order sums of dy;  b[w .. 2w) = of dy * xhat (one fma a term).
template <typename T>
void backward_sums(T* b, const T* dy, const T* x, const T* m, const T* rs, int64_t N, int64_t C, int64_t c0,
                   int64_t w, Scratch<T>& mem) {
  batch_sums(b, N, 2 * w, mem, [&](T* acc, int64_t r) {
    const T* xr = x + r * C + c0;
    const T* gr = dy + r * C + c0;
    for (int64_t j = 0; j < w; ++j) {
      const T xhat = (xr[j] - m[j]) * rs[j];
      acc[j] += gr[j];
      acc[w + j] = std::fma(gr[j], xhat, acc[w + j]);
    }
  });
}

// One row of w outputs: y = xhat * gamma + beta (gamma, beta may be null).
template <typename T>
void normalize_row(T* yr, const T* xr, const T* m, const T* rs, const T* gamma, const T* beta, int64_t w) {
  for (int64_t j = 0; j < w; ++j) {
    T v = (xr[j] - m[j]) * rs[j];
    if (gamma) v = v * gamma[j];
    if (beta) v = v + beta[j];
    yr[j] = v;
  }
}

// One row of w outputs with batch statistics: dx = ((dy - a1) - xhat * a2) * s, where
// s = rstd * gamma, a1 = sum(dy) / N, a2 = sum(dy * xhat) / N.
template <typename T>
void dx_row(T* dr, const T* gr, const T* xr, const T* m, const T* rs, const T* a1, const T* a2, const T* s,
            int64_t w) {
  for (int64_t j = 0; j < w; ++j) {
    const T xhat = (xr[j] - m[j]) * rs[j];
    dr[j] = ((gr[j] - a1[j]) - xhat * a2[j]) * s[j];
  }
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
      Scratch<T> mem, s(w);
      column_sums(s.data(), x, N, C, c0, w, mem);
      for (int64_t j = 0; j < w; ++j) m[j] = s[j] / Nf;
      // second pass: squared deviations from the mean just computed
      sqdev_sums(s.data(), x, m, N, C, c0, w, mem);
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
    const T* g = gamma ? gamma + c0 : nullptr;
    const T* be = beta ? beta + c0 : nullptr;
    for (int64_t r = 0; r < N; ++r) normalize_row(y + r * C + c0, x + r * C + c0, m, rs, g, be, w);
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
    Scratch<T> mem, b(2 * w);
    if (need_sums) {
      backward_sums(b.data(), dy, x, m, rs, N, C, c0, w, mem);
      if (dbeta) std::copy(b.data(), b.data() + w, dbeta + c0);
      if (dgamma) std::copy(b.data() + w, b.data() + 2 * w, dgamma + c0);
    }
    if (!dx) return;
    // per column: s = rstd * gamma, and for batch statistics the two means
    Scratch<T> s(w), a1(w), a2(w);
    for (int64_t j = 0; j < w; ++j) {
      s[j] = gamma ? rs[j] * gamma[c0 + j] : rs[j];
      if (training) a1[j] = b[j] / Nf, a2[j] = b[w + j] / Nf;
    }
    for (int64_t r = 0; r < N; ++r) {
      const T* xr = x + r * C + c0;
      const T* gr = dy + r * C + c0;
      T* dr = dx + r * C + c0;
      if (training) {
        dx_row(dr, gr, xr, m, rs, a1.data(), a2.data(), s.data(), w);
      } else {
        for (int64_t j = 0; j < w; ++j) dr[j] = gr[j] * s[j];
      }
    }
  });
}

}  // namespace
}  // namespace lockstep::bn
