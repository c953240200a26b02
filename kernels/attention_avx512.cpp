// The attention loops of kernels/attention_impl.h compiled for AVX-512F (only when
// LOCKSTEP_HAVE_AVX512; called only when the kernel's Exec says ex.avx512()): std::fma becomes
// one vfmadd instead of a libm call, and the loops over keys and d vectorise 16 lanes wide
// with 32 registers (the 64-key score blocks and the output chains hold twice the work per
// instruction of the AVX2 build). Same bits: lanes never mix.
#include "kernels/attention_impl.h"

namespace lockstep {

void attention_forward_avx512(const Exec& ex, float* out, float* p, const float* q, const float* k, const float* v,
                            const int64_t* kv_len, int64_t B, int64_t H, int64_t Tq, int64_t Tk, int64_t D,
                            bool causal, float scale) {
  attn::forward_impl(ex, out, p, q, k, v, kv_len, B, H, Tq, Tk, D, causal, scale);
}

void attention_backward_avx512(const Exec& ex, float* dq, float* dk, float* dv, const float* g, const float* q,
                             const float* k, const float* v, const float* p, const int64_t* kv_len, int64_t B,
                             int64_t H, int64_t Tq, int64_t Tk, int64_t D, bool causal, float scale) {
  attn::backward_impl(ex, dq, dk, dv, g, q, k, v, p, kv_len, B, H, Tq, Tk, D, causal, scale);
}

}  // namespace lockstep
