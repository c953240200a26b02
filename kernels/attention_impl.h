// The CPU attention loops of kernels/attention.h as templates, compiled twice: by
// attention_cpu.cpp (portable) and attention_avx2.cpp (-mavx2 -mfma, when ex.avx2()). The
// loops over d in the output and gradient chains run over independent outputs, so
// vectorising them changes no rounding; each fma chain keeps its order. Row sums and exp go
// through sum_serial_cpu / unary_serial_cpu with the caller's Exec (their own AVX2 paths,
// the same bits).
#pragma once
#include <algorithm>
#include <cmath>

#include "base/parallel.h"
#include "kernels/attention.h"
#include "kernels/elementwise.h"
#include "kernels/reduce.h"
#include "kernels/scratch_impl.h"

// Anonymous namespace and no standard containers: each build keeps its own copies, so the
// linker never shares the AVX2 code with the portable path (tests/isa_symbols.sh).
namespace lockstep::attn {
namespace {

// acc[u] (u < V) = fma chain over t in [t0, t1), in increasing t, of w[t * ws] * x[t * D + u],
// from +0: V outputs advance together, each its own chain.
template <int V, typename T>
inline void chain_block(T* __restrict__ o, const T* __restrict__ w, int64_t ws, const T* __restrict__ x, int64_t t0,
                        int64_t t1, int64_t D) {
  T acc[V] = {};
  for (int64_t t = t0; t < t1; ++t) {
    const T wt = w[t * ws];
    const T* xr = x + t * D;
    for (int u = 0; u < V; ++u) acc[u] = std::fma(wt, xr[u], acc[u]);
  }
  for (int u = 0; u < V; ++u) o[u] = acc[u];
}

// o[d] = fma chain over t in [t0, t1), in increasing t, of w[t * ws] * x[t * D + d], from
// +0, for every d < D. 32 outputs advance together where D allows (four independent
// vector chains: one chain alone waits on the fma latency), then 8, then one at a time;
// each output keeps the plain loop's order.
template <typename T>
void chain_rows(T* __restrict__ o, const T* __restrict__ w, int64_t ws, const T* __restrict__ x, int64_t t0,
                int64_t t1, int64_t D) {
  int64_t d0 = 0;
  for (; d0 + 32 <= D; d0 += 32) chain_block<32>(o + d0, w, ws, x + d0, t0, t1, D);
  for (; d0 + 8 <= D; d0 += 8) chain_block<8>(o + d0, w, ws, x + d0, t0, t1, D);
  for (; d0 < D; ++d0) {
    T acc = T(0);
    for (int64_t t = t0; t < t1; ++t) acc = std::fma(w[t * ws], x[t * D + d0], acc);
    o[d0] = acc;
  }
}

// o[d] = fma chain over j < L of w[j] * rows[j][d] (rows D apart), from +0.
template <typename T>
void weighted_rows(T* o, const T* w, const T* rows, int64_t L, int64_t D) {
  chain_rows(o, w, 1, rows, 0, L, D);
}

// Two outputs over the same rows x at once: o1[d] = the chain over t in [a1, b1) of
// w1[t * ws] * x[t * D + d], o2[d] the same over [a2, b2) with w2; every chain in
// increasing t from +0, exactly as chain_rows gives each alone. Where the ranges overlap
// the two advance together: eight vector chains instead of four (the fma latency).
template <int V, typename T>
inline void chain_block2(T* __restrict__ o1, const T* __restrict__ w1, int64_t a1, int64_t b1, T* __restrict__ o2,
                         const T* __restrict__ w2, int64_t a2, int64_t b2, int64_t ws, const T* __restrict__ x,
                         int64_t D) {
  T c1[V] = {}, c2[V] = {};
  const int64_t lo = std::max(a1, a2), hi = std::min(b1, b2);
  auto one = [&](T* c, const T* w, int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const T wt = w[t * ws];
      const T* xr = x + t * D;
      for (int u = 0; u < V; ++u) c[u] = std::fma(wt, xr[u], c[u]);
    }
  };
  one(c1, w1, a1, std::min(b1, lo));  // each alone before the common range
  one(c2, w2, a2, std::min(b2, lo));
  for (int64_t t = lo; t < hi; ++t) {
    const T u1 = w1[t * ws], u2 = w2[t * ws];
    const T* xr = x + t * D;
    for (int u = 0; u < V; ++u) {
      c1[u] = std::fma(u1, xr[u], c1[u]);
      c2[u] = std::fma(u2, xr[u], c2[u]);
    }
  }
  one(c1, w1, std::max(hi, a1), b1);  // and alone after it
  one(c2, w2, std::max(hi, a2), b2);
  for (int u = 0; u < V; ++u) o1[u] = c1[u], o2[u] = c2[u];
}

template <typename T>
void chain_rows2(T* o1, const T* w1, int64_t a1, int64_t b1, T* o2, const T* w2, int64_t a2, int64_t b2, int64_t ws,
                 const T* x, int64_t D) {
  int64_t d0 = 0;
  for (; d0 + 32 <= D; d0 += 32) chain_block2<32>(o1 + d0, w1, a1, b1, o2 + d0, w2, a2, b2, ws, x + d0, D);
  for (; d0 + 8 <= D; d0 += 8) chain_block2<8>(o1 + d0, w1, a1, b1, o2 + d0, w2, a2, b2, ws, x + d0, D);
  for (; d0 < D; ++d0) {
    T c1 = T(0), c2 = T(0);
    for (int64_t t = a1; t < b1; ++t) c1 = std::fma(w1[t * ws], x[t * D + d0], c1);
    for (int64_t t = a2; t < b2; ++t) c2 = std::fma(w2[t * ws], x[t * D + d0], c2);
    o1[d0] = c1, o2[d0] = c2;
  }
}

// s[j] = fma chain over d of q[d] * kt[d][j] for j < L, kt the head's keys transposed
// (D x Tk): every key's chain runs in increasing d from +0 (acc = fma(q[d], k[j][d], acc)).
// Blocks of 64, 32, then 8 keys keep their chains in registers through the d loop (64 keys:
// eight independent vector chains, enough to hide the fma latency); the last few keys run
// the same chains through memory.
template <int J, typename T>
inline void scores_block(T* __restrict__ s, const T* __restrict__ qr, const T* __restrict__ kt, int64_t Tk,
                         int64_t D) {
  T acc[J] = {};
  for (int64_t d = 0; d < D; ++d) {
    const T qd = qr[d];
    const T* kd = kt + d * Tk;
    for (int u = 0; u < J; ++u) acc[u] = std::fma(qd, kd[u], acc[u]);
  }
  for (int u = 0; u < J; ++u) s[u] = acc[u];
}

// avail: columns of kt readable from kt (Tk, or less for a view that starts at a column).
template <typename T>
void scores_t(T* __restrict__ s, const T* __restrict__ qr, const T* __restrict__ kt, int64_t L, int64_t Tk,
              int64_t D, int64_t avail) {
  int64_t j0 = 0;
  for (; j0 + 64 <= L; j0 += 64) scores_block<64>(s + j0, qr, kt + j0, Tk, D);
  for (; j0 + 32 <= L; j0 += 32) scores_block<32>(s + j0, qr, kt + j0, Tk, D);
  // Fewer than 32 keys left: one block of 32 whose extra lanes read columns past L (stale
  // but readable) and are dropped; lanes never mix, so the kept ones are the same chains.
  if (j0 < L && j0 + 32 <= avail) {
    T tmp[32];
    scores_block<32>(tmp, qr, kt + j0, Tk, D);
    std::copy(tmp, tmp + (L - j0), s + j0);
    return;
  }
  for (; j0 + 8 <= L; j0 += 8) scores_block<8>(s + j0, qr, kt + j0, Tk, D);
  for (int64_t j = j0; j < L; ++j) s[j] = T(0);
  for (int64_t d = 0; d < D; ++d) {
    const T qd = qr[d];
    const T* kd = kt + d * Tk;
    for (int64_t j = j0; j < L; ++j) s[j] = std::fma(qd, kd[j], s[j]);
  }
}

// kt (D x Tk) = the first L rows of kh (L x D) transposed.
// Tiles of 8 keys: the reads stay within 8 rows and every write is a run of 8 contiguous
// floats (writing one column at a time, stride Tk, was 80% of the forward's own time).
template <typename T>
void transpose_rows(T* kt, const T* kh, int64_t L, int64_t Tk, int64_t D) {
  constexpr int64_t J = 8;
  int64_t j0 = 0;
  for (; j0 + J <= L; j0 += J)
    for (int64_t d = 0; d < D; ++d)
      for (int64_t u = 0; u < J; ++u) kt[d * Tk + j0 + u] = kh[(j0 + u) * D + d];
  for (int64_t j = j0; j < L; ++j)
    for (int64_t d = 0; d < D; ++d) kt[d * Tk + j] = kh[j * D + d];
}

// The largest of e[0..n), for the softmax's shift: 8 running maxima (vector lanes), then
// combined. Equal to e[argmax] except that a NaN may be skipped and a zero's sign may differ;
// neither changes a probability: a NaN score makes its exp NaN and so the sum and every
// probability the canonical NaN either way, and e - (+-0) differs only for e = +-0, whose
// exp is 1 either way.
template <typename T>
T row_max(const T* e, int64_t n) {
  constexpr int W = 8;
  T m[W];
  for (int l = 0; l < W; ++l) m[l] = e[0];
  int64_t j = 0;
  for (; j + W <= n; j += W)
    for (int l = 0; l < W; ++l) m[l] = e[j + l] > m[l] ? e[j + l] : m[l];
  for (; j < n; ++j) m[0] = e[j] > m[0] ? e[j] : m[0];
  T r = m[0];
  for (int l = 1; l < W; ++l) r = m[l] > r ? m[l] : r;
  return r;
}

// One query row's probabilities into e (L), deterministic.
template <typename T>
void row_probs(const Exec& ex, T* e, const T* qr, const T* kt, int64_t L, int64_t Tk, int64_t D, T scale) {
  scores_t(e, qr, kt, L, Tk, D, Tk);
  for (int64_t j = 0; j < L; ++j) e[j] = e[j] * scale;
  const T m = row_max(e, L);
  for (int64_t j = 0; j < L; ++j) e[j] = e[j] - m;
  unary_serial_cpu(ex, UnaryOp::exp, e, e, L);
  const T l = sum_serial_cpu(ex, e, L);
  for (int64_t j = 0; j < L; ++j) e[j] = e[j] / l;
}

// One query row, deterministic: e (L) receives the probabilities.
template <typename T>
void row_forward(const Exec& ex, T* o, T* e, const T* qr, const T* kt, const T* vh, int64_t L, int64_t Tk, int64_t D,
                 T scale) {
  row_probs(ex, e, qr, kt, L, Tk, D, scale);
  weighted_rows(o, e, vh, L, D);
}

// Fast mode: S parts, each an online-softmax partial, merged in order with rescaling.
template <typename T>
void row_forward_split(const Exec& ex, T* o, T* e, T* acc, const T* qr, const T* kt, const T* vh, int64_t L,
                       int64_t Tk, int64_t D, T scale, int64_t S) {
  S = std::min(S, L);
  T M = T(0), l = T(0);
  for (int64_t d = 0; d < D; ++d) o[d] = T(0);
  for (int64_t s = 0; s < S; ++s) {
    const int64_t j0 = L * s / S, j1 = L * (s + 1) / S, n = j1 - j0;
    scores_t(e, qr, kt + j0, n, Tk, D, Tk - j0);
    for (int64_t j = 0; j < n; ++j) e[j] = e[j] * scale;
    const T m = row_max(e, n);
    for (int64_t j = 0; j < n; ++j) e[j] = e[j] - m;
    unary_serial_cpu(ex, UnaryOp::exp, e, e, n);
    T ls = T(0);
    for (int64_t j = 0; j < n; ++j) ls = ls + e[j];
    weighted_rows(acc, e, vh + j0 * D, n, D);
    if (s == 0) {
      M = m, l = ls;
      for (int64_t d = 0; d < D; ++d) o[d] = acc[d];
      continue;
    }
    const T Mn = std::max(M, m);
    T f_old = M - Mn, f_new = m - Mn;
    unary_serial_cpu(ex, UnaryOp::exp, &f_old, &f_old, 1);
    unary_serial_cpu(ex, UnaryOp::exp, &f_new, &f_new, 1);
    for (int64_t d = 0; d < D; ++d) o[d] = o[d] * f_old + acc[d] * f_new;
    l = l * f_old + ls * f_new;
    M = Mn;
  }
  for (int64_t d = 0; d < D; ++d) o[d] = o[d] / l;
}

constexpr int64_t kQueryBlock = 16;  // query rows per task (a task transposes its head's keys once)
constexpr int64_t kMinFmasPerTask = 1 << 18;  // ~50 us of these chains: more than a hand-off costs

template <typename T>
void forward_impl(const Exec& ex, T* out, T* p, const T* q, const T* k, const T* v, const int64_t* kv_len, int64_t B,
                  int64_t H, int64_t Tq, int64_t Tk, int64_t D, bool causal, T scale) {
  const bool split = ex.fast() && !p;
  const int64_t S = std::max<int64_t>(1, 64 / std::max<int64_t>(1, B * H));
  const int64_t qblocks = (Tq + kQueryBlock - 1) / kQueryBlock;
  // A task's work is about 2 * rows * Tk * D fma; tasks below kMinFmasPerTask go together,
  // so a one-token decoding step (4 heads x 1 row) is not handed to another thread for a
  // few microseconds of work. The partition never enters the bits (rows are independent).
  const int64_t task_fmas = 2 * std::min(Tq, kQueryBlock) * Tk * D;
  parallel_for(B * H * qblocks, std::max<int64_t>(1, kMinFmasPerTask / std::max<int64_t>(1, task_fmas)),
               [&](int64_t t0, int64_t t1) {
    Scratch<T> e(Tk), e2(Tk), acc(D), kt(D * Tk);
    int64_t kt_bh = -1, kt_rows = 0;  // kt holds the first kt_rows keys of head kt_bh
    for (int64_t task = t0; task < t1; ++task) {
      const int64_t bh = task / qblocks, b = bh / H;
      const int64_t i0 = (task % qblocks) * kQueryBlock, i1 = std::min(Tq, i0 + kQueryBlock);
      const int64_t len = kv_len ? kv_len[b] : Tk;
      const T* kh = k + bh * Tk * D;
      const T* vh = v + bh * Tk * D;
      // Only the keys some row of this block sees (a row sees a prefix, growing with t); the
      // next block of the same head adds the keys it sees beyond those already transposed.
      const int64_t seen = std::min({std::max(attention_visible(len, Tq, i1 - 1, causal), int64_t{0}), len, Tk});
      if (bh != kt_bh) kt_bh = bh, kt_rows = 0;
      if (seen > kt_rows) {
        transpose_rows(kt.data() + kt_rows, kh + kt_rows * D, seen - kt_rows, Tk, D);
        kt_rows = seen;
      }
      for (int64_t t = i0; t < i1; ++t) {
        const int64_t r = bh * Tq + t;
        const int64_t L = attention_visible(len, Tq, t, causal);
        T* o = out + r * D;
        T* pr = p ? p + r * Tk : nullptr;
        // Deterministic: rows t and t + 1 together, each its own probabilities and chains.
        const int64_t L2 = t + 1 < i1 ? attention_visible(len, Tq, t + 1, causal) : 0;
        // With p kept, the probabilities are computed in place in p's rows (row_probs writes
        // only [0, L)); the rest of each row is zero.
        T* ea = pr ? pr : e.data();
        if (!split && L > 0 && L2 > 0) {
          T* eb = pr ? pr + Tk : e2.data();
          row_probs(ex, ea, q + r * D, kt.data(), L, Tk, D, scale);
          row_probs(ex, eb, q + (r + 1) * D, kt.data(), L2, Tk, D, scale);
          chain_rows2(o, ea, 0, L, o + D, eb, 0, L2, 1, vh, D);
          if (pr) {
            std::fill(pr + L, pr + Tk, T(0));
            std::fill(pr + Tk + L2, pr + 2 * Tk, T(0));
          }
          ++t;
          continue;
        }
        if (L == 0)
          std::fill(o, o + D, T(0));
        else if (split)
          row_forward_split(ex, o, e.data(), acc.data(), q + r * D, kt.data(), vh, L, Tk, D, scale, S);
        else
          row_forward(ex, o, ea, q + r * D, kt.data(), vh, L, Tk, D, scale);
        if (pr) std::fill(pr + std::max<int64_t>(L, 0), pr + Tk, T(0));
      }
    }
  });
}

template <typename T>
void backward_impl(const Exec& ex, T* dq, T* dk, T* dv, const T* g, const T* q, const T* k, const T* v, const T* p,
                   const int64_t* kv_len, int64_t B, int64_t H, int64_t Tq, int64_t Tk, int64_t D, bool causal,
                   T scale) {
  parallel_for(B * H, 1, [&](int64_t h0, int64_t h1) {
    Scratch<T> ds(Tq * Tk), dp(Tk), tmp(Tk), vt(D * Tk);
    for (int64_t bh = h0; bh < h1; ++bh) {
      const int64_t b = bh / H, len = kv_len ? kv_len[b] : Tk;
      const T* kh = k + bh * Tk * D;
      const T* vh = v + bh * Tk * D;
      const T* qh = q + bh * Tq * D;
      const T* gh = g + bh * Tq * D;
      const T* ph = p + bh * Tq * Tk;
      transpose_rows(vt.data(), vh, std::min(len, Tk), Tk, D);
      // by query rows: dp, c, ds, dq
      for (int64_t i = 0; i < Tq; ++i) {
        const int64_t L = attention_visible(len, Tq, i, causal);
        const T* pi = ph + i * Tk;
        T* dsi = ds.data() + i * Tk;
        scores_t(dp.data(), gh + i * D, vt.data(), L, Tk, D, Tk);  // dp[j] = the chain over d of g[i][d] v[j][d]
        for (int64_t j = 0; j < L; ++j) tmp.data()[j] = pi[j] * dp.data()[j];
        const T c = sum_serial_cpu(ex, tmp.data(), L);
        for (int64_t j = 0; j < L; ++j) dsi[j] = (pi[j] * (dp.data()[j] - c)) * scale;
      }
      // dq by pairs of query rows (each its own chain over its keys)
      for (int64_t i = 0; dq && i < Tq; i += 2) {
        const int64_t L = attention_visible(len, Tq, i, causal);
        T* dqi = dq + (bh * Tq + i) * D;
        if (i + 1 == Tq) {
          weighted_rows(dqi, ds.data() + i * Tk, kh, L, D);
          break;
        }
        const int64_t L2 = attention_visible(len, Tq, i + 1, causal);
        chain_rows2(dqi, ds.data() + i * Tk, 0, L, dqi + D, ds.data() + (i + 1) * Tk, 0, L2, 1, kh, D);
      }
      // by key rows: dk, dv over the queries that see key j, in increasing i; they are a
      // suffix [first(j), Tq) of the queries (a query sees a prefix of the keys, growing
      // with i). Keys go in pairs (j, j + 1), each its own chain.
      auto first = [&](int64_t j, int64_t from) {
        while (from < Tq && j >= attention_visible(len, Tq, from, causal)) ++from;
        return from;
      };
      int64_t i0 = 0;
      for (int64_t j = 0; j < Tk; j += 2) {
        i0 = first(j, i0);
        if (j + 1 == Tk) {
          if (dk) chain_rows(dk + (bh * Tk + j) * D, ds.data() + j, Tk, qh, i0, Tq, D);
          if (dv) chain_rows(dv + (bh * Tk + j) * D, ph + j, Tk, gh, i0, Tq, D);
          break;
        }
        const int64_t i1 = first(j + 1, i0);
        T* dkj = dk ? dk + (bh * Tk + j) * D : nullptr;
        T* dvj = dv ? dv + (bh * Tk + j) * D : nullptr;
        if (dk) chain_rows2(dkj, ds.data() + j, i0, Tq, dkj + D, ds.data() + j + 1, i1, Tq, Tk, qh, D);
        if (dv) chain_rows2(dvj, ph + j, i0, Tq, dvj + D, ph + j + 1, i1, Tq, Tk, gh, D);
      }
    }
  });
}

}  // namespace
}  // namespace lockstep::attn
