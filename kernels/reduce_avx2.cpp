// AVX2 contiguous-order block partial (kernels/reduce.h). Compiled with -mavx2 -mfma only
// when LOCKSTEP_HAVE_AVX2; called only when ex.avx2().
//
// The canonical order's 32 lanes live in four ymm registers: acc0 holds lanes 0-7, acc1
// lanes 8-15, acc2 lanes 16-23, acc3 lanes 24-31, so one 32-element step is four vector adds,
// each lane adding its own element exactly as the scalar loop does. The halving fold then
// maps onto register halves: s = 16 is acc0 + acc2 and acc1 + acc3, s = 8 is acc0 + acc1,
// s = 4 the two 128-bit halves, s = 2 the two 64-bit halves, s = 1 lanes 0 and 1.
#include <immintrin.h>

#include "kernels/reduce.h"
#include "kernels/reduce_order.h"

namespace lockstep {

static_assert(kReduceLanes == 32, "the register layout below assumes 32 lanes");

float sum_block_avx2(const float* x, int64_t len) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
  const int64_t full = len - len % kReduceLanes;
  for (int64_t i = 0; i < full; i += kReduceLanes) {
    acc0 = _mm256_add_ps(acc0, _mm256_loadu_ps(x + i));
    acc1 = _mm256_add_ps(acc1, _mm256_loadu_ps(x + i + 8));
    acc2 = _mm256_add_ps(acc2, _mm256_loadu_ps(x + i + 16));
    acc3 = _mm256_add_ps(acc3, _mm256_loadu_ps(x + i + 24));
  }
  if (full < len) {
    // the last < 32 elements go to lanes 0, 1, ... one by one, as in the scalar loop
    alignas(32) float lane[kReduceLanes];
    _mm256_store_ps(lane, acc0);
    _mm256_store_ps(lane + 8, acc1);
    _mm256_store_ps(lane + 16, acc2);
    _mm256_store_ps(lane + 24, acc3);
    for (int64_t i = full; i < len; ++i) lane[i - full] += x[i];
    acc0 = _mm256_load_ps(lane);
    acc1 = _mm256_load_ps(lane + 8);
    acc2 = _mm256_load_ps(lane + 16);
    acc3 = _mm256_load_ps(lane + 24);
  }
  acc0 = _mm256_add_ps(acc0, acc2);  // s = 16
  acc1 = _mm256_add_ps(acc1, acc3);
  acc0 = _mm256_add_ps(acc0, acc1);  // s = 8
  __m128 v = _mm_add_ps(_mm256_castps256_ps128(acc0), _mm256_extractf128_ps(acc0, 1));  // s = 4
  v = _mm_add_ps(v, _mm_movehl_ps(v, v));                     // s = 2: lanes 0,1 += lanes 2,3
  v = _mm_add_ss(v, _mm_shuffle_ps(v, v, _MM_SHUFFLE(1, 1, 1, 1)));  // s = 1: lane 0 += lane 1
  return _mm_cvtss_f32(v);
}

}  // namespace lockstep
