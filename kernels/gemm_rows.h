// The few-row path of the deterministic float GEMM (gemm_rows_cpu.cpp, gemm_rows_avx2.cpp):
// products with M <= kRowsMax rows in sequential order, whose op(B) can be read in place
// (B stored K x N) or comes packed (GemmArgs::b_packed). One-row products (batch-1
// generation) spent most of their time in the register-tiled kernel's 6-row tiles, 5/6 of
// them empty, and in packing B. Not a public header.
//
// Order: every output is one fma chain from +0.0f over k = 0..K-1 in increasing order, then
// the epilogue (out = acc; + bias[j]; C + out), exactly gemm.h's canonical order, so the
// bits are those of gemm_cpu's tiled path for any M, threads and SIMD level
// (tests/kernels/test_gemm_rows.cpp). Threads split groups of columns, never k.
// Layout of a column block ("strip") here: element (k, c) at p[k * step + c], c < 16:
// B + j with step ldb (B stored K x N), or packed strip s at b_packed + s K 16, step 16.
#pragma once
#include <cstdint>

#include "kernels/gemm.h"

namespace lockstep {
namespace gemm_rows {

constexpr int64_t kRowsMax = 4;   // rows below the 6-row tile where the row path pays
constexpr int kCols = 16;         // columns per strip (== gemm_detail::kNR)
constexpr int kStripsMax = 4;     // strips summed side by side: 8 ymm chains per row

// True when gemm_rows_cpu computes g (deterministic float, sequential order, few rows).
bool applies(const GemmArgs& g);
void gemm_rows_cpu(const Exec& ex, const GemmArgs& g);

// acc[s * 16 + c] = the fma chain over k < K of a[k * a_step] * b[s][k * b_step + c] for
// s < ns (1 <= ns <= kStripsMax), from +0.0f, in increasing k.
void chains_scalar(const float* a, int64_t a_step, const float* const* b, int64_t b_step, int64_t K, int ns,
                   float* acc);
void chains_avx2(const float* a, int64_t a_step, const float* const* b, int64_t b_step, int64_t K, int ns,
                 float* acc);

}  // namespace gemm_rows
}  // namespace lockstep
