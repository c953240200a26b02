// The few-row GEMM chains (kernels/gemm_rows.h) with AVX2+FMA: per row, up to 4 strips of
// 16 columns in 8 ymm accumulators; per k one broadcast of a and 8 vfmadd231ps on the
// strips' rows. Each lane is one output's fma chain in increasing k (lanes never mix).
#include <immintrin.h>

#include "kernels/gemm_rows.h"

namespace lockstep {
namespace gemm_rows {
namespace {

template <int NS>
inline __attribute__((always_inline)) void chains_n(const float* a, int64_t a_step, const float* const* b,
                                                    int64_t b_step, int64_t K, float* acc) {
  __m256 v[2 * NS];
  const float* p[NS];
  for (int s = 0; s < NS; ++s) p[s] = b[s];
  for (int u = 0; u < 2 * NS; ++u) v[u] = _mm256_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    const __m256 x = _mm256_broadcast_ss(a + k * a_step);
    for (int s = 0; s < NS; ++s) {
      v[2 * s] = _mm256_fmadd_ps(x, _mm256_loadu_ps(p[s] + k * b_step), v[2 * s]);
      v[2 * s + 1] = _mm256_fmadd_ps(x, _mm256_loadu_ps(p[s] + k * b_step + 8), v[2 * s + 1]);
    }
  }
  for (int u = 0; u < 2 * NS; ++u) _mm256_storeu_ps(acc + 8 * u, v[u]);
}

}  // namespace

void chains_avx2(const float* a, int64_t a_step, const float* const* b, int64_t b_step, int64_t K, int ns,
                 float* acc) {
  switch (ns) {
    case 1: return chains_n<1>(a, a_step, b, b_step, K, acc);
    case 2: return chains_n<2>(a, a_step, b, b_step, K, acc);
    case 3: return chains_n<3>(a, a_step, b, b_step, K, acc);
    default: return chains_n<4>(a, a_step, b, b_step, K, acc);
  }
}

}  // namespace gemm_rows
}  // namespace lockstep
