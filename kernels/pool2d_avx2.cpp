// AVX2 max_pool2d forward for 2 x 2 windows of stride 2 without padding (kernels/pool2d.h;
// called only when ex.avx2()). Eight outputs per step, each lane the scalar walk: start
// from the window's first element, then for the other three in window order replace the
// running maximum when larger (ordered >) or NaN (unordered with itself). Blends move the
// chosen element's bits, so y and idx equal the scalar loop's. The backward row below writes
// the gather's +0 / +0 + dy per element, eight windows at a time.
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
    const __m256i i0 = _mm256_add_epi64(b64, _mm256_cvtepi32_epi64(_mm256_castsi256_si128(pos)));
    const __m256i i1 = _mm256_add_epi64(b64, _mm256_cvtepi32_epi64(_mm256_extracti128_si256(pos, 1)));
    if (n == 8) {  // stored directly (a memcpy of a variable length compiles to a slow rep movs)
      _mm256_storeu_ps(y + ow, best);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(idx + ow), i0);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(idx + ow + 4), i1);
      continue;
    }
    alignas(32) int64_t iv[8];
    alignas(32) float yv[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(iv), i0);
    _mm256_store_si256(reinterpret_cast<__m256i*>(iv + 4), i1);
    _mm256_store_ps(yv, best);
    std::memcpy(y + ow, yv, sizeof(float) * n);
    std::memcpy(idx + ow, iv, sizeof(int64_t) * n);
  }
}

// Backward: the two input rows of output row oh (dx0 = its first, dx0 + W the second), the
// first 2 OW columns. Per window, each of its four elements gets +0 + dy when idx names it,
// else +0 -- the bits of the scalar gather (keep_or_zero in pool2d_cpu.cpp).
void max_pool2x2_backward_row_avx2(float* dx0, int64_t W, int64_t OW, int64_t base, const float* dy,
                                   const int64_t* idx) {
  float* dx1 = dx0 + W;
  const __m256i two_lane = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
  const __m256i low32 = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);  // the low halves of 4 int64
  const __m256i one = _mm256_set1_epi32(1), w32 = _mm256_set1_epi32(static_cast<int>(W));
  const __m256i w1 = _mm256_add_epi32(w32, one);
  for (int64_t ow = 0; ow < OW; ow += 8) {
    const int64_t n = OW - ow < 8 ? OW - ow : 8;
    alignas(32) float g[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    alignas(32) int64_t iv[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    const float* gp = dy + ow;
    const int64_t* ip = idx + ow;
    if (n < 8) {  // a short tail: through zeroed buffers (memcpy of a variable length is a rep movs)
      std::memcpy(g, dy + ow, sizeof(float) * n);
      std::memcpy(iv, idx + ow, sizeof(int64_t) * n);
      gp = g, ip = iv;
    }
    const __m256 v = _mm256_add_ps(_mm256_setzero_ps(), _mm256_loadu_ps(gp));  // +0 + dy, as the loop
    // The chosen element's offset from the window's first (0, 1, W or W + 1): idx - base - 2 ow - 2 lane,
    // taken in 32 bits (offsets within a plane; the caller checks W < 2^30).
    const __m256i lo = _mm256_permutevar8x32_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(ip)), low32);
    const __m256i hi =
        _mm256_permutevar8x32_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(ip + 4)), low32);
    const __m256i rel = _mm256_sub_epi32(_mm256_blend_epi32(lo, hi, 0xF0),
                                         _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(base + 2 * ow)),
                                                          two_lane));
    const __m256 e0 = _mm256_and_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(rel, _mm256_setzero_si256())), v);
    const __m256 e1 = _mm256_and_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(rel, one)), v);
    const __m256 e2 = _mm256_and_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(rel, w32)), v);
    const __m256 e3 = _mm256_and_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(rel, w1)), v);
    // Interleave (even, odd) into the row's 16 columns: unpack within lanes, then order the halves.
    const __m256 t0 = _mm256_unpacklo_ps(e0, e1), t1 = _mm256_unpackhi_ps(e0, e1);
    const __m256 b0 = _mm256_unpacklo_ps(e2, e3), b1 = _mm256_unpackhi_ps(e2, e3);
    if (n == 8) {
      _mm256_storeu_ps(dx0 + 2 * ow, _mm256_permute2f128_ps(t0, t1, 0x20));
      _mm256_storeu_ps(dx0 + 2 * ow + 8, _mm256_permute2f128_ps(t0, t1, 0x31));
      _mm256_storeu_ps(dx1 + 2 * ow, _mm256_permute2f128_ps(b0, b1, 0x20));
      _mm256_storeu_ps(dx1 + 2 * ow + 8, _mm256_permute2f128_ps(b0, b1, 0x31));
      continue;
    }
    alignas(32) float top[16], bottom[16];
    _mm256_store_ps(top, _mm256_permute2f128_ps(t0, t1, 0x20));
    _mm256_store_ps(top + 8, _mm256_permute2f128_ps(t0, t1, 0x31));
    _mm256_store_ps(bottom, _mm256_permute2f128_ps(b0, b1, 0x20));
    _mm256_store_ps(bottom + 8, _mm256_permute2f128_ps(b0, b1, 0x31));
    std::memcpy(dx0 + 2 * ow, top, sizeof(float) * 2 * n);
    std::memcpy(dx1 + 2 * ow, bottom, sizeof(float) * 2 * n);
  }
}

}  // namespace lockstep
