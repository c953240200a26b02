// Packing helpers of the deterministic float GEMM that live outside gemm_cpu.cpp
// (gemm_pack_avx2.cpp). Copies only: they cannot change a bit. Not a public header.
#pragma once
#include <cstdint>

namespace lockstep {
namespace gemm_detail {

// The full 6-row strips of a transposed A block at once: stored rows k = 0 .. kc of the block
// (src, row stride lda), dst[(s * kc + k) * 6 + r] = src[k * lda + 6 s + r] for s < full,
// r < 6. avail: floats readable from each row (M - i0). AVX2; call only when ex.avx2().
// May read (prefetch only) rows past kc.
void gemm_pack_a_trans_avx2(const float* src, int64_t lda, int64_t full, int64_t avail, int64_t kc, float* dst);

}  // namespace gemm_detail
}  // namespace lockstep
