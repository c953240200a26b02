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

// Anonymous namespace and no standard containers: each build keeps its own copies, so the
// linker never shares the AVX2 code with the portable path (tests/isa_symbols.sh).
namespace lockstep::attn {
namespace {

template <typename T>
class Buf {
 public:
  explicit Buf(int64_t n) : p_(new T[static_cast<size_t>(n > 0 ? n : 1)]()) {}
  ~Buf() { delete[] p_; }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  T* get() { return p_; }

 private:
  T* p_;
};

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

// One query row, deterministic: e (L) receives the probabilities.
template <typename T>
void row_forward(const Exec& ex, T* o, T* e, const T* qr, const T* kt, const T* vh, int64_t L, int64_t Tk, int64_t D,
                 T scale) {
  scores_t(e, qr, kt, L, Tk, D, Tk);
  for (int64_t j = 0; j < L; ++j) e[j] = e[j] * scale;
  const T m = e[argmax_serial_cpu(e, L)];
  for (int64_t j = 0; j < L; ++j) e[j] = e[j] - m;
  unary_serial_cpu(ex, UnaryOp::exp, e, e, L);
  const T l = sum_serial_cpu(ex, e, L);
  for (int64_t j = 0; j < L; ++j) e[j] = e[j] / l;
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
    const T m = e[argmax_serial_cpu(e, n)];
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
    Buf<T> e(Tk), acc(D), kt(D * Tk);
    for (int64_t task = t0; task < t1; ++task) {
      const int64_t bh = task / qblocks, b = bh / H;
      const int64_t i0 = (task % qblocks) * kQueryBlock, i1 = std::min(Tq, i0 + kQueryBlock);
      const int64_t len = kv_len ? kv_len[b] : Tk;
      const T* kh = k + bh * Tk * D;
      const T* vh = v + bh * Tk * D;
      // Only the keys some row of this block sees (a row sees a prefix, growing with t).
      const int64_t seen = std::max(attention_visible(len, Tq, i1 - 1, causal), int64_t{0});
      transpose_rows(kt.get(), kh, std::min({seen, len, Tk}), Tk, D);
      for (int64_t t = i0; t < i1; ++t) {
        const int64_t r = bh * Tq + t;
        const int64_t L = attention_visible(len, Tq, t, causal);
        T* o = out + r * D;
        T* pr = p ? p + r * Tk : nullptr;
        if (L == 0)
          std::fill(o, o + D, T(0));
        else if (split)
          row_forward_split(ex, o, e.get(), acc.get(), q + r * D, kt.get(), vh, L, Tk, D, scale, S);
        else
          row_forward(ex, o, e.get(), q + r * D, kt.get(), vh, L, Tk, D, scale);
        if (pr) {
          std::copy(e.get(), e.get() + L, pr);
          std::fill(pr + L, pr + Tk, T(0));
        }
      }
    }
  });
}

template <typename T>
void backward_impl(const Exec& ex, T* dq, T* dk, T* dv, const T* g, const T* q, const T* k, const T* v, const T* p,
                   const int64_t* kv_len, int64_t B, int64_t H, int64_t Tq, int64_t Tk, int64_t D, bool causal,
                   T scale) {
  parallel_for(B * H, 1, [&](int64_t h0, int64_t h1) {
    Buf<T> ds(Tq * Tk), dp(Tk), tmp(Tk), vt(D * Tk);
    for (int64_t bh = h0; bh < h1; ++bh) {
      const int64_t b = bh / H, len = kv_len ? kv_len[b] : Tk;
      const T* kh = k + bh * Tk * D;
      const T* vh = v + bh * Tk * D;
      const T* qh = q + bh * Tq * D;
      const T* gh = g + bh * Tq * D;
      const T* ph = p + bh * Tq * Tk;
      transpose_rows(vt.get(), vh, std::min(len, Tk), Tk, D);
      // by query rows: dp, c, ds, dq
      for (int64_t i = 0; i < Tq; ++i) {
        const int64_t L = attention_visible(len, Tq, i, causal);
        const T* pi = ph + i * Tk;
        T* dsi = ds.get() + i * Tk;
        scores_t(dp.get(), gh + i * D, vt.get(), L, Tk, D, Tk);  // dp[j] = the chain over d of g[i][d] v[j][d]
        for (int64_t j = 0; j < L; ++j) tmp.get()[j] = pi[j] * dp.get()[j];
        const T c = sum_serial_cpu(ex, tmp.get(), L);
        for (int64_t j = 0; j < L; ++j) dsi[j] = (pi[j] * (dp.get()[j] - c)) * scale;
        if (dq) weighted_rows(dq + (bh * Tq + i) * D, dsi, kh, L, D);
      }
      // by key rows: dk, dv over the queries that see key j, in increasing i; they are a
      // suffix [i0, Tq) of the queries (a query sees a prefix of the keys, growing with i)
      int64_t i0 = 0;
      for (int64_t j = 0; j < Tk; ++j) {
        while (i0 < Tq && j >= attention_visible(len, Tq, i0, causal)) ++i0;
        if (dk) chain_rows(dk + (bh * Tk + j) * D, ds.get() + j, Tk, qh, i0, Tq, D);
        if (dv) chain_rows(dv + (bh * Tk + j) * D, ph + j, Tk, gh, i0, Tq, D);
      }
    }
  });
}

}  // namespace
}  // namespace lockstep::attn
