// Scaled dot-product attention over heads, forward and backward, and the same forward over
// a KV cache. Row-major, contiguous, T = float or double:
//   q: B x H x Tq x D     k, v: B x H x Tk x D     out: B x H x Tq x D
//   p (probabilities, written by the forward when not null, read by the backward):
//     B x H x Tq x Tk, zero where a key is not visible.
// kv_len: B valid key counts on the HOST (null: Tk for every row); keys [kv_len[b], Tk) of
// row b are ignored (a cache's unused capacity). Query t of row b sits at position
// pos = kv_len[b] - Tq + t (the queries are the row's last Tq positions: Tq == Tk gives
// pos = t, a one-token decoding step gives pos = kv_len[b] - 1), and sees the keys
// j < kv_len[b], and with causal also j <= pos: L = the number of keys it sees. A query
// that sees no key (causal with pos < 0, or kv_len[b] == 0) gives zeros.
//
// Forward, one query row at a time (deterministic mode; every chain below starts at +0):
//   s[j]  = (fma chain over d = 0 .. D-1 of q[d] * k[j][d]) * scale,     j < L
//   m     = max s (first NaN wins);  e[j] = exp(s[j] - m)  (ls_expf / ls_exp)
//   l     = sum of e[0 .. L) in the contiguous order (reduce_order.h; sum_serial_cpu)
//   p[j]  = e[j] / l
//   out[d] = fma chain over the keys j = 0 .. L-1 of p[j] * v[j][d]
// Backward (g = dOut), per head, from the saved p:
//   dp[i][j] = fma chain over d of g[i][d] * v[j][d]                        (j < L_i)
//   c[i]     = sum over j < L_i of (p[i][j] * dp[i][j]) in the contiguous order
//   ds[i][j] = (p[i][j] * (dp[i][j] - c[i])) * scale
//   dq[i][d] = fma chain over the keys j = 0 .. L_i - 1 of ds[i][j] * k[j][d]
//   dk[j][d] = fma chain over the queries i = 0 .. Tq-1 that see key j, in increasing i, of
//              ds[i][j] * q[i][d]
//   dv[j][d] = the same chain of p[i][j] * g[i][d]
// So every sum runs over the keys (or queries) of one (b, h) in increasing order: the key
// order and the query order are functions of the positions only, never of the batch size,
// the thread count, the SIMD level or the device. A query row's output depends on its own
// q, its row's keys and values and its position alone, with no split of the keys at all
// (the split size is the whole row, a constant): a prompt of T tokens processed at once
// gives the same bits as T one-token steps over a KV cache, and a row gives the same bits
// in a batch of any size and mix of lengths (tests/test_transformer_ops.cpp).
//
// Work split: CPU: forward tasks are (head, block of 16 query rows), each transposing its
// head's keys once so that the score chains of many keys advance together (vectorised over
// keys, each key's chain still in increasing d); backward tasks own whole heads, computing
// ds and dq by query rows, then dk and dv by key rows. AVX2 builds of the same loops
// (attention_avx2.cpp, same bits: std::fma becomes one instruction). CUDA (attention_cuda.cu): one warp per query row; lane l computes the
// scores of keys l, l + 32, ... (its own fma chains over d), the max and the contiguous
// sum (lane l holds the contiguous order's lane l) are warp operations, and lane l then
// runs the output chains of dims l, l + 32, ...; backward: one warp per query row for dp,
// c, ds and dq, then one warp per key row for dk and dv.
// Fast mode (CPU forward without p, i.e. inference): the keys of a row are split into
// S = max(1, 64 / (B * H)) parts (a split chosen from the batch, as split-KV decoding
// kernels do), each part an online-softmax partial (its max, sum and output chain), the
// parts merged in order with rescaling: the bits then change with the batch size (lab
// attention-split). Within 1e-5 relative of deterministic mode (tests).
#pragma once
#include <cstdint>

#include "base/exec.h"

namespace lockstep {

template <typename T>
void attention_forward_cpu(const Exec& ex, T* out, T* p, const T* q, const T* k, const T* v, const int64_t* kv_len,
                           int64_t B, int64_t H, int64_t Tq, int64_t Tk, int64_t D, bool causal, T scale);
// dq: B x H x Tq x D; dk, dv: B x H x Tk x D (rows >= kv_len[b] written 0); any may be null.
template <typename T>
void attention_backward_cpu(const Exec& ex, T* dq, T* dk, T* dv, const T* g, const T* q, const T* k, const T* v,
                            const T* p, const int64_t* kv_len, int64_t B, int64_t H, int64_t Tq, int64_t Tk,
                            int64_t D, bool causal, T scale);

// Reference: the forward of one query row as plain loops (tests), the order above.
void attention_row_ref(float* out, const float* q, const float* k, const float* v, int64_t L, int64_t D,
                       float scale);

// attention_qkv's layout changes (CPU): rows [B, T, P, H, D] (P = 3 for a packed q k v,
// 1 for an output) <-> heads [P, B, H, T, D]. Pure copies; plus_zero writes x + 0 (the
// bits of a sum into zeros: -0 becomes +0). Threads split the B T rows.
template <typename T>
void attention_heads_from_rows_cpu(const Exec& ex, T* heads, const T* rows, int64_t P, int64_t B, int64_t Tn,
                                   int64_t H, int64_t D);
template <typename T>
void attention_rows_from_heads_cpu(const Exec& ex, T* rows, const T* heads, int64_t P, int64_t B, int64_t Tn,
                                   int64_t H, int64_t D, bool plus_zero);

// ---- AVX2 (attention_avx2.cpp; only with LOCKSTEP_HAVE_AVX2, when ex.avx2()): same bits ----
void attention_forward_avx2(const Exec& ex, float* out, float* p, const float* q, const float* k, const float* v,
                            const int64_t* kv_len, int64_t B, int64_t H, int64_t Tq, int64_t Tk, int64_t D,
                            bool causal, float scale);
void attention_backward_avx2(const Exec& ex, float* dq, float* dk, float* dv, const float* g, const float* q,
                             const float* k, const float* v, const float* p, const int64_t* kv_len, int64_t B,
                             int64_t H, int64_t Tq, int64_t Tk, int64_t D, bool causal, float scale);
// ---- AVX-512 (attention_avx512.cpp; only with LOCKSTEP_HAVE_AVX512, when ex.avx512()): same bits ----
void attention_forward_avx512(const Exec& ex, float* out, float* p, const float* q, const float* k, const float* v,
                              const int64_t* kv_len, int64_t B, int64_t H, int64_t Tq, int64_t Tk, int64_t D,
                              bool causal, float scale);
void attention_backward_avx512(const Exec& ex, float* dq, float* dk, float* dv, const float* g, const float* q,
                               const float* k, const float* v, const float* p, const int64_t* kv_len, int64_t B,
                               int64_t H, int64_t Tq, int64_t Tk, int64_t D, bool causal, float scale);

template <typename T>
void attention_forward_cuda(const Exec& ex, T* out, T* p, const T* q, const T* k, const T* v, const int64_t* kv_len,
                            int64_t B, int64_t H, int64_t Tq, int64_t Tk, int64_t D, bool causal, T scale);
template <typename T>
void attention_backward_cuda(const Exec& ex, T* dq, T* dk, T* dv, const T* g, const T* q, const T* k, const T* v,
                             const T* p, const int64_t* kv_len, int64_t B, int64_t H, int64_t Tq, int64_t Tk,
                             int64_t D, bool causal, T scale);

// The number of keys query t of row b sees (the rule above), host and device.
#if defined(__CUDACC__)
__host__ __device__
#endif
static inline int64_t attention_visible(int64_t len, int64_t Tq, int64_t t, bool causal) {
  const int64_t pos = len - Tq + t;
  if (!causal) return len;
  if (pos < 0) return 0;
  return pos + 1 < len ? pos + 1 : len;
}

}  // namespace lockstep
