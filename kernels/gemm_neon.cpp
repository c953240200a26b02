// NEON micro-kernel of the deterministic GEMM (aarch64 only, LOCKSTEP_HAVE_NEON; called only
// when ex.neon()). Layouts and the driver are in gemm_cpu.cpp / gemm_internal.h; the
// contract is gemm_tile_avx2's and gemm_tile_scalar's.
//
// Register tile: kMR x kNR = 6 x 16 outputs in 24 q-register accumulators, acc[4r + q]
// holding row r, columns 4q .. 4q+3. Per k: four loads of the packed B row (16 floats),
// one 4-float and one 2-float load of the packed A column, and 24 FMLA (by element):
// acc = acc + b * a[r] with one rounding. 24 + 4 + 2 of the 32 vector registers.
//
// Order: every accumulator lane is one output element and advances in increasing k with
// one fused multiply-add per product, exactly the canonical loop (kernels/gemm.h); lanes
// never mix, so the vector width does not enter the result. Batch-chunked blocks restart
// the accumulators at +0.0f every kChunk values of k and combine the chunk tiles with the
// TreeStack binary counter, as gemm_avx2.cpp does. Same bits as the portable kernel
// (tests/kernels/test_gemm.cpp, "every SIMD level", run under qemu-aarch64 by
// scripts/cross_check.sh).
#include <arm_neon.h>

#include "kernels/gemm_internal.h"

namespace lockstep {
namespace gemm_detail {
namespace {

constexpr int kQ = kNR / 4;  // q registers per tile row

struct Acc {
  float32x4_t v[kMR * kQ];
};

#define LS_INLINE inline __attribute__((always_inline))

LS_INLINE void acc_zero(Acc& t) {
#pragma GCC unroll 24
  for (int i = 0; i < kMR * kQ; ++i) t.v[i] = vdupq_n_f32(0.0f);
}

LS_INLINE void acc_load(Acc& t, const float* p) {
#pragma GCC unroll 24
  for (int i = 0; i < kMR * kQ; ++i) t.v[i] = vld1q_f32(p + 4 * i);
}

LS_INLINE void acc_store(const Acc& t, float* p) {
#pragma GCC unroll 24
  for (int i = 0; i < kMR * kQ; ++i) vst1q_f32(p + 4 * i, t.v[i]);
}

// t = older + t: the tree's left operand is the earlier subtree held in memory.
LS_INLINE void acc_add_older(Acc& t, const float* older) {
#pragma GCC unroll 24
  for (int i = 0; i < kMR * kQ; ++i) t.v[i] = vaddq_f32(vld1q_f32(older + 4 * i), t.v[i]);
}

// n consecutive k steps in increasing k: acc[r][j] = fma(a[r], b[j], acc[r][j]).
LS_INLINE void fma_steps(Acc& t, const float* a, const float* b, int64_t n) {
  for (int64_t k = 0; k < n; ++k, a += kMR, b += kNR) {
    const float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4), b2 = vld1q_f32(b + 8), b3 = vld1q_f32(b + 12);
    const float32x4_t a03 = vld1q_f32(a);  // rows 0-3
    const float32x2_t a45 = vld1_f32(a + 4);  // rows 4-5 (no read past the strip)
#define LS_ROW(R, A, L)                                  \
  t.v[4 * R + 0] = A(t.v[4 * R + 0], b0, a##L, R % 4); \
  t.v[4 * R + 1] = A(t.v[4 * R + 1], b1, a##L, R % 4); \
  t.v[4 * R + 2] = A(t.v[4 * R + 2], b2, a##L, R % 4); \
  t.v[4 * R + 3] = A(t.v[4 * R + 3], b3, a##L, R % 4);
    LS_ROW(0, vfmaq_laneq_f32, 03)
    LS_ROW(1, vfmaq_laneq_f32, 03)
    LS_ROW(2, vfmaq_laneq_f32, 03)
    LS_ROW(3, vfmaq_laneq_f32, 03)
    LS_ROW(4, vfmaq_lane_f32, 45)
    LS_ROW(5, vfmaq_lane_f32, 45)
#undef LS_ROW
  }
}

// Writes a finished tile: out = acc (+ bias[j]) then (C +) out. Edge tiles go through a
// buffer and the shared scalar epilogue, which performs the same two additions.
LS_INLINE void finish_tile(const Acc& t, const TileArgs& x) {
  if (!x.full) {
    alignas(16) float buf[kTile];
    acc_store(t, buf);
    epilogue_scalar(buf, x.c, x.ldc, x.mr, x.nr, x.bias, x.accumulate);
    return;
  }
  for (int r = 0; r < kMR; ++r) {
    float* c = x.c + r * x.ldc;
    for (int q = 0; q < kQ; ++q) {
      float32x4_t o = t.v[4 * r + q];
      if (x.bias) o = vaddq_f32(o, vld1q_f32(x.bias + 4 * q));
      if (x.accumulate) o = vaddq_f32(vld1q_f32(c + 4 * q), o);
      vst1q_f32(c + 4 * q, o);
    }
  }
}

}  // namespace

void gemm_tile_neon(const TileArgs& x) {
  Acc t;
  acc_zero(t);
  if (!x.chunked) {
    // Sequential: one fma chain per output over the whole block, continuing the partial.
    if (!x.first) acc_load(t, x.partial);
    fma_steps(t, x.a, x.b, x.kc);
  } else {
    // Batch-chunked: as gemm_tile_avx2, the stack holds the finished subtrees older than
    // the newest one; after chunk q has been pushed, their sizes are the binary digits of q+1.
    alignas(16) float stack[kGroupLevels - 1][kTile];
    int depth = 0;
    const int64_t nchunks = (x.kc + kChunk - 1) / kChunk;
    for (int64_t q = 0; q < nchunks; ++q) {
      const int64_t k0 = q * kChunk;
      const int64_t len = x.kc - k0 < kChunk ? x.kc - k0 : kChunk;
      acc_zero(t);
      fma_steps(t, x.a + kMR * k0, x.b + kNR * k0, len);
      for (int64_t c = q + 1; (c & 1) == 0; c >>= 1) acc_add_older(t, stack[--depth]);
      if (q + 1 < nchunks) acc_store(t, stack[depth++]);
    }
    while (depth > 0) acc_add_older(t, stack[--depth]);  // TreeStack::finish
  }
  if (x.last)
    finish_tile(t, x);
  else
    acc_store(t, x.partial);
}

}  // namespace gemm_detail
}  // namespace lockstep
