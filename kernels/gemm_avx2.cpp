// AVX2+FMA micro-kernel of the deterministic GEMM (compiled with -mavx2 -mfma; called only
// when ex.avx2()). Layouts and the driver are in gemm_cpu.cpp / gemm_internal.h.
//
// Register tile: kMR x kNR = 6 x 16 outputs in 12 ymm accumulators, acc[2r + h] holding
// row r, columns 8h .. 8h+7. Per k: two aligned loads of the packed B row (16 floats),
// six broadcasts of the packed A column, twelve vfmadd231ps. That is 15 of the 16 ymm
// registers and 12 independent fma chains, enough to cover the 4-cycle fma latency on
// both fma pipes.
//
// Order: every accumulator lane is one output element and advances in increasing k with
// one fma per product, exactly the canonical loop; lanes never mix, so the vector width
// does not enter the result. Batch-chunked blocks restart the accumulators at +0.0f every
// kChunk values of k and combine the chunk tiles with the TreeStack binary counter, the
// newest subtree kept in registers and the older ones in a small stack in L1.
//
// Also here: gemm_pack_a_strip_avx2, the A packing of a full 6-row strip by 6 x 8 register
// transposes, and gemm_pack_b_strip_trans_avx2, the packing of a full 16-column strip of a
// transposed B by 8 x 8 transposes (copies; the bits cannot depend on them).
//
// No standard-library templates here: their instantiations would be compiled with AVX2 and
// could be picked by the linker for the scalar build of the same symbol.
#include <immintrin.h>

#include "kernels/gemm_internal.h"

namespace lockstep {
namespace gemm_detail {
namespace {

// The 6 x 16 tile in registers; accumulators are indexed with constants only, so after
// inlining they live in ymm0..ymm11.
struct Acc {
  __m256 v[2 * kMR];
};

#define LS_INLINE inline __attribute__((always_inline))

// The loops below are unrolled on purpose: GCC would otherwise turn them into memcpy /
// memset (rep movsq, ~50 cycles each) and keep the tile in memory.
LS_INLINE void acc_zero(Acc& t) {
#pragma GCC unroll 12
  for (int i = 0; i < 2 * kMR; ++i) t.v[i] = _mm256_setzero_ps();
}

LS_INLINE void acc_load(Acc& t, const float* p) {
#pragma GCC unroll 12
  for (int i = 0; i < 2 * kMR; ++i) t.v[i] = _mm256_loadu_ps(p + 8 * i);
}

LS_INLINE void acc_store(const Acc& t, float* p) {
#pragma GCC unroll 12
  for (int i = 0; i < 2 * kMR; ++i) _mm256_storeu_ps(p + 8 * i, t.v[i]);
}

// n consecutive k steps over packed strips, in increasing k: acc[r][j] = fma(a[r], b[j],
// acc[r][j]) for the whole tile per step. The accumulators are twelve named locals and one
// step is one asm statement: with intrinsics GCC 12 hoists the broadcasts of later steps,
// runs out of the 16 ymm registers and spills an accumulator every few steps (measured:
// ~65 instead of ~85 GFLOP/s). The asm is the same instruction sequence the intrinsics
// name: two aligned loads of the B row, then per row r a broadcast of a[r] and two
// vfmadd231ps (acc = a * b + acc, one rounding). The accumulators come by reference so that
// a caller can keep them as locals across several calls (the chunk loop below).
LS_INLINE void fma_steps_regs(__m256& c00, __m256& c01, __m256& c10, __m256& c11, __m256& c20, __m256& c21,
                              __m256& c30, __m256& c31, __m256& c40, __m256& c41, __m256& c50, __m256& c51,
                              const float* a, const float* b, int64_t n, const float* pf) {
  // Step K of the current group: B row at b + K*kNR floats into ymm13/ymm14, A column at
  // a + K*kMR floats broadcast one value at a time into ymm15 (asm operands are limited to
  // 30, so the three temporaries are fixed registers declared as clobbered).
#define LS_FMA_ROW(R, C0, C1)                             \
  "vbroadcastss %c[oa]+4*" #R "(%[a]), %%ymm15\n\t"        \
  "vfmadd231ps %%ymm13, %%ymm15, %[" #C0 "]\n\t"           \
  "vfmadd231ps %%ymm14, %%ymm15, %[" #C1 "]\n\t"
#define LS_GEMM_STEP(K)                                                                   \
  __asm__("vmovaps %c[ob](%[b]), %%ymm13\n\t"                                             \
          "vmovaps %c[ob]+32(%[b]), %%ymm14\n\t"                                          \
          LS_FMA_ROW(0, c00, c01) LS_FMA_ROW(1, c10, c11) LS_FMA_ROW(2, c20, c21)           \
          LS_FMA_ROW(3, c30, c31) LS_FMA_ROW(4, c40, c41) LS_FMA_ROW(5, c50, c51)           \
          : [c00] "+x"(c00), [c01] "+x"(c01), [c10] "+x"(c10), [c11] "+x"(c11),             \
            [c20] "+x"(c20), [c21] "+x"(c21), [c30] "+x"(c30), [c31] "+x"(c31),             \
            [c40] "+x"(c40), [c41] "+x"(c41), [c50] "+x"(c50), [c51] "+x"(c51)              \
          : [a] "r"(a), [b] "r"(b), [oa] "i"(4 * kMR * (K)), [ob] "i"(4 * kNR * (K))        \
          : "xmm13", "xmm14", "xmm15", "memory");
  int64_t k = 0;
  // Unrolled by 4 to keep loop overhead off the ports. (A software prefetch of the A strip
  // 16, 32 or 64 steps ahead measured no different: the hardware prefetcher has it.)
  for (; k + 4 <= n; k += 4, a += 4 * kMR, b += 4 * kNR, pf += kNR) {
    __builtin_prefetch(pf, 0, 3);
    LS_GEMM_STEP(0)
    LS_GEMM_STEP(1)
    LS_GEMM_STEP(2)
    LS_GEMM_STEP(3)
  }
  for (; k < n; ++k, a += kMR, b += kNR) LS_GEMM_STEP(0)
#undef LS_GEMM_STEP
#undef LS_FMA_ROW
}

// The twelve accumulators as named locals, acc[2r + h] = c<r><h>: X(name, index) for each.
#define LS_ACC_EACH(X) \
  X(c00, 0) X(c01, 1) X(c10, 2) X(c11, 3) X(c20, 4) X(c21, 5) X(c30, 6) X(c31, 7) X(c40, 8) X(c41, 9) X(c50, 10) X(c51, 11)
#define LS_ACC_ARGS c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51

LS_INLINE void fma_steps(Acc& t, const float* a, const float* b, int64_t n, const float* pf) {
#define LS_FROM_ACC(c, i) __m256 c = t.v[i];
#define LS_TO_ACC(c, i) t.v[i] = c;
  LS_ACC_EACH(LS_FROM_ACC)
  fma_steps_regs(LS_ACC_ARGS, a, b, n, pf);
  LS_ACC_EACH(LS_TO_ACC)
}

// Writes a finished tile: out = acc (+ bias[j]) then (C +) out. Full tiles go straight
// from registers; edge tiles go through a buffer and the shared scalar epilogue, which
// performs the same two additions.
LS_INLINE void finish_tile(const Acc& t, const TileArgs& x) {
  if (!x.full) {
    alignas(32) float buf[kTile];
    acc_store(t, buf);
    epilogue_scalar(buf, x.c, x.ldc, x.mr, x.nr, x.bias, x.accumulate);
    return;
  }
  __m256 bias0 = _mm256_setzero_ps(), bias1 = _mm256_setzero_ps();
  if (x.bias) {
    bias0 = _mm256_loadu_ps(x.bias);
    bias1 = _mm256_loadu_ps(x.bias + 8);
  }
  for (int r = 0; r < kMR; ++r) {
    float* c = x.c + r * x.ldc;
    __m256 o0 = t.v[2 * r], o1 = t.v[2 * r + 1];
    if (x.bias) {
      o0 = _mm256_add_ps(o0, bias0);
      o1 = _mm256_add_ps(o1, bias1);
    }
    if (x.accumulate) {
      o0 = _mm256_add_ps(_mm256_loadu_ps(c), o0);
      o1 = _mm256_add_ps(_mm256_loadu_ps(c + 8), o1);
    }
    _mm256_storeu_ps(c, o0);
    _mm256_storeu_ps(c + 8, o1);
  }
}

}  // namespace

void gemm_tile_avx2(const TileArgs& x) {
  Acc t;
  acc_zero(t);  // free (vxorps), and tells GCC that t is always set
  if (!x.chunked) {
    // Sequential: one fma chain per output over the whole block, continuing the partial.
    if (!x.first) acc_load(t, x.partial);
    fma_steps(t, x.a, x.b, x.kc, x.prefetch);
  } else {
    // Batch-chunked: chunk q covers k in [q*kChunk, (q+1)*kChunk) of this block. The stack
    // holds the finished subtrees older than the newest one; after chunk q has been
    // pushed, their sizes are the binary digits of q+1 (TreeStack::push).
    // The accumulators stay named locals over the whole loop: with an Acc, GCC kept the
    // tile in memory and stored and reloaded it around every chunk (256 x 784 x 128 tn, the
    // MLP's layer-0 grad-weight, on one thread, best of 300 calls: 76 GFLOP/s before, 81
    // after, 90 for the same product in sequential order).
    alignas(32) float stack[kGroupLevels - 1][kTile];
    int depth = 0;
    int64_t nchunks = (x.kc + kChunk - 1) / kChunk;
#define LS_ZERO(c, i) __m256 c = _mm256_setzero_ps();
    LS_ACC_EACH(LS_ZERO)
#undef LS_ZERO
    for (int64_t q = 0; q < nchunks; ++q) {
      int64_t k0 = q * kChunk;
      int64_t len = x.kc - k0 < kChunk ? x.kc - k0 : kChunk;
#define LS_ZERO(c, i) c = _mm256_setzero_ps();
      LS_ACC_EACH(LS_ZERO)
#undef LS_ZERO
      fma_steps_regs(LS_ACC_ARGS, x.a + kMR * k0, x.b + kNR * k0, len, x.prefetch + kNR * k0);
      // Merge equal-sized subtrees: one merge per trailing zero bit of the count (older +
      // newer, TreeStack's operand order).
#define LS_ADD_OLDER(c, i) c = _mm256_add_ps(_mm256_load_ps(older + 8 * i), c);
#define LS_STORE(c, i) _mm256_store_ps(dst + 8 * i, c);
      for (int64_t c = q + 1; (c & 1) == 0; c >>= 1) {
        const float* older = stack[--depth];
        LS_ACC_EACH(LS_ADD_OLDER)
      }
      if (q + 1 < nchunks) {
        float* dst = stack[depth++];
        LS_ACC_EACH(LS_STORE)
      }
    }
    // TreeStack::finish: fold what is left from the right.
    while (depth > 0) {
      const float* older = stack[--depth];
      LS_ACC_EACH(LS_ADD_OLDER)
    }
#undef LS_ADD_OLDER
#undef LS_STORE
    LS_ACC_EACH(LS_TO_ACC)
  }
#undef LS_FROM_ACC
#undef LS_TO_ACC
  if (x.last)
    finish_tile(t, x);
  else
    acc_store(t, x.partial);
}

// Two edge tiles of at most 2 valid rows: x and y share the A strip (rows 0 and 1 used),
// kc, first and last, and take two B strips. Per k: four aligned loads (16 columns of each
// strip), two broadcasts, eight vfmadd231ps: eight independent chains, which keep both fma
// pipes busy where the 6 x 16 kernel would spend a whole step on each 2-row tile (M = 128
// is 21 full strips and a 2-row edge). Every lane is still one output advancing in
// increasing k with one fma per product, from +0.0f or the tile's partial (rows 0 and 1 of
// its kTile buffer; the other rows of an edge tile are never output), then the shared
// scalar epilogue: the same bits as gemm_tile_avx2.
void gemm_tile2_avx2(const TileArgs& x, const TileArgs& y) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c02 = c00, c03 = c00;  // row 0: x, x, y, y
  __m256 c10 = c00, c11 = c00, c12 = c00, c13 = c00;                  // row 1
  if (!x.first) {
    c00 = _mm256_loadu_ps(x.partial), c01 = _mm256_loadu_ps(x.partial + 8);
    c10 = _mm256_loadu_ps(x.partial + kNR), c11 = _mm256_loadu_ps(x.partial + kNR + 8);
    c02 = _mm256_loadu_ps(y.partial), c03 = _mm256_loadu_ps(y.partial + 8);
    c12 = _mm256_loadu_ps(y.partial + kNR), c13 = _mm256_loadu_ps(y.partial + kNR + 8);
  }
  const float *a = x.a, *bx = x.b, *by = y.b, *pf = y.prefetch;
  for (int64_t k = 0; k < x.kc; ++k, a += kMR, bx += kNR, by += kNR) {
    if ((k & 3) == 0) __builtin_prefetch(pf + kNR * (k >> 2), 0, 3);
    __m256 b0 = _mm256_load_ps(bx), b1 = _mm256_load_ps(bx + 8);
    __m256 b2 = _mm256_load_ps(by), b3 = _mm256_load_ps(by + 8);
    __m256 a0 = _mm256_broadcast_ss(a), a1 = _mm256_broadcast_ss(a + 1);
    c00 = _mm256_fmadd_ps(a0, b0, c00), c01 = _mm256_fmadd_ps(a0, b1, c01);
    c02 = _mm256_fmadd_ps(a0, b2, c02), c03 = _mm256_fmadd_ps(a0, b3, c03);
    c10 = _mm256_fmadd_ps(a1, b0, c10), c11 = _mm256_fmadd_ps(a1, b1, c11);
    c12 = _mm256_fmadd_ps(a1, b2, c12), c13 = _mm256_fmadd_ps(a1, b3, c13);
  }
  // Rows 0 and 1 of each tile into its buffer: the partial, or a scratch tile for the epilogue.
  alignas(32) float bufx[2 * kNR], bufy[2 * kNR];
  float* ox = x.last ? bufx : x.partial;
  float* oy = x.last ? bufy : y.partial;
  _mm256_storeu_ps(ox, c00), _mm256_storeu_ps(ox + 8, c01);
  _mm256_storeu_ps(ox + kNR, c10), _mm256_storeu_ps(ox + kNR + 8, c11);
  _mm256_storeu_ps(oy, c02), _mm256_storeu_ps(oy + 8, c03);
  _mm256_storeu_ps(oy + kNR, c12), _mm256_storeu_ps(oy + kNR + 8, c13);
  if (!x.last) return;
  epilogue_scalar(bufx, x.c, x.ldc, x.mr, x.nr, x.bias, x.accumulate);
  epilogue_scalar(bufy, y.c, y.ldc, y.mr, y.nr, y.bias, y.accumulate);
}

// The 8 x 8 transpose by the usual unpack / shuffle / lane-permute network: c[j] holds
// element j of every r[i], in i order.
static inline void transpose8x8(const __m256 r[8], __m256 c[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int h = 0; h < 2; ++h)  // h = 0: rows 0-3, h = 1: rows 4-7
    for (int i = 0; i < 2; ++i) {
      u[4 * h + 2 * i] = _mm256_shuffle_ps(t[4 * h + i], t[4 * h + i + 2], 0x44);
      u[4 * h + 2 * i + 1] = _mm256_shuffle_ps(t[4 * h + i], t[4 * h + i + 2], 0xEE);
    }
  for (int j = 0; j < 4; ++j) {
    c[j] = _mm256_permute2f128_ps(u[j], u[j + 4], 0x20);
    c[j + 4] = _mm256_permute2f128_ps(u[j], u[j + 4], 0x31);
  }
}

void gemm_pack_a_strip_avx2(const float* src, int64_t lda, int64_t kc, float* dst) {
  const float* row[kMR];
  for (int r = 0; r < kMR; ++r) row[r] = src + r * lda;
  int64_t k = 0;
  // 8 values of k at a time: the 6 x 8 block (rows 6 and 7 zero) transposed, giving column
  // c = the kMR values for k + c, stored at dst + (k + c) * kMR. Each 8-wide store spills 2
  // floats into the next column's place, which the next store overwrites; the last column
  // stores 4 + 2.
  //
  // The next strip's rows (the driver packs strips in order) are prefetched a line at a
  // time alongside: each strip starts 6 new stored rows, which the loads here waited on
  // (perf: this function 16% of the GPT's 2048 x 128 x 384 grad-input; with the prefetch
  // 1.09-1.14x that product, 1.04x 2048 x 128 x 512 and 2048 x 384 x 128 nt, squares and
  // the MLP's 128 x 784 x 256 unchanged; thread CPU time, paired, under load). Rows past
  // the block or the matrix are only prefetched, never read.
  for (; k + 8 <= kc; k += 8) {
    __m256 r[8], c[8];
    if ((k & 15) == 0)
      for (int i = 0; i < kMR; ++i) _mm_prefetch(reinterpret_cast<const char*>(row[i] + kMR * lda + k), _MM_HINT_T0);
    for (int i = 0; i < kMR; ++i) r[i] = _mm256_loadu_ps(row[i] + k);
    for (int i = kMR; i < 8; ++i) r[i] = _mm256_setzero_ps();
    transpose8x8(r, c);
    float* d = dst + k * kMR;
    for (int j = 0; j < 7; ++j) _mm256_storeu_ps(d + j * kMR, c[j]);
    _mm_storeu_ps(d + 7 * kMR, _mm256_castps256_ps128(c[7]));
    _mm_storel_pi(reinterpret_cast<__m64*>(d + 7 * kMR + 4), _mm256_extractf128_ps(c[7], 1));
  }
  for (; k < kc; ++k)
    for (int r = 0; r < kMR; ++r) dst[k * kMR + r] = row[r][k];
}

void gemm_pack_b_strip_trans_avx2(const float* src, int64_t ldb, int64_t kb, int64_t ke, float* dst) {
  int64_t k = kb;
  // 8 values of k at a time, for each half (8 columns) of the strip: the 8 x 8 block (row c
  // = stored row c, k .. k + 7) transposed into 8 packed rows of 8 columns, stored at
  // dst + (k + i) * kNR + half.
  for (; k + 8 <= ke; k += 8)
    for (int half = 0; half < kNR; half += 8) {
      const float* s = src + half * ldb + k;
      __m256 r[8], c[8];
      for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(s + i * ldb);
      transpose8x8(r, c);
      float* d = dst + k * kNR + half;
      for (int j = 0; j < 8; ++j) _mm256_storeu_ps(d + j * kNR, c[j]);
    }
  for (; k < ke; ++k)
    for (int c = 0; c < kNR; ++c) dst[k * kNR + c] = src[c * ldb + k];
}

}  // namespace gemm_detail
}  // namespace lockstep
