// AVX2 packing of a transposed A block (kernels/gemm_pack.h). perf, GPT training step: the
// scalar loop (one float at a time into 25 strips per stored row) of the grad-weight
// products dW = dY^T X was ~10% of the step; then the row-at-a-time AVX2 loop waited on its
// loads (17% of 384 x 128 x 2048). A copy: the bits cannot change.
#include <immintrin.h>

#include "kernels/gemm_pack.h"

namespace lockstep {
namespace gemm_detail {

// Rows in increasing k, kTransRows at a time per strip: each strip gets 8 consecutive packed
// rows (192 contiguous bytes) before the next one, and the rows two passes on are
// prefetched a line at a time as the strips walk along them: each pass reads short pieces
// (mc floats) of 8 long stored rows, which the hardware prefetcher did not catch (perf:
// the loads were the hot spot). Measured, thread CPU time under load: 1.15-1.17x on the
// GPT's grad-weight 384 x 128 x 2048 and 512 x 128 x 2048, 1.03-1.05x on 256 x 784 x 128
// (the reordering alone, without the prefetch: 0.96-1.04x).
void gemm_pack_a_trans_avx2(const float* src, int64_t lda, int64_t full, int64_t avail, int64_t kc, float* dst) {
  constexpr int64_t kTransRows = 8;
  const int64_t strip = kc * 6;
  for (int64_t k0 = 0; k0 < kc; k0 += kTransRows) {
    const int64_t k1 = k0 + kTransRows < kc ? k0 + kTransRows : kc;
    for (int64_t s = 0; s < full; ++s) {
      float* out = dst + s * strip;
      const float* in = src + 6 * s;
      // The rows two passes on, a line of each when this strip starts a new line (the
      // stored rows are short pieces of long rows: the hardware prefetcher missed them).
      if ((6 * s) % 16 < 6)
        for (int64_t r = 0; r < kTransRows; ++r)
          _mm_prefetch(reinterpret_cast<const char*>(in + (k0 + 2 * kTransRows + r) * lda), _MM_HINT_T0);
      int64_t k = k0;
      // 8 floats in, 8 out: the 2 extra land in row k + 1 of the same strip, written after
      // (in this pass, or in the next one for the pass's last row).
      if (6 * s + 8 <= avail)
        for (; k < k1 && k + 1 < kc; ++k) _mm256_storeu_ps(out + k * 6, _mm256_loadu_ps(in + k * lda));
      for (; k < k1; ++k)
        for (int r = 0; r < 6; ++r) out[k * 6 + r] = in[k * lda + r];
    }
  }
}

}  // namespace gemm_detail
}  // namespace lockstep
