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
// does not enter the result. The batch-chunked order (each chunk from +0.0f, TreeStack's
// binary counter with the newest subtree in registers and the older ones in a small stack
// in L1, a counter over whole k blocks in the tile's slots) runs either on the whole tile
// one chunk at a time (chunked_tile) or, when TileArgs::pairs, on half a tile (3 x 16) for
// two chunks at once in the same twelve registers, the pair merged in registers
// (chunked_half): a third of the stores, a quarter more loads.
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

// One row of a k step in the asm kernels below: broadcast A's value for row R (at
// immediate offset OA from %[a]) into ymm15 and two vfmadd231ps into the row's
// accumulators C0, C1 with the B row in ymm13 / ymm14.
#define LS_FMA_ROW(R, OA, C0, C1)                         \
  "vbroadcastss %c[" #OA "]+4*" #R "(%[a]), %%ymm15\n\t"   \
  "vfmadd231ps %%ymm13, %%ymm15, %[" #C0 "]\n\t"           \
  "vfmadd231ps %%ymm14, %%ymm15, %[" #C1 "]\n\t"

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
#define LS_GEMM_STEP(K)                                                                   \
  __asm__("vmovaps %c[ob](%[b]), %%ymm13\n\t"                                             \
          "vmovaps %c[ob]+32(%[b]), %%ymm14\n\t"                                          \
          LS_FMA_ROW(0, oa, c00, c01) LS_FMA_ROW(1, oa, c10, c11) LS_FMA_ROW(2, oa, c20, c21) \
          LS_FMA_ROW(3, oa, c30, c31) LS_FMA_ROW(4, oa, c40, c41) LS_FMA_ROW(5, oa, c50, c51) \
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

// Batch-chunked order, half a tile at a time: rows r0 .. r0+2 of the tile (3 x 16 outputs)
// for two chunks at once, chunk 2p in accumulators e and chunk 2p+1 in o (six ymm each).
// Per step: the B row at k (two loads) with the three A values at k, then the B row at
// k + kChunk with the A values there: twelve independent fma chains, each one output of
// one chunk advancing in increasing k from +0.0f, the same order as the 6 x 16 kernel.
// The pair then merges in registers (e = e + o, TreeStack's older + newer), so a k block
// of 2n chunks stores n pair subtrees where the 6 x 16 tile stored 2n - 1 chunk subtrees of
// twice the size: 12 ymm stores per 4 chunks instead of 36 (256 x 784 x 128 tn, one
// thread: the stores were most of the chunked order's cost, docs/benchmarks.md).
LS_INLINE void pair_steps_regs(__m256& e00, __m256& e01, __m256& e10, __m256& e11, __m256& e20, __m256& e21,
                               __m256& o00, __m256& o01, __m256& o10, __m256& o11, __m256& o20, __m256& o21,
                               const float* a, const float* b, int64_t n, const float* pf) {
  // A at a + K*kMR (+ kChunk*kMR for chunk 2p+1), B at b + K*kNR (+ kChunk*kNR).
#define LS_PAIR_STEP(K)                                                                   \
  __asm__("vmovaps %c[ob](%[b]), %%ymm13\n\t"                                             \
          "vmovaps %c[ob]+32(%[b]), %%ymm14\n\t"                                          \
          LS_FMA_ROW(0, oa, e00, e01) LS_FMA_ROW(1, oa, e10, e11) LS_FMA_ROW(2, oa, e20, e21) \
          "vmovaps %c[ob2](%[b]), %%ymm13\n\t"                                            \
          "vmovaps %c[ob2]+32(%[b]), %%ymm14\n\t"                                         \
          LS_FMA_ROW(0, oa2, o00, o01) LS_FMA_ROW(1, oa2, o10, o11) LS_FMA_ROW(2, oa2, o20, o21) \
          : [e00] "+x"(e00), [e01] "+x"(e01), [e10] "+x"(e10), [e11] "+x"(e11),             \
            [e20] "+x"(e20), [e21] "+x"(e21), [o00] "+x"(o00), [o01] "+x"(o01),             \
            [o10] "+x"(o10), [o11] "+x"(o11), [o20] "+x"(o20), [o21] "+x"(o21)              \
          : [a] "r"(a), [b] "r"(b), [oa] "i"(4 * kMR * (K)), [ob] "i"(4 * kNR * (K)),       \
            [oa2] "i"(4 * kMR * ((K) + kChunk)), [ob2] "i"(4 * kNR * ((K) + kChunk))        \
          : "xmm13", "xmm14", "xmm15", "memory");
  int64_t k = 0;
  for (; k + 4 <= n; k += 4, a += 4 * kMR, b += 4 * kNR, pf += kNR) {
    __builtin_prefetch(pf, 0, 3);
    LS_PAIR_STEP(0)
    LS_PAIR_STEP(1)
    LS_PAIR_STEP(2)
    LS_PAIR_STEP(3)
  }
  for (; k < n; ++k, a += kMR, b += kNR) LS_PAIR_STEP(0)
#undef LS_PAIR_STEP
}

// One chunk alone for the same half tile (a chunk without a partner: the last of an odd
// count, or the rest of a full chunk whose partner is shorter): six chains.
LS_INLINE void half_steps_regs(__m256& e00, __m256& e01, __m256& e10, __m256& e11, __m256& e20, __m256& e21,
                               const float* a, const float* b, int64_t n) {
#define LS_HALF_STEP                                                                      \
  __asm__("vmovaps (%[b]), %%ymm13\n\t"                                                   \
          "vmovaps 32(%[b]), %%ymm14\n\t"                                                 \
          LS_FMA_ROW(0, oa, e00, e01) LS_FMA_ROW(1, oa, e10, e11) LS_FMA_ROW(2, oa, e20, e21) \
          : [e00] "+x"(e00), [e01] "+x"(e01), [e10] "+x"(e10), [e11] "+x"(e11),             \
            [e20] "+x"(e20), [e21] "+x"(e21)                                                \
          : [a] "r"(a), [b] "r"(b), [oa] "i"(0)                                            \
          : "xmm13", "xmm14", "xmm15", "memory");
  for (int64_t k = 0; k < n; ++k, a += kMR, b += kNR) LS_HALF_STEP
#undef LS_HALF_STEP
#undef LS_FMA_ROW
}

// The half tile's named accumulators: X(name, row, column half) for each.
#define LS_HALF_EACH(X, p) X(p##00, 0, 0) X(p##01, 0, 1) X(p##10, 1, 0) X(p##11, 1, 1) X(p##20, 2, 0) X(p##21, 2, 1)

// Rows r0 .. r0+2 of a batch-chunked k block (TileArgs: kc values of k from x.k_base, in
// chunks of kChunk), as TreeStack sums all the chunks of K (gemm.h). Pairs of chunks
// (2p, 2p+1) are merged as they finish, and the pair subtrees go through the binary
// counter (sizes 2, 4, ... chunks) on a stack here; an odd last chunk is pushed alone.
// Several k blocks (the driver's k blocks are kGroupChunks chunks, so each but the last
// ends as one subtree): a finished block's subtree goes on to the tile's own counter over
// blocks, slot d at x.partial + d * kTile (rows r0 .. r0+2), popcount(blocks before) of
// them in use. The last block (x.last) folds what is left from the right: its own stack,
// then the blocks' slots, each time older + newer, which is TreeStack's sequence of
// additions; the sum of the whole K goes raw into out (rows r0 .. r0+2 of a kTile buffer).
LS_INLINE void chunked_half(const TileArgs& x, bool last, int r0, int64_t pf_line, float* out) {
  alignas(32) float stack[kGroupLevels512][3 * kNR];  // up to 32 chunks in one block
  int depth = 0;
  const int64_t nchunks = (x.kc + kChunk - 1) / kChunk, npairs = nchunks / 2;
  const float* a = x.a + r0;
#define LS_ZERO(c, r, h) __m256 c = _mm256_setzero_ps();
  LS_HALF_EACH(LS_ZERO, e)
  LS_HALF_EACH(LS_ZERO, o)
#undef LS_ZERO
#define LS_SET_ZERO(c, r, h) c = _mm256_setzero_ps();
#define LS_ADD_OLDER(c, r, h) c = _mm256_add_ps(_mm256_load_ps(older + r * kNR + 8 * h), c);
#define LS_ADD_O(c, r, h) c = _mm256_add_ps(c, o##r##h);
#define LS_STORE(c, r, h) _mm256_store_ps(dst + r * kNR + 8 * h, c);
  for (int64_t p = 0; p < npairs; ++p) {
    const int64_t k0 = 2 * p * kChunk;
    const int64_t len1 = x.kc - k0 - kChunk < kChunk ? x.kc - k0 - kChunk : kChunk;  // chunk 2p+1
    LS_HALF_EACH(LS_SET_ZERO, e)
    LS_HALF_EACH(LS_SET_ZERO, o)
    pair_steps_regs(e00, e01, e10, e11, e20, e21, o00, o01, o10, o11, o20, o21, a + kMR * k0, x.b + kNR * k0,
                    len1, x.prefetch + kNR * (pf_line + p * (kChunk / 4)));
    if (len1 < kChunk)
      half_steps_regs(e00, e01, e10, e11, e20, e21, a + kMR * (k0 + len1), x.b + kNR * (k0 + len1), kChunk - len1);
    LS_HALF_EACH(LS_ADD_O, e)  // chunk 2p (older) + chunk 2p+1
    for (int64_t c = p + 1; (c & 1) == 0; c >>= 1) {
      const float* older = stack[--depth];
      LS_HALF_EACH(LS_ADD_OLDER, e)
    }
    if (p + 1 < npairs || (nchunks & 1)) {
      float* dst = stack[depth++];
      LS_HALF_EACH(LS_STORE, e)
    }
  }
  float* const slots = x.partial + r0 * kNR;
  const int64_t blocks_before = x.k_base / (kGroupChunks * kChunk);
  int used = __builtin_popcountll(static_cast<unsigned long long>(blocks_before));
  if (!last) {
    // A whole block (kGroupChunks chunks, a power of two): e is its subtree. Onto the slots.
    for (int64_t c = blocks_before + 1; (c & 1) == 0; c >>= 1) {
      const float* older = slots + --used * kTile;
      LS_HALF_EACH(LS_ADD_OLDER, e)
    }
    float* dst = slots + used * kTile;
    LS_HALF_EACH(LS_STORE, e)
    return;
  }
  if (nchunks & 1) {
    const int64_t k0 = 2 * npairs * kChunk;
    LS_HALF_EACH(LS_SET_ZERO, e)
    half_steps_regs(e00, e01, e10, e11, e20, e21, a + kMR * k0, x.b + kNR * k0, x.kc - k0);
  }
  while (depth > 0) {  // TreeStack::finish: this block's subtrees, then the blocks'
    const float* older = stack[--depth];
    LS_HALF_EACH(LS_ADD_OLDER, e)
  }
  while (used > 0) {
    const float* older = slots + --used * kTile;
    LS_HALF_EACH(LS_ADD_OLDER, e)
  }
  float* dst = out + r0 * kNR;
  LS_HALF_EACH(LS_STORE, e)
#undef LS_SET_ZERO
#undef LS_ADD_OLDER
#undef LS_ADD_O
#undef LS_STORE
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

// The whole 6 x 16 tile, one chunk at a time: the same additions as chunked_half (chunks
// from +0.0f, TreeStack's binary counter over the block with the newest subtree in the
// twelve registers and the older ones in a small stack, the counter over whole blocks in
// the tile's slots), with 8 loads per 12 fmas but a 12-ymm store per unmerged chunk. Returns
// true with the sum of the whole K in t when x.last.
LS_INLINE bool chunked_tile(const TileArgs& x, Acc& t) {
  alignas(32) float stack[kGroupLevels512][kTile];  // up to 32 chunks in one block
  int depth = 0;
  const int64_t nchunks = (x.kc + kChunk - 1) / kChunk;
#define LS_ZERO(c, i) __m256 c = _mm256_setzero_ps();
  LS_ACC_EACH(LS_ZERO)
#undef LS_ZERO
#define LS_SET_ZERO(c, i) c = _mm256_setzero_ps();
#define LS_ADD_OLDER(c, i) c = _mm256_add_ps(_mm256_load_ps(older + 8 * i), c);
#define LS_STORE(c, i) _mm256_store_ps(dst + 8 * i, c);
  // The accumulators stay named locals over the whole loop: with an Acc, GCC kept the tile
  // in memory and stored and reloaded it around every chunk.
  for (int64_t q = 0; q < nchunks; ++q) {
    const int64_t k0 = q * kChunk;
    const int64_t len = x.kc - k0 < kChunk ? x.kc - k0 : kChunk;
    LS_ACC_EACH(LS_SET_ZERO)
    fma_steps_regs(LS_ACC_ARGS, x.a + kMR * k0, x.b + kNR * k0, len, x.prefetch + kNR * k0);
    for (int64_t c = q + 1; (c & 1) == 0; c >>= 1) {  // older + newer, TreeStack's order
      const float* older = stack[--depth];
      LS_ACC_EACH(LS_ADD_OLDER)
    }
    if (q + 1 < nchunks) {
      float* dst = stack[depth++];
      LS_ACC_EACH(LS_STORE)
    }
  }
  const int64_t blocks_before = x.k_base / (kGroupChunks * kChunk);
  int used = __builtin_popcountll(static_cast<unsigned long long>(blocks_before));
  if (!x.last) {
    // A whole block (kGroupChunks chunks, a power of two) is one subtree: onto the slots.
    for (int64_t c = blocks_before + 1; (c & 1) == 0; c >>= 1) {
      const float* older = x.partial + --used * kTile;
      LS_ACC_EACH(LS_ADD_OLDER)
    }
    float* dst = x.partial + used * kTile;
    LS_ACC_EACH(LS_STORE)
    return false;
  }
  while (depth > 0) {  // TreeStack::finish: this block's subtrees, then the blocks'
    const float* older = stack[--depth];
    LS_ACC_EACH(LS_ADD_OLDER)
  }
  while (used > 0) {
    const float* older = x.partial + --used * kTile;
    LS_ACC_EACH(LS_ADD_OLDER)
  }
#undef LS_SET_ZERO
#undef LS_ADD_OLDER
#undef LS_STORE
  LS_ACC_EACH(LS_TO_ACC)
  return true;
}

void gemm_tile_avx2(const TileArgs& x) {
  Acc t;
  acc_zero(t);  // free (vxorps), and tells GCC that t is always set
  if (!x.chunked) {
    // Sequential: one fma chain per output over the whole block, continuing the partial.
    if (!x.first) acc_load(t, x.partial);
    fma_steps(t, x.a, x.b, x.kc, x.prefetch);
  } else if (!x.pairs) {
    if (!chunked_tile(x, t)) return;
  } else {
    // Batch-chunked in pairs: rows 0-2 then rows 3-5 (chunked_half); the sum of the whole
    // K goes through a buffer into the epilogue. Rows 3-5 of an edge tile of at most 3 rows
    // are only zeros of the packed A: skipped (their buffer rows zeroed).
    // (x.last read once: the asm's memory clobbers would make GCC reload it, and then it
    // could not tell that buf is written whenever it is read.)
    alignas(32) float buf[kTile];
    const bool last = x.last;
    const int64_t pair_lines = (x.kc + 2 * kChunk - 1) / (2 * kChunk) * (kChunk / 4);
    chunked_half(x, last, 0, 0, buf);
    if (x.mr > 3) {
      chunked_half(x, last, 3, pair_lines, buf);
    } else if (last) {
#pragma GCC unroll 6
      for (int i = 0; i < 6; ++i) _mm256_store_ps(buf + 3 * kNR + 8 * i, _mm256_setzero_ps());
    }
    if (!last) return;
    acc_load(t, buf);
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
