// Packing helpers of the deterministic float GEMM that live outside gemm_cpu.cpp
// (gemm_pack_avx2.cpp). Copies only: they cannot change a bit. Not a public header.
#pragma once
#include <cstdint>

namespace lockstep {
namespace gemm_detail {

// One stored row k of a transposed A block (A stored K x M, src = its first element of the
// block) into the block's full 6-row strips: dst[(s * kc + k) * 6 + r] = src[6 s + r] for
// s < full, r < 6. avail: floats readable from src (M - i0). AVX2; call only when ex.avx2().
// Rows must be packed in increasing k: a strip's 8-float store spills 2 floats into row
// k + 1 of the same strip, which that row's own store then overwrites.
void gemm_pack_a_trans_row_avx2(const float* src, int64_t full, int64_t avail, int64_t k, int64_t kc, float* dst);

}  // namespace gemm_detail
}  // namespace lockstep
