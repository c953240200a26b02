// The float32 dropout loops of kernels/dropout.h for AVX2 (only with LOCKSTEP_HAVE_AVX2;
// called only when the kernel's Exec says ex.avx2()). Same bits as the portable loops: Philox is integer
// arithmetic, the uniform is an exact int -> float conversion and a power-of-two scale,
// and y = x * (keep ? scale : 0) is one rounded product per element either way.
//
// Forward layout: eight Philox blocks per iteration, one block per 32-bit lane (counter
// words c0..c3 as four vectors). Block j's four words are elements 4j .. 4j+3, so the 4 x 8
// word matrix is transposed to element order before the uniforms are formed.
#include <immintrin.h>

#include "kernels/dropout.h"

namespace lockstep {
namespace {

// hi and lo 32 bits of the eight products m * c (one per lane).
inline void mul_hilo(__m256i c, __m256i m, __m256i& hi, __m256i& lo) {
  const __m256i even = _mm256_mul_epu32(c, m);                         // lanes 0, 2, 4, 6 as u64
  const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(c, 32), m);  // lanes 1, 3, 5, 7
  hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
  lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
}

// Philox4x32-10 of eight counters (c0 per lane, c1 per lane, shared c2, c3) under one key,
// the same rounds as philox4x32_10.
inline void philox8(__m256i w[4], __m256i c0, __m256i c1, uint32_t c2s, uint32_t c3s, uint32_t k0s,
                    uint32_t k1s) {
  const __m256i m0 = _mm256_set1_epi32(static_cast<int>(0xD2511F53u));
  const __m256i m1 = _mm256_set1_epi32(static_cast<int>(0xCD9E8D57u));
  __m256i c2 = _mm256_set1_epi32(static_cast<int>(c2s)), c3 = _mm256_set1_epi32(static_cast<int>(c3s));
  uint32_t k0 = k0s, k1 = k1s;
  for (int round = 0; round < 10; ++round) {
    __m256i hi0, lo0, hi1, lo1;
    mul_hilo(c0, m0, hi0, lo0);
    mul_hilo(c2, m1, hi1, lo1);
    const __m256i n0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), _mm256_set1_epi32(static_cast<int>(k0)));
    const __m256i n2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), _mm256_set1_epi32(static_cast<int>(k1)));
    c0 = n0, c1 = lo1, c2 = n2, c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  w[0] = c0, w[1] = c1, w[2] = c2, w[3] = c3;
}

// 4 x 8 words (w[k] lane j = word k of block j) to four vectors of consecutive elements:
// out[0] = blocks 0, 1; out[1] = blocks 2, 3; out[2] = blocks 4, 5; out[3] = blocks 6, 7.
inline void to_element_order(const __m256i w[4], __m256 out[4]) {
  const __m256 a = _mm256_unpacklo_ps(_mm256_castsi256_ps(w[0]), _mm256_castsi256_ps(w[1]));
  const __m256 b = _mm256_unpacklo_ps(_mm256_castsi256_ps(w[2]), _mm256_castsi256_ps(w[3]));
  const __m256 c = _mm256_unpackhi_ps(_mm256_castsi256_ps(w[0]), _mm256_castsi256_ps(w[1]));
  const __m256 d = _mm256_unpackhi_ps(_mm256_castsi256_ps(w[2]), _mm256_castsi256_ps(w[3]));
  // 128-bit half h of t_j holds block j + 4h
  const __m256 t0 = _mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(a), _mm256_castps_pd(b)));
  const __m256 t1 = _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(a), _mm256_castps_pd(b)));
  const __m256 t2 = _mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(c), _mm256_castps_pd(d)));
  const __m256 t3 = _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(c), _mm256_castps_pd(d)));
  out[0] = _mm256_permute2f128_ps(t0, t1, 0x20);
  out[1] = _mm256_permute2f128_ps(t2, t3, 0x20);
  out[2] = _mm256_permute2f128_ps(t0, t1, 0x31);
  out[3] = _mm256_permute2f128_ps(t2, t3, 0x31);
}

}  // namespace

void dropout_forward_blocks_avx2(float* y, uint8_t* mask, const float* x, int64_t b0, int64_t b1, float p,
                                 uint64_t seed, uint64_t stream, uint64_t first_block) {
  const float scale = 1.0f / (1.0f - p);
  const __m256 vp = _mm256_set1_ps(p), vscale = _mm256_set1_ps(scale), unit = _mm256_set1_ps(0x1p-24f);
  const __m256i bytes_in_order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  const uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  const uint32_t c2 = static_cast<uint32_t>(stream), c3 = static_cast<uint32_t>(stream >> 32);
  int64_t blk = b0;
  for (; blk + 8 <= b1; blk += 8) {
    alignas(32) uint32_t lo[8], hi[8];
    for (int j = 0; j < 8; ++j) {
      const uint64_t b = first_block + static_cast<uint64_t>(blk + j);
      lo[j] = static_cast<uint32_t>(b), hi[j] = static_cast<uint32_t>(b >> 32);
    }
    __m256i w[4];
    philox8(w, _mm256_load_si256(reinterpret_cast<const __m256i*>(lo)),
            _mm256_load_si256(reinterpret_cast<const __m256i*>(hi)), c2, c3, k0, k1);
    __m256 words[4];
    to_element_order(w, words);
    __m256i keep01[4];
    const int64_t i0 = 4 * blk;
    for (int v = 0; v < 4; ++v) {
      // u = (word >> 8) * 2^-24, exact; keep = u >= p; y = x * (keep ? scale : +0)
      const __m256i top = _mm256_srli_epi32(_mm256_castps_si256(words[v]), 8);
      const __m256 u = _mm256_mul_ps(_mm256_cvtepi32_ps(top), unit);
      const __m256 keep = _mm256_cmp_ps(u, vp, _CMP_GE_OQ);
      const __m256 m = _mm256_and_ps(keep, vscale);
      _mm256_storeu_ps(y + i0 + 8 * v, _mm256_mul_ps(_mm256_loadu_ps(x + i0 + 8 * v), m));
      keep01[v] = _mm256_srli_epi32(_mm256_castps_si256(keep), 31);
    }
    if (mask) {
      // 32 words of 0/1 to 32 bytes: the packs interleave 128-bit halves, the permute undoes it
      const __m256i p01 = _mm256_packs_epi32(keep01[0], keep01[1]);
      const __m256i p23 = _mm256_packs_epi32(keep01[2], keep01[3]);
      const __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(p01, p23), bytes_in_order);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(mask + i0), bytes);
    }
  }
  for (; blk < b1; ++blk) {  // fewer than eight blocks left: one at a time
    const Philox4x32 w = philox_block(seed, stream, first_block + static_cast<uint64_t>(blk));
    for (int k = 0; k < 4; ++k) {
      const bool keep = uint32_to_uniform01f(w.w[k]) >= p;
      y[4 * blk + k] = x[4 * blk + k] * (keep ? scale : 0.0f);
      if (mask) mask[4 * blk + k] = static_cast<uint8_t>(keep);
    }
  }
}

void dropout_backward_run_avx2(float* dx, const float* dy, const uint8_t* mask, int64_t n, float scale) {
  for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * (mask[i] ? scale : 0.0f);
}

}  // namespace lockstep
