// AVX2 packing of a transposed A block (kernels/gemm_pack.h). perf, GPT training step: the
// scalar loop (one float at a time into 25 strips per stored row) of the grad-weight
// products dW = dY^T X was ~10% of the step. A copy: the bits cannot change.
#include <immintrin.h>

#include "kernels/gemm_pack.h"

namespace lockstep {
namespace gemm_detail {

void gemm_pack_a_trans_row_avx2(const float* src, int64_t full, int64_t avail, int64_t k, int64_t kc, float* dst) {
  float* out = dst + k * 6;
  const int64_t strip = kc * 6;
  int64_t s = 0;
  // 8 floats in, 8 out: the 2 extra land in row k + 1 of the same strip (rewritten next).
  if (k + 1 < kc)
    for (; s < full && 6 * s + 8 <= avail; ++s) _mm256_storeu_ps(out + s * strip, _mm256_loadu_ps(src + 6 * s));
  for (; s < full; ++s)
    for (int r = 0; r < 6; ++r) out[s * strip + r] = src[6 * s + r];
}

}  // namespace gemm_detail
}  // namespace lockstep
