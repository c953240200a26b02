// CPU attention (kernels/attention.h): the loops of kernels/attention_impl.h, portable or
// AVX2 (attention_avx2.cpp, the same loops compiled with -mavx2 -mfma) when ex.avx2(), AVX-512
// (attention_avx512.cpp) when ex.avx512().
#include <algorithm>
#include <cmath>
#include <vector>

#include "base/parallel.h"
#include "kernels/attention_impl.h"
#include "lockstep/config.h"

namespace lockstep {

template <typename T>
void attention_forward_cpu(const Exec& ex, T* out, T* p, const T* q, const T* k, const T* v, const int64_t* kv_len,
                           int64_t B, int64_t H, int64_t Tq, int64_t Tk, int64_t D, bool causal, T scale) {
#if LOCKSTEP_HAVE_AVX512
  if constexpr (std::is_same_v<T, float>)
    if (ex.avx512()) return attention_forward_avx512(ex, out, p, q, k, v, kv_len, B, H, Tq, Tk, D, causal, scale);
#endif
#if LOCKSTEP_HAVE_AVX2
  if constexpr (std::is_same_v<T, float>)
    if (ex.avx2()) return attention_forward_avx2(ex, out, p, q, k, v, kv_len, B, H, Tq, Tk, D, causal, scale);
#endif
  attn::forward_impl(ex, out, p, q, k, v, kv_len, B, H, Tq, Tk, D, causal, scale);
}

template <typename T>
void attention_backward_cpu(const Exec& ex, T* dq, T* dk, T* dv, const T* g, const T* q, const T* k, const T* v,
                            const T* p, const int64_t* kv_len, int64_t B, int64_t H, int64_t Tq, int64_t Tk,
                            int64_t D, bool causal, T scale) {
#if LOCKSTEP_HAVE_AVX512
  if constexpr (std::is_same_v<T, float>)
    if (ex.avx512())
      return attention_backward_avx512(ex, dq, dk, dv, g, q, k, v, p, kv_len, B, H, Tq, Tk, D, causal, scale);
#endif
#if LOCKSTEP_HAVE_AVX2
  if constexpr (std::is_same_v<T, float>)
    if (ex.avx2())
      return attention_backward_avx2(ex, dq, dk, dv, g, q, k, v, p, kv_len, B, H, Tq, Tk, D, causal, scale);
#endif
  attn::backward_impl(ex, dq, dk, dv, g, q, k, v, p, kv_len, B, H, Tq, Tk, D, causal, scale);
}

void attention_row_ref(float* out, const float* q, const float* k, const float* v, int64_t L, int64_t D,
                       float scale) {
  std::vector<float> s(static_cast<size_t>(L));
  for (int64_t j = 0; j < L; ++j) {
    float acc = 0.0f;
    for (int64_t d = 0; d < D; ++d) acc = std::fma(q[d], k[j * D + d], acc);
    s[j] = acc * scale;
  }
  float m = s[0];  // no NaN in the tests' inputs
  for (int64_t j = 1; j < L; ++j) m = s[j] > m ? s[j] : m;
  for (int64_t j = 0; j < L; ++j) s[j] = ls_expf(s[j] - m);
  const float l = sum_cpu_ref(s.data(), L);
  for (int64_t j = 0; j < L; ++j) s[j] = s[j] / l;
  for (int64_t d = 0; d < D; ++d) {
    float acc = 0.0f;
    for (int64_t j = 0; j < L; ++j) acc = std::fma(s[j], v[j * D + d], acc);
    out[d] = acc;
  }
}

// rows [B, T, P, H, D] <-> heads [P, B, H, T, D]: copies of runs of D elements, threads
// split over the B T rows; plus_zero adds +0 to each element (turns -0 into +0, nothing else).
template <typename T>
void attention_heads_from_rows_cpu(const Exec&, T* heads, const T* rows, int64_t P, int64_t B, int64_t Tn, int64_t H,
                                   int64_t D) {
  parallel_for(B * Tn, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, P * H * D)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / Tn, t = r % Tn;
      for (int64_t p = 0; p < P; ++p)
        for (int64_t h = 0; h < H; ++h) {
          const T* src = rows + ((r * P + p) * H + h) * D;
          T* dst = heads + (((p * B + b) * H + h) * Tn + t) * D;
          for (int64_t d = 0; d < D; ++d) dst[d] = src[d];
        }
    }
  });
}

template <typename T>
void attention_rows_from_heads_cpu(const Exec&, T* rows, const T* heads, int64_t P, int64_t B, int64_t Tn, int64_t H,
                                   int64_t D, bool plus_zero) {
  parallel_for(B * Tn, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, P * H * D)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / Tn, t = r % Tn;
      for (int64_t p = 0; p < P; ++p)
        for (int64_t h = 0; h < H; ++h) {
          const T* src = heads + (((p * B + b) * H + h) * Tn + t) * D;
          T* dst = rows + ((r * P + p) * H + h) * D;
          if (plus_zero)
            for (int64_t d = 0; d < D; ++d) dst[d] = src[d] + T(0);
          else
            for (int64_t d = 0; d < D; ++d) dst[d] = src[d];
        }
    }
  });
}

#define LS_ATTENTION(T)                                                                                            \
  template void attention_forward_cpu<T>(const Exec&, T*, T*, const T*, const T*, const T*, const int64_t*,        \
                                         int64_t, int64_t, int64_t, int64_t, int64_t, bool, T);                    \
  template void attention_backward_cpu<T>(const Exec&, T*, T*, T*, const T*, const T*, const T*, const T*,         \
                                          const T*, const int64_t*, int64_t, int64_t, int64_t, int64_t, int64_t,   \
                                          bool, T);                                                                \
  template void attention_heads_from_rows_cpu<T>(const Exec&, T*, const T*, int64_t, int64_t, int64_t, int64_t,    \
                                                 int64_t);                                                         \
  template void attention_rows_from_heads_cpu<T>(const Exec&, T*, const T*, int64_t, int64_t, int64_t, int64_t,    \
                                                 int64_t, bool);
LS_ATTENTION(float)
LS_ATTENTION(double)
#undef LS_ATTENTION

}  // namespace lockstep
