// AVX2 max_pool2d forward for 2 x 2 windows of stride 2 without padding (kernels/pool2d.h;
// called only when ex.avx2()). Eight outputs per step, each lane the scalar walk: start
// from the window's first element, then for the other three in window order replace the
// running maximum when larger (ordered >) or NaN (unordered with itself). Blends move the
// chosen element's bits, so y and idx equal the scalar loop's.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/pool2d.h"

namespace lockstep {
namespace {

// The window elements (2k, 2k + 1) of p[0 .. 2n) for k < n <= 8: evens and odds, lanes >= n zero.
inline void load_pairs(const float* p, int64_t n, __m256& even, __m256& odd) {
  __m256 lo, hi;
  if (n == 8) {
    lo = _mm256_loadu_ps(p);
    hi = _mm256_loadu_ps(p + 8);
  } else {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i m_lo = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(2 * n)), lane);
    const __m256i m_hi = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(2 * n - 8)), lane);
    lo = _mm256_maskload_ps(p, m_lo);
    hi = _mm256_maskload_ps(p + 8, m_hi);
  }
  // In-lane shuffles give (lo0 lo2 hi0 hi2 | lo4 lo6 hi4 hi6); the 64-bit permute puts them in order.
  even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(lo, hi, 0x88)), 0xD8));
  odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(lo, hi, 0xDD)), 0xD8));
}

inline void take(__m256 v, int code, __m256& best, __m256i& which) {
  const __m256 t = _mm256_or_ps(_mm256_cmp_ps(v, best, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  best = _mm256_blendv_ps(best, v, t);
  which = _mm256_blendv_epi8(which, _mm256_set1_epi32(code), _mm256_castps_si256(t));
}

}  // namespace

void max_pool2x2_row_avx2(const float* r0, int64_t W, int64_t OW, int64_t base, float* y, int64_t* idx) {
  const float* r1 = r0 + W;
  const __m256i two_lane = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
  const __m256i w32 = _mm256_set1_epi32(static_cast<int>(W)), one = _mm256_set1_epi32(1);
  for (int64_t ow = 0; ow < OW; ow += 8) {
    const int64_t n = OW - ow < 8 ? OW - ow : 8;
    __m256 a, b, c, d;
    load_pairs(r0 + 2 * ow, n, a, b);
    load_pairs(r1 + 2 * ow, n, c, d);
    __m256 best = a;
    __m256i which = _mm256_setzero_si256();
    take(b, 1, best, which);
    take(c, 2, best, which);
    take(d, 3, best, which);
    // Offset of the chosen element from the window's first: (which & 1) + (which >> 1) W.
    const __m256i off = _mm256_add_epi32(
        _mm256_and_si256(which, one),
        _mm256_and_si256(_mm256_sub_epi32(_mm256_setzero_si256(), _mm256_srli_epi32(which, 1)), w32));
    const __m256i pos = _mm256_add_epi32(off, two_lane);  // from r0[2 ow]
    const __m256i b64 = _mm256_set1_epi64x(base + 2 * ow);
    alignas(32) int64_t iv[8];
    alignas(32) float yv[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(iv),
                       _mm256_add_epi64(b64, _mm256_cvtepi32_epi64(_mm256_castsi256_si128(pos))));
    _mm256_store_si256(reinterpret_cast<__m256i*>(iv + 4),
                       _mm256_add_epi64(b64, _mm256_cvtepi32_epi64(_mm256_extracti128_si256(pos, 1))));
    _mm256_store_ps(yv, best);
    std::memcpy(y + ow, yv, sizeof(float) * n);
    std::memcpy(idx + ow, iv, sizeof(int64_t) * n);
  }
}

}  // namespace lockstep
