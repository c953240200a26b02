// Shared between gemm_cpu.cpp (driver, packing, scalar micro-kernel), gemm_avx2.cpp
// (AVX2+FMA micro-kernel) and gemm_avx512.cpp (AVX-512F group kernel). Not a public header.
//
// Packed layouts (written by gemm_cpu.cpp, read by both micro-kernels):
//   A strip: kMR rows of op(A) for kc values of k, k-major: a[k * kMR + r]; rows past M are 0.
//   B strip: kNR columns of op(B) for kc values of k, k-major: b[k * kNR + c]; columns past N are 0.
// A micro-kernel call owns one kMR x kNR output tile for one block of k and never touches
// any other tile, so threads that split the tiles never share a sum.
//
// The inline helpers have internal linkage: this header is compiled both with and without
// -mavx2, and a shared inline symbol could let the linker pick the AVX2 copy for the
// scalar path.
#pragma once
#include <cstdint>

#include "kernels/gemm.h"

namespace lockstep {
namespace gemm_detail {

constexpr int kMR = 6;                   // rows of the register tile
constexpr int kNR = 16;                  // columns of the register tile: two ymm registers
constexpr int kTile = kMR * kNR;         // floats in one tile buffer (row-major, stride kNR)
constexpr int kChunk = 32;               // kBatchChunk, checked in gemm_cpu.cpp
constexpr int kGroupChunks = 8;          // chunks per k block in batch_chunked order
constexpr int kGroupLevels = 4;          // log2(kGroupChunks) + 1 slots of the group tree
constexpr int kGroupChunks512 = 16;      // the same for the AVX-512 group kernel
constexpr int kGroupLevels512 = 5;

// One micro-kernel call: tile += op(A)[rows, k block] * op(B)[k block, cols].
struct TileArgs {
  const float* a;      // packed A strip, kc x kMR
  const float* b;      // packed B strip, kc x kNR
  // Floats between consecutive rows of b (and of prefetch): kNR when packed. Only the
  // AVX-512 group kernel takes another stride: B read in place, kNR columns of each stored
  // row (64-byte aligned rows; the driver decides, gemm_cpu.cpp).
  int64_t ldb = kNR;
  int64_t kc;          // k values in this block (>= 1)
  bool chunked;        // KOrder::batch_chunked
  // Batch-chunked, AVX2 kernel: two chunks at a time on half the tile (fewer stores, more
  // loads; gemm_avx2.cpp), else the whole tile one chunk at a time. The same bits.
  bool pairs = false;
  // Batch-chunked, AVX-512 group kernel: the block's first k in the whole K (a multiple of
  // kChunk), i.e. where the block's chunks sit in the canonical tree.
  int64_t k_base = 0;
  // Sequential order: the sum starts at +0.0f when `first`, else continues from `partial`.
  // Batch-chunked order: the block's chunks are summed from +0.0f each and combined by the
  // canonical tree over the block (at most kGroupChunks chunks, kGroupChunks512 for the
  // AVX-512 group kernel); `first` is ignored.
  bool first;
  // The result goes through the epilogue into C when `last`, else it is stored raw into
  // `partial` (a kTile buffer, row stride kNR, 32-byte aligned). Batch-chunked over several
  // k blocks, the SIMD kernels keep their own tree there instead (Plan::group_tree: the
  // AVX2 kernel a counter over whole blocks of kGroupChunks chunks, ceil(log2(blocks)) + 1
  // tiles; the AVX-512 one a stack over all chunks, per group) and `last` ends it in C; the
  // scalar and NEON kernels store the block's subtree for the driver's TreeStack.
  bool last;
  float* partial;
  // Epilogue: out = acc; if (bias) out = out + bias[j]; if (accumulate) out = C + out.
  float* c;            // C at the tile's top-left corner
  int64_t ldc;
  int mr, nr;          // valid rows / columns of this tile (edge tiles are smaller)
  // mr == kMR && nr == kNR. A flag of its own: GCC compares mr and nr as one 8-byte load,
  // which cannot be forwarded from the driver's two 4-byte stores just before the call
  // (perf: a ~20-cycle stall per tile, 2-3% of a 512^3 product).
  bool full;
  const float* bias;   // bias at the tile's first column, or null
  bool accumulate;
  // The AVX-512 group kernel prefetches one cache line per 4 k steps from here on, ldb
  // floats apart (the next B strip); prefetching is only a hint, so any address will do.
  const float* prefetch;
};

using TileKernel = void (*)(const TileArgs&);

namespace {

// The epilogue on a finished tile held in a kTile buffer, one element at a time.
// Both micro-kernels use it for edge tiles; the driver uses it after a tree finish.
inline void epilogue_scalar(const float* acc, float* c, int64_t ldc, int mr, int nr,
                            const float* bias, bool accumulate) {
  for (int r = 0; r < mr; ++r)
    for (int j = 0; j < nr; ++j) {
      float out = acc[r * kNR + j];
      if (bias) out = out + bias[j];
      if (accumulate) out = c[r * ldc + j] + out;
      c[r * ldc + j] = out;
    }
}

// A tile whose call ends in C: its rows requested at the start of the call, one cache line
// per row (two when a row is not 64-byte aligned), so that the epilogue's stores do not
// wait for them at the end. Used by the AVX-512 group kernel for the rows its k loop
// cannot spread (it asks for one row per 4 k steps inside the loop: a burst of 30 of
// these before the loop stalled it, 8% of a 512^3 product; docs/benchmarks.md, issue 21);
// the AVX2 kernel measured no different with it. Only a hint: no result depends on it.
inline void prefetch_c_rows(const TileArgs& x) {
  for (int r = 0; r < x.mr; ++r) {
    const char* row = reinterpret_cast<const char*>(x.c + r * x.ldc);
    __builtin_prefetch(row, 1, 3);
    if (reinterpret_cast<uintptr_t>(row) & 63) __builtin_prefetch(row + sizeof(float) * x.nr - 1, 1, 3);
  }
}

}  // namespace

// Defined in gemm_avx2.cpp; call only when ex.avx2().
void gemm_tile_avx2(const TileArgs& t);
// Two tiles of at most 2 valid rows (mr <= 2), one A strip and two B strips (x.b, y.b),
// sequential order only; x and y differ only in b, c, partial, nr, bias and prefetch.
// gemm_avx2.cpp; call only when ex.avx2().
void gemm_tile2_avx2(const TileArgs& x, const TileArgs& y);
// Defined in gemm_neon.cpp (aarch64); call only when ex.neon().
void gemm_tile_neon(const TileArgs& t);
// Defined in gemm_avx512.cpp; call only when ex.avx512(). One call computes
// na (1 <= na <= kGroupA) tiles t[0..na) of consecutive A strips and one B strip, with the
// same b, kc, chunked, first and last; edge tiles (mr < kMR or nr < kNR) are allowed.
constexpr int kGroupA = 5;
void gemm_group_avx512(const TileArgs* t, int na);
// Packs one full A strip: kMR stored rows (src, row stride lda) of kc values each, into
// dst[k * kMR + r]. A copy, so it gives the same bits as the scalar packing.
void gemm_pack_a_strip_avx2(const float* src, int64_t lda, int64_t kc, float* dst);
// Packs rows [kb, ke) of one full strip of a transposed B: kNR stored rows (src, row stride
// ldb) read at k in [kb, ke), into dst[k * kNR + c] (dst is the strip's start). A copy.
void gemm_pack_b_strip_trans_avx2(const float* src, int64_t ldb, int64_t kb, int64_t ke, float* dst);

// Fast mode: Eigen's GEMM built for AVX2+FMA (gemm_fast_avx2.cpp; ex.avx2() only)
// and for AVX-512 (gemm_fast_avx512.cpp; ex.avx512() only).
void gemm_eigen_avx2(const GemmArgs& g, int threads);
void gemm_eigen_avx512(const GemmArgs& g, int threads);

#ifdef LOCKSTEP_GEMM_EIGEN
// Eigen's GEMM on the stored layouts, threaded by Eigen's OpenMP loop. Defined by the files
// that build Eigen's GEMM: gemm_fast_avx2.cpp and gemm_fast_avx512.cpp, each with Eigen's
// namespace renamed so that their instantiations cannot merge, or gemm_fast_cpu.cpp in a
// build without AVX2.
namespace {

using EigenRowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using EigenStride = Eigen::Stride<Eigen::Dynamic, 1>;

template <typename OpA, typename OpB>
void eigen_product(const GemmArgs& g, const OpA& a, const OpB& b) {
  Eigen::Map<EigenRowMajor, 0, EigenStride> c(g.C, g.M, g.N, EigenStride(g.ldc, 1));
  if (g.accumulate)
    c.noalias() += a * b;
  else
    c.noalias() = a * b;
  if (g.bias) c.rowwise() += Eigen::Map<const Eigen::RowVectorXf>(g.bias, g.N);
}

inline void eigen_gemm(const GemmArgs& g, int threads) {
  using ConstMap = Eigen::Map<const EigenRowMajor, 0, EigenStride>;
  Eigen::setNbThreads(threads);
  // The stored matrices: A is M x K (K x M when trans_a), B is K x N (N x K when trans_b).
  ConstMap a(g.A, g.trans_a ? g.K : g.M, g.trans_a ? g.M : g.K, EigenStride(g.lda, 1));
  ConstMap b(g.B, g.trans_b ? g.N : g.K, g.trans_b ? g.K : g.N, EigenStride(g.ldb, 1));
  if (!g.trans_a && !g.trans_b) eigen_product(g, a, b);
  if (!g.trans_a && g.trans_b) eigen_product(g, a, b.transpose());
  if (g.trans_a && !g.trans_b) eigen_product(g, a.transpose(), b);
  if (g.trans_a && g.trans_b) eigen_product(g, a.transpose(), b.transpose());
}

}  // namespace
#endif

}  // namespace gemm_detail
}  // namespace lockstep
