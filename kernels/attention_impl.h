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

constexpr int64_t kGrainFlops = 1 << 15;

template <typename T>
T dot_chain(const T* a, const T* b, int64_t D) {
  T acc = T(0);
  for (int64_t d = 0; d < D; ++d) acc = std::fma(a[d], b[d], acc);
  return acc;
}

// o[d] = fma chain over j < L of w[j] * rows[j][d] (rows D apart), from +0.
template <typename T>
void weighted_rows(T* o, const T* w, const T* rows, int64_t L, int64_t D) {
  for (int64_t d = 0; d < D; ++d) o[d] = T(0);
  for (int64_t j = 0; j < L; ++j) {
    const T wj = w[j];
    const T* r = rows + j * D;
    for (int64_t d = 0; d < D; ++d) o[d] = std::fma(wj, r[d], o[d]);
  }
}

// One query row, deterministic: e (L) receives the probabilities.
template <typename T>
void row_forward(const Exec& ex, T* o, T* e, const T* qr, const T* kh, const T* vh, int64_t L, int64_t D, T scale) {
  for (int64_t j = 0; j < L; ++j) e[j] = dot_chain(qr, kh + j * D, D) * scale;
  const T m = e[argmax_serial_cpu(e, L)];
  for (int64_t j = 0; j < L; ++j) e[j] = e[j] - m;
  unary_serial_cpu(ex, UnaryOp::exp, e, e, L);
  const T l = sum_serial_cpu(ex, e, L);
  for (int64_t j = 0; j < L; ++j) e[j] = e[j] / l;
  weighted_rows(o, e, vh, L, D);
}

// Fast mode: S parts, each an online-softmax partial, merged in order with rescaling.
template <typename T>
void row_forward_split(const Exec& ex, T* o, T* e, T* acc, const T* qr, const T* kh, const T* vh, int64_t L,
                       int64_t D, T scale, int64_t S) {
  S = std::min(S, L);
  T M = T(0), l = T(0);
  for (int64_t d = 0; d < D; ++d) o[d] = T(0);
  for (int64_t s = 0; s < S; ++s) {
    const int64_t j0 = L * s / S, j1 = L * (s + 1) / S, n = j1 - j0;
    for (int64_t j = 0; j < n; ++j) e[j] = dot_chain(qr, kh + (j0 + j) * D, D) * scale;
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

template <typename T>
void forward_impl(const Exec& ex, T* out, T* p, const T* q, const T* k, const T* v, const int64_t* kv_len, int64_t B,
                  int64_t H, int64_t Tq, int64_t Tk, int64_t D, bool causal, T scale) {
  const int64_t rows = B * H * Tq;
  const bool split = ex.fast() && !p;
  const int64_t S = std::max<int64_t>(1, 64 / std::max<int64_t>(1, B * H));
  parallel_for(rows, std::max<int64_t>(1, kGrainFlops / std::max<int64_t>(1, Tk * D)), [&](int64_t r0, int64_t r1) {
    Buf<T> e(Tk), acc(D);
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t bh = r / Tq, t = r % Tq, b = bh / H;
      const int64_t len = kv_len ? kv_len[b] : Tk;
      const int64_t L = attention_visible(len, Tq, t, causal);
      T* o = out + r * D;
      T* pr = p ? p + r * Tk : nullptr;
      const T* kh = k + bh * Tk * D;
      const T* vh = v + bh * Tk * D;
      if (L == 0)
        std::fill(o, o + D, T(0));
      else if (split)
        row_forward_split(ex, o, e.get(), acc.get(), q + r * D, kh, vh, L, D, scale, S);
      else
        row_forward(ex, o, e.get(), q + r * D, kh, vh, L, D, scale);
      if (pr) {
        std::copy(e.get(), e.get() + L, pr);
        std::fill(pr + L, pr + Tk, T(0));
      }
    }
  });
}

template <typename T>
void backward_impl(const Exec& ex, T* dq, T* dk, T* dv, const T* g, const T* q, const T* k, const T* v, const T* p,
                   const int64_t* kv_len, int64_t B, int64_t H, int64_t Tq, int64_t Tk, int64_t D, bool causal,
                   T scale) {
  parallel_for(B * H, 1, [&](int64_t h0, int64_t h1) {
    Buf<T> ds(Tq * Tk), dp(Tk), tmp(Tk);
    for (int64_t bh = h0; bh < h1; ++bh) {
      const int64_t b = bh / H, len = kv_len ? kv_len[b] : Tk;
      const T* kh = k + bh * Tk * D;
      const T* vh = v + bh * Tk * D;
      const T* qh = q + bh * Tq * D;
      const T* gh = g + bh * Tq * D;
      const T* ph = p + bh * Tq * Tk;
      // by query rows: dp, c, ds, dq
      for (int64_t i = 0; i < Tq; ++i) {
        const int64_t L = attention_visible(len, Tq, i, causal);
        const T* pi = ph + i * Tk;
        T* dsi = ds.get() + i * Tk;
        for (int64_t j = 0; j < L; ++j) dp.get()[j] = dot_chain(gh + i * D, vh + j * D, D);
        for (int64_t j = 0; j < L; ++j) tmp.get()[j] = pi[j] * dp.get()[j];
        const T c = sum_serial_cpu(ex, tmp.get(), L);
        for (int64_t j = 0; j < L; ++j) dsi[j] = (pi[j] * (dp.get()[j] - c)) * scale;
        if (dq) weighted_rows(dq + (bh * Tq + i) * D, dsi, kh, L, D);
      }
      // by key rows: dk, dv over the queries that see key j, in increasing i
      for (int64_t j = 0; j < Tk; ++j) {
        T* dkj = dk ? dk + (bh * Tk + j) * D : nullptr;
        T* dvj = dv ? dv + (bh * Tk + j) * D : nullptr;
        if (dkj) std::fill(dkj, dkj + D, T(0));
        if (dvj) std::fill(dvj, dvj + D, T(0));
        for (int64_t i = 0; i < Tq; ++i) {
          if (j >= attention_visible(len, Tq, i, causal)) continue;
          const T w = ds.get()[i * Tk + j], pw = ph[i * Tk + j];
          const T* qi = qh + i * D;
          const T* gi = gh + i * D;
          if (dkj)
            for (int64_t d = 0; d < D; ++d) dkj[d] = std::fma(w, qi[d], dkj[d]);
          if (dvj)
            for (int64_t d = 0; d < D; ++d) dvj[d] = std::fma(pw, gi[d], dvj[d]);
        }
      }
    }
  });
}

}  // namespace
}  // namespace lockstep::attn
