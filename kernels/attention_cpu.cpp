// CPU attention (kernels/attention.h): the loops of kernels/attention_impl.h, portable or
// AVX2 (attention_avx2.cpp, the same loops compiled with -mavx2 -mfma) when ex.avx2(), AVX-512
// (attention_avx512.cpp) when ex.avx512().
#include <cmath>
#include <vector>

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

#define LS_ATTENTION(T)                                                                                            \
  template void attention_forward_cpu<T>(const Exec&, T*, T*, const T*, const T*, const T*, const int64_t*,        \
                                         int64_t, int64_t, int64_t, int64_t, int64_t, bool, T);                    \
  template void attention_backward_cpu<T>(const Exec&, T*, T*, T*, const T*, const T*, const T*, const T*,         \
                                          const T*, const int64_t*, int64_t, int64_t, int64_t, int64_t, int64_t,   \
                                          bool, T);
LS_ATTENTION(float)
LS_ATTENTION(double)
#undef LS_ATTENTION

}  // namespace lockstep
