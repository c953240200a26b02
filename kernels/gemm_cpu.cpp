// Deterministic CPU GEMM: packing, cache blocking, threading, the scalar micro-kernel, the
// float64 version and the plain-loop reference. The AVX2 micro-kernel is gemm_avx2.cpp, the
// AVX-512 group kernel (up to kGroupA row strips of one B strip per call) gemm_avx512.cpp,
// the aarch64 NEON micro-kernel gemm_neon.cpp.
//
// Threads: one parallel_for per call. Each thread owns a fixed rectangle of whole output
// tiles: a range of kMR-row strips when M >= N, else a range of kNR-column strips (static
// partition). op(B) is packed once per call into kNR-wide strips (K x kNR each) shared by
// all threads; a (group of strips, k block) piece is packed by whichever thread needs it
// first, claimed with an atomic flag, so there is no barrier and no thread ever waits
// for one that has not started (nested, serial parallel_for included). Exception: a plain
// B used by one row block is read in place by the AVX-512 kernel (see gemm_float). Each
// thread packs the A blocks of its own rows; in the column split on several threads op(A)
// is packed once for the call instead and shared, claimed the same way (ensure_a_packed).
// Memory per call: the packed op(B), K x ceil(N/16)*16 floats (plus the shared op(A), at
// most kSharedAFloats), and per thread one A block and the partial sums of one row block
// of a panel.
// Blocking inside a thread's rectangle (Goto/BLIS style, loops from the outside in):
//   jc: panels of nc columns, nc chosen so a panel of packed B stays L3-resident.
//   ic: blocks of kMC rows; pc: k blocks of at most kKC (sequential order: kKC512 for the
//       AVX-512 kernel, kKCAvx2 for the AVX2 one). The A block (mc x kc, in L2) is packed
//       per (ic, pc).
//   jr, ir: kNR-column strips, then kMR-row strips: one micro-kernel call per tile (AVX-512:
//       per group of up to kGroupA tiles), with the B strip (kc x kNR, 16 KiB; up to 64 KiB
//       for the deeper k blocks) staying close across the ir loop.
// Reduction order (gemm.h): a tile is only ever summed by its owning thread, over
// pc = 0, 1, ... in increasing k. Between k blocks a sequential partial waits in a
// per-thread workspace and continues from there, so blocking never changes the bits.
// In batch-chunked order a k block is kGroupChunks chunks (kGroupChunks512 for the AVX-512
// group kernel), an aligned subtree of the canonical tree; the micro-kernel returns the
// block's subtree and a per-tile TreeStack combines the blocks, which gives exactly
// tree_sum over all chunks. The SIMD kernels combine the blocks themselves instead
// (Plan::group_tree): the AVX-512 group kernel keeps one chunk stack per group over all
// blocks, the AVX2 kernel a counter over the blocks' subtrees per tile (the same tree).
#include <algorithm>
#include <atomic>
#include <cassert>
#include <cmath>
#include <cstring>
#include <memory>
#include <thread>
#include <type_traits>
#include <vector>

#include "base/parallel.h"
#include "kernels/gemm.h"
#include "kernels/gemm_internal.h"
#include "kernels/gemm_pack.h"
#include "kernels/gemm_rows.h"
#include "kernels/memory.h"
#include "kernels/reduce_order.h"
#include "lockstep/config.h"

namespace lockstep {
namespace {

using namespace gemm_detail;

// Zen4 sizes (32 KiB L1d, 1 MiB L2 per core, L3 shared); see docs/benchmarks.md.
constexpr int64_t kMC = 144;                  // A block kMC x kKC = 144 KiB, in L2
constexpr int64_t kMC512 = 150;               // AVX-512: whole groups of kGroupA strips
// AVX-512, sequential order: B strip 64 KiB (L2), A block 600 KiB (of a 2 MiB L2). Against
// 512: 1024^3 1.04-1.09x, 512 x 512 x 1024 1.06-1.07x, 128 x 256 x 784 (nt, the MLP's
// forward, one block instead of two) 1.02-1.07x, 2048^3 1.0-1.02x (thread CPU time, paired,
// under load; docs/benchmarks.md, issue 21).
constexpr int64_t kKC512 = 1024;
constexpr int64_t kInPlaceAFloats = kMC512 * 512;  // a larger A block when B is read in place
constexpr int64_t kKC = 256;                  // B strip kKC x kNR = 16 KiB, in L1
// AVX2 kernel, sequential order: k blocks of up to 1024 (B strip up to 64 KiB, read from L2
// alongside the A strip), the A block kept to about 432 KiB of the L2 by fewer rows. Fewer
// blocks, fewer partials stored and reloaded between them. Against 256 x 144, thread CPU
// time, paired call by call on Zen 3 (docs/benchmarks.md, branch gemm21f): 128 x 256 x 784
// nt 1.04x (1 and 2 threads), 1024^3 1.03x, 2048^3 1.01x, 512^3 and 128 x 784 x 256 1.00x.
constexpr int64_t kKCAvx2 = 1024;
constexpr int64_t kABlockAvx2 = 144 * 768;    // floats
constexpr int64_t kPanelBytes = 8 << 20;      // packed B per column panel (K x nc), in L3
constexpr int64_t kClaimStrips = 8;           // B strips packed per claim (512 B per row read)
constexpr int64_t kClaimAStrips = 5;          // A strips packed per claim (shared A: one group)
constexpr int64_t kSharedAFloats = 4 << 20;   // largest op(A) packed once and shared (16 MiB)
// Work per thread below which another thread does not pay: ~9 us of fma at full speed,
// against a hand-off of about 1 us to a spinning pool worker (base/parallel.cpp; a sleeping
// one takes 30-45 us on the 2-vCPU VM).
constexpr int64_t kMinFmasPerTask = 1 << 20;

static_assert(kChunk == kBatchChunk, "gemm_internal.h copies kBatchChunk");
static_assert(kKC == kGroupChunks * kChunk, "a batch-chunked k block is one aligned subtree");
static_assert((1 << (kGroupLevels - 1)) == kGroupChunks, "group tree depth");
constexpr int64_t kKC512Chunked = kGroupChunks512 * kChunk;  // AVX-512, batch-chunked order
static_assert((1 << (kGroupLevels512 - 1)) == kGroupChunks512, "AVX-512 group tree depth");

// A 64-byte aligned float buffer (host_alloc) for one call; freed on scope exit. (Keeping
// buffers between calls measured no faster: the allocator hands the same memory back.)
struct FloatBuffer {
  std::unique_ptr<float, void (*)(void*)> p;
  explicit FloatBuffer(int64_t n) : p(static_cast<float*>(host_alloc(sizeof(float) * n)), host_free) {}
  float* get() const { return p.get(); }
};

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Smallest L with 2^L >= n: the TreeStack over n partials needs L + 1 slots.
int64_t ceil_log2(int64_t n) {
  int64_t l = 0;
  while ((int64_t{1} << l) < n) ++l;
  return l;
}

// What every thread needs to know about one call: the operands, the order and the k
// blocking (shared by all threads, so every tile is blocked the same way), the kernel,
// and the shared packed B with its claim flags.
struct Plan {
  const GemmArgs* g;
  bool avx2;         // ex.avx2(): the AVX2 A-strip packing
  bool chunked;
  bool pairs;        // TileArgs::pairs
  int64_t kc;        // k block size: all blocks but the last have kc values of k
  int64_t nk;        // number of k blocks
  int64_t slots;     // workspace tiles per output tile (0 when nk == 1)
  // Batch-chunked, several k blocks, SIMD kernels: the kernel combines the blocks itself,
  // no per-tile TreeStack. AVX-512: each group of row strips keeps one stack of chunk
  // subtrees over the whole K (slots levels of kGroupA tiles, back to back;
  // gemm_group_avx512). AVX2: each tile a counter over the blocks' subtrees (slots tiles;
  // gemm_tile_avx2).
  bool group_tree;
  TileKernel kernel;
  // AVX-512: up to group_a tiles of one B strip per call (gemm_group_avx512); 1: none.
  int group_a;
  int64_t mc;        // rows per A block
  float* b_packed;   // strip s of op(B) at b_packed + s * K * kNR
  int64_t n_strips;  // ceil(N / kNR)
  // Strips [0, first_packed) are read in place from B (b_in_place), the others packed.
  int64_t first_packed;
  int64_t panel_strips;
  // Strips per claim of the packed B (kClaimStrips, fewer when the threads of a row split
  // would otherwise find only one or two groups to share).
  int64_t claim_strips;
  // Claim flag of (strip group q, k block pc) at b_ready[q * nk + pc]:
  // 0 not packed, 1 being packed, 2 packed.
  std::atomic<uint8_t>* b_ready;
  // Column split over several threads: op(A) packed once for the call into a_shared,
  // shared by all threads like B (null: each thread packs its own A blocks). Row block
  // r = ic / mc, k block pc at a_shared + r * a_stride * K + k0 * a_stride (a_stride = mc
  // rounded up to whole strips); claim flag of (r, pc, strip group q) at
  // a_ready[(r * nk + pc) * a_groups + q], kClaimAStrips strips per group.
  float* a_shared = nullptr;
  int64_t a_stride = 0;
  int64_t a_groups = 0;
  std::atomic<uint8_t>* a_ready = nullptr;
};

// The portable micro-kernel: same contract, layouts and order as gemm_tile_avx2 (one
// std::fma per product, lanes independent), so the two give the same bits.
void fma_steps_scalar(float* acc, const float* a, const float* b, int64_t n) {
  for (int64_t k = 0; k < n; ++k)
    for (int r = 0; r < kMR; ++r)
      for (int j = 0; j < kNR; ++j)
        acc[r * kNR + j] = std::fma(a[k * kMR + r], b[k * kNR + j], acc[r * kNR + j]);
}

void gemm_tile_scalar(const TileArgs& x) {
  assert(x.ldb == kNR);  // packed B only
  float acc[kTile];
  if (!x.chunked) {
    if (x.first)
      std::fill(acc, acc + kTile, 0.0f);
    else
      std::copy(x.partial, x.partial + kTile, acc);
    fma_steps_scalar(acc, x.a, x.b, x.kc);
  } else {
    // Each chunk is summed from +0.0f straight into the tree's next slot.
    float storage[kGroupLevels * kTile];
    TreeStack<float> tree(storage, kTile);
    for (int64_t k0 = 0; k0 < x.kc; k0 += kChunk) {
      float* p = tree.next();
      std::fill(p, p + kTile, 0.0f);
      fma_steps_scalar(p, x.a + kMR * k0, x.b + kNR * k0, std::min<int64_t>(kChunk, x.kc - k0));
      tree.push();
    }
    const float* sum = tree.finish();
    std::copy(sum, sum + kTile, acc);
  }
  // Finished: epilogue into C. Not finished: the raw partial waits for the next k block.
  if (x.last)
    epilogue_scalar(acc, x.c, x.ldc, x.mr, x.nr, x.bias, x.accumulate);
  else
    std::copy(acc, acc + kTile, x.partial);
}

// op(A)[i, k] and op(B)[k, j] in the stored layouts.
inline float op_a(const GemmArgs& g, int64_t i, int64_t k) {
  return g.trans_a ? g.A[k * g.lda + i] : g.A[i * g.lda + k];
}
inline float op_b(const GemmArgs& g, int64_t k, int64_t j) {
  return g.trans_b ? g.B[j * g.ldb + k] : g.B[k * g.ldb + j];
}

// Packs rows [kb, ke) of the panel op(B)[0..K, jc .. jc + n_jr*kNR), laid out as n_jr
// strips of K x kNR (row k of strip s at dst + (s*K + k)*kNR), zero columns past N. Loops
// run along the stored rows so that reads are sequential (measured: 1.7x faster than one
// strip at a time on 2048^2).
void pack_b_panel(const GemmArgs& g, int64_t jc, int64_t n_jr, int64_t kb, int64_t ke, float* dst, bool avx2) {
  auto strip_width = [&](int64_t s) { return std::min<int64_t>(kNR, g.N - jc - s * kNR); };
  if (!g.trans_b) {
    // B is K x N: a stored row crosses every strip; take 8 rows at a time so each
    // strip receives 8 consecutive packed rows (512 contiguous bytes).
    for (int64_t k0 = kb; k0 < ke; k0 += 8)
      for (int64_t s = 0; s < n_jr; ++s) {
        int64_t nr = strip_width(s);
        for (int64_t k = k0; k < std::min(ke, k0 + 8); ++k) {
          const float* src = g.B + k * g.ldb + jc + s * kNR;
          float* out = dst + (s * g.K + k) * kNR;
          // The same strip 8 rows on, read in the next pass over the strips (perf: the
          // loads below were the panel's hottest line, waiting on L3).
          if (k + 8 < ke) __builtin_prefetch(src + 8 * g.ldb);
          // Fixed-size memcpy for full strips: four vector moves, no call.
          if (nr == kNR)
            std::memcpy(out, src, sizeof(float) * kNR);
          else
            for (int c = 0; c < kNR; ++c) out[c] = c < nr ? src[c] : 0.0f;
        }
      }
    return;
  }
  // B is N x K: a strip is the transpose of kNR stored rows, done in 16 x 16 blocks
  // (1 KiB each way, in L1); missing columns of an edge strip stay zero. Full strips with
  // AVX2: 8 x 8 register transposes (perf: the scalar loop was ~25% of the MLP's forward
  // product, 128 x 256 x 784 with B = W stored 256 x 784).
  for (int64_t s = 0; s < n_jr; ++s) {
    int64_t nr = strip_width(s);
    const float* src = g.B + (jc + s * kNR) * g.ldb;
    float* out = dst + s * g.K * kNR;
#if LOCKSTEP_HAVE_AVX2
    if (avx2 && nr == kNR) {
      gemm_pack_b_strip_trans_avx2(src, g.ldb, kb, ke, out);
      continue;
    }
#endif
    if (nr < kNR) std::fill(out + kb * kNR, out + ke * kNR, 0.0f);
    for (int64_t k0 = kb; k0 < ke; k0 += 16)
      for (int64_t c = 0; c < nr; ++c)
        for (int64_t k = k0; k < std::min(ke, k0 + 16); ++k) out[k * kNR + c] = src[c * g.ldb + k];
  }
}

// Packs op(A)[i0..i0+mc, k0..k0+kc) as ceil(mc / kMR) strips of kc x kMR, zero rows past
// mc. Reads run along the stored rows (1.8x faster than row by row on 2048^2).
void pack_a_block(const Plan& p, int64_t i0, int64_t mc, int64_t k0, int64_t kc, float* dst) {
  const GemmArgs& g = *p.g;
  int64_t n_ir = ceil_div(mc, kMR);
  if (g.trans_a) {
    // A is K x M: stored row k holds the kMR values of every strip for that k.
    int64_t full = mc / kMR;
#if LOCKSTEP_HAVE_AVX2
    // The full strips 8 stored rows at a time (gemm_pack.h; perf: the row-at-a-time loop
    // was 17% of the GPT's grad-weight 384 x 128 x 2048, now 1.15-1.17x faster in all).
    if (p.avx2) {
      gemm_pack_a_trans_avx2(g.A + k0 * g.lda + i0, g.lda, full, g.M - i0, kc, dst);
      for (int64_t k = 0; full < n_ir && k < kc; ++k) {
        const float* src = g.A + (k0 + k) * g.lda + i0 + full * kMR;
        for (int64_t r = 0; r < kMR; ++r) dst[(full * kc + k) * kMR + r] = full * kMR + r < mc ? src[r] : 0.0f;
      }
      return;
    }
#endif
    for (int64_t k = 0; k < kc; ++k) {
      const float* src = g.A + (k0 + k) * g.lda + i0;
      // Each k starts a new stored row (often a new page): ask for row k + 8 now
      // (measured: trans_a at 2048^3, 99 vs 86 GFLOP/s best of 4).
      if (k + 8 < kc)
        for (int64_t c = 0; c < mc; c += 16) __builtin_prefetch(src + 8 * g.lda + c);
      for (int64_t s = 0; s < full; ++s)
        for (int r = 0; r < kMR; ++r) dst[(s * kc + k) * kMR + r] = src[s * kMR + r];  // no memmove call
      for (int64_t r = 0; full < n_ir && r < kMR; ++r)
        dst[(full * kc + k) * kMR + r] = full * kMR + r < mc ? src[full * kMR + r] : 0.0f;
    }
    return;
  }
  // A is M x K: a strip interleaves kMR stored rows, read side by side in increasing k.
  for (int64_t s = 0; s < n_ir; ++s, dst += kc * kMR) {
    int64_t mr = std::min<int64_t>(kMR, mc - s * kMR);
    const float* src = g.A + (i0 + s * kMR) * g.lda + k0;
    if (mr < kMR) {
      for (int64_t k = 0; k < kc; ++k)
        for (int64_t r = 0; r < kMR; ++r) dst[k * kMR + r] = r < mr ? src[r * g.lda + k] : 0.0f;
      continue;
    }
#if LOCKSTEP_HAVE_AVX2
    // Full strip: 6 x 8 register transposes (measured: 3x the scalar loop below).
    if (p.avx2) {
      gemm_pack_a_strip_avx2(src, g.lda, kc, dst);
      continue;
    }
#endif
    // Full strip: six row pointers, no per-element test.
    static_assert(kMR == 6, "one pointer per row of the strip");
    const float *r0 = src, *r1 = r0 + g.lda, *r2 = r1 + g.lda, *r3 = r2 + g.lda, *r4 = r3 + g.lda, *r5 = r4 + g.lda;
    for (int64_t k = 0; k < kc; ++k) {
      float* d = dst + k * kMR;
      d[0] = r0[k], d[1] = r1[k], d[2] = r2[k], d[3] = r3[k], d[4] = r4[k], d[5] = r5[k];
    }
  }
}

// Makes rows [k0, k0 + kc) (k block pc) of strips [s0, s1) available in the packed B.
// A group of claim_strips strips that nobody has claimed is packed here; one that
// another thread is packing right now is waited for after our own packing is done. A
// thread only waits for a packer that is running, so this cannot deadlock. The thread
// whose rows start at i0 begins at the group i0 / M of the way along, so that the threads
// of a row split, which all need every strip, start on different groups.
void ensure_b_packed(const Plan& p, int64_t s0, int64_t s1, int64_t pc, int64_t k0, int64_t kc, int64_t i0) {
  const GemmArgs& g = *p.g;
  s0 = std::max(s0, p.first_packed);
  int64_t q0 = s0 / p.claim_strips, q1 = ceil_div(s1, p.claim_strips);
  if (q1 <= q0) return;
  int64_t start = (q1 - q0) * i0 / g.M;
  for (int pass = 0; pass < 2; ++pass)
    for (int64_t j = 0; j < q1 - q0; ++j) {
      int64_t q = q0 + (start + j) % (q1 - q0);
      std::atomic<uint8_t>& flag = p.b_ready[q * p.nk + pc];
      if (flag.load(std::memory_order_acquire) == 2) continue;
      uint8_t expected = 0;
      if (pass == 0 && flag.compare_exchange_strong(expected, 1, std::memory_order_acquire)) {
        int64_t first = std::max(q * p.claim_strips, p.first_packed);
        int64_t n = std::min((q + 1) * p.claim_strips, p.n_strips) - first;
        pack_b_panel(g, first * kNR, n, k0, k0 + kc, p.b_packed + first * g.K * kNR, p.avx2);
        flag.store(2, std::memory_order_release);
      } else if (pass == 1) {
        while (flag.load(std::memory_order_acquire) != 2) std::this_thread::yield();
      }
    }
}

// The shared packed A block of rows [ic, ic + mc), k block pc: groups of kClaimAStrips
// strips claimed and packed as in ensure_b_packed (a thread waits only for a packer that
// is running). Each group is what pack_a_block would write there for the whole block, so
// the packed values, and every sum, are the same as with a thread's own A block.
const float* ensure_a_packed(const Plan& p, int64_t ic, int64_t mc, int64_t pc, int64_t k0, int64_t kc) {
  int64_t r = ic / p.mc;
  float* block = p.a_shared + r * p.a_stride * p.g->K + k0 * p.a_stride;
  int64_t n_q = ceil_div(ceil_div(mc, kMR), kClaimAStrips);
  std::atomic<uint8_t>* flags = p.a_ready + (r * p.nk + pc) * p.a_groups;
  for (int pass = 0; pass < 2; ++pass)
    for (int64_t q = 0; q < n_q; ++q) {
      std::atomic<uint8_t>& flag = flags[q];
      if (flag.load(std::memory_order_acquire) == 2) continue;
      uint8_t expected = 0;
      if (pass == 0 && flag.compare_exchange_strong(expected, 1, std::memory_order_acquire)) {
        int64_t row0 = q * kClaimAStrips * kMR;
        pack_a_block(p, ic + row0, std::min(kClaimAStrips * kMR, mc - row0), k0, kc, block + row0 * kc);
        flag.store(2, std::memory_order_release);
      } else if (pass == 1) {
        while (flag.load(std::memory_order_acquire) != 2) std::this_thread::yield();
      }
    }
  return block;
}

// Rows [i0, i1) of the column panel made of strips [s0, s1). B is packed one k block at a
// time during the first row block, just before that block uses it, so it is still in L2
// then (measured: +6% at 128 x 256 x 784); later row blocks read it from L3.
void compute_panel(const Plan& p, int64_t s0, int64_t s1, int64_t i0, int64_t i1) {
  const GemmArgs& g = *p.g;
  int64_t n_jr = s1 - s0, jc = s0 * kNR;
  const float* bp = p.b_packed + s0 * g.K * kNR;
  int64_t max_ir = ceil_div(std::min(p.mc, i1 - i0), kMR);
  max_ir = ceil_div(max_ir, p.group_a) * p.group_a;  // whole groups (group_tree's stacks)
  FloatBuffer a_buffer(p.a_shared ? 1 : p.mc * p.kc);
  const float* a_pack = a_buffer.get();
  // Partials between k blocks: `slots` tiles per output tile, tile t = jr * n_ir + ir.
  FloatBuffer work_buffer(std::max<int64_t>(1, max_ir * n_jr * p.slots * kTile));
  float* work = work_buffer.get();
  std::vector<TreeStack<float>> stacks;
  for (int64_t ic = i0; ic < i1; ic += p.mc) {
    int64_t mc = std::min(p.mc, i1 - ic);
    int64_t n_ir = ceil_div(mc, kMR);
    bool tree_blocks = p.chunked && p.nk > 1 && !p.group_tree;
    if (tree_blocks) {
      stacks.clear();
      for (int64_t t = 0; t < n_ir * n_jr; ++t) stacks.emplace_back(work + t * p.slots * kTile, kTile);
    }
    for (int64_t pc = 0; pc < p.nk; ++pc) {
      int64_t k0 = pc * p.kc, kc = std::min(p.kc, g.K - k0);
      if (ic == i0) ensure_b_packed(p, s0, s1, pc, k0, kc, i0);
      if (p.a_shared)
        a_pack = ensure_a_packed(p, ic, mc, pc, k0, kc);
      else
        pack_a_block(p, ic, mc, k0, kc, a_buffer.get());
      // Tiles go to the micro-kernel in groups of up to group_a consecutive row strips
      // (AVX-512; one tile per call otherwise).
      int64_t n_groups = ceil_div(n_ir, p.group_a);
      int64_t lines_per_group = ceil_div(kc, n_groups);  // next-B-strip prefetch slice
      // The tiles' arguments: what is the same for the whole k block set here, per column
      // strip and per group below (perf: setting every field per tile was 5-8% of the
      // GPT's K = 128 products).
      TileArgs xs[kGroupA];
#if LOCKSTEP_HAVE_AVX2
      // AVX2, sequential order, an edge strip of 1 or 2 rows: its tiles go to gemm_tile2_avx2
      // two column strips at a time (the even strip's tile waits in `edge` for the odd one).
      // Not with the AVX-512 group kernel (group_a > 1; p.kernel is still gemm_tile_avx2
      // there): it has already run the edge tiles, and running them again would add a k
      // block twice into a partial or into C when accumulating.
      const bool pair_edge = p.kernel == gemm_tile_avx2 && p.group_a == 1 && !p.chunked && mc % kMR != 0 &&
                             mc % kMR <= 2;
      TileArgs edge;
#endif
      for (TileArgs& x : xs) {
        x.kc = kc;
        x.chunked = p.chunked;
        x.pairs = p.pairs;
        x.first = pc == 0;
        // Several batch-chunked blocks: the block's subtree goes to the tile's stack.
        x.last = pc == p.nk - 1 && !tree_blocks;
        x.ldc = g.ldc;
        x.accumulate = g.accumulate;
        x.k_base = k0;
      }
      for (int64_t jr = 0; jr < n_jr; ++jr) {
        int64_t j = jc + jr * kNR;
        // This strip and the next one: in place (rows ldb apart) or packed (kNR apart).
        auto strip_at = [&](int64_t r) {
          return s0 + r < p.first_packed ? g.B + k0 * g.ldb + jc + r * kNR : bp + r * g.K * kNR + k0 * kNR;
        };
        const float* b_strip = strip_at(jr);
        int64_t b_ld = s0 + jr < p.first_packed ? g.ldb : kNR;
        int nr = static_cast<int>(std::min<int64_t>(kNR, g.N - j));
        for (TileArgs& x : xs) {
          x.b = b_strip;
          x.ldb = b_ld;
          x.nr = nr;
          x.bias = g.bias ? g.bias + j : nullptr;
        }
        for (int64_t ig = 0; ig < n_groups; ++ig) {
          // Pull the next B strip (kc cache lines, L3-resident) in slices, one per call,
          // so the first tile of the next column strip does not wait for it (measured:
          // best of 6 at 2048^3, 95 vs 85 GFLOP/s). The SIMD kernels prefetch inside their
          // k loop, one line per 4 steps from x.prefetch on (perf at 2048^3: the bursts of
          // ~100 prefetches the AVX-512 groups got here stalled, 3% of the time); the
          // scalar kernel gets its slice here.
          const float* next_b = jr + 1 < n_jr ? strip_at(jr + 1) : b_strip;
          if (p.kernel == gemm_tile_scalar && jr + 1 < n_jr)
            for (int64_t line = ig * lines_per_group; line < std::min(kc, (ig + 1) * lines_per_group); ++line)
              __builtin_prefetch(next_b + line * kNR, 0, 3);
          int64_t ir0 = ig * p.group_a, n_tiles = std::min<int64_t>(p.group_a, n_ir - ir0);
          const float* prefetch = next_b + ig * lines_per_group * b_ld;
          // One chunk stack per group over all k blocks, slot d of its tiles at
          // partial + d * group_a * kTile (gemm_group_avx512).
          float* group_stack = work + (jr * n_groups + ig) * p.group_a * p.slots * kTile;
          for (int64_t u = 0; u < n_tiles; ++u) {
            int64_t ir = ir0 + u, i = ic + ir * kMR, t = jr * n_ir + ir;
            TileArgs& x = xs[u];
            x.a = a_pack + ir * kc * kMR;
            x.c = g.C + i * g.ldc + j;
            int mr = static_cast<int>(std::min<int64_t>(kMR, g.M - i));
            x.mr = mr;
            x.full = mr == kMR && nr == kNR;
            x.prefetch = prefetch;
            x.partial = p.group_tree ? group_stack : tree_blocks ? stacks[t].next() : work + t * kTile;
          }
          int64_t u = 0;
#if LOCKSTEP_HAVE_AVX512
          // The whole group, edge tiles included (measured: the AVX2 kernel on the edge strip
          // of M = 128 took ~10% of the MLP's products).
          if (p.group_a > 1) {
            gemm_group_avx512(xs, static_cast<int>(n_tiles));
            u = n_tiles;
          }
#endif
#if LOCKSTEP_HAVE_AVX2
          if (pair_edge && ir0 == n_ir - 1) {
            if (jr % 2 == 0 && jr + 1 < n_jr) {
              edge = xs[0];
              continue;
            }
            if (jr % 2 == 1) {
              gemm_tile2_avx2(edge, xs[0]);
              continue;
            }
          }
#endif
          for (; u < n_tiles; ++u) p.kernel(xs[u]);
          if (!tree_blocks) continue;
          for (u = 0; u < n_tiles; ++u) {
            int64_t t = jr * n_ir + ir0 + u;
            stacks[t].push();
            if (pc == p.nk - 1)
              epilogue_scalar(stacks[t].finish(), xs[u].c, xs[u].ldc, xs[u].mr, xs[u].nr, xs[u].bias, xs[u].accumulate);
          }
        }
      }
    }
  }
}

// One thread's rectangle: rows [i0, i1) x strips [s0, s1), walked panel by panel.
void compute_block(const Plan& p, int64_t i0, int64_t i1, int64_t s0, int64_t s1) {
  for (int64_t s = s0; s < s1; s += p.panel_strips) compute_panel(p, s, std::min(s1, s + p.panel_strips), i0, i1);
}

// K == 0: every output is the epilogue applied to +0.0f.
void gemm_empty_k(const GemmArgs& g) {
  for (int64_t i = 0; i < g.M; ++i)
    for (int64_t j = 0; j < g.N; ++j) {
      float out = 0.0f;
      if (g.bias) out = out + g.bias[j];
      if (g.accumulate) out = g.C[i * g.ldc + j] + out;
      g.C[i * g.ldc + j] = out;
    }
}

void gemm_float(const Exec& ex, const GemmArgs& g) {
  // Arguments were checked by the op (core/ops); here only asserted.
  assert(g.M >= 0 && g.N >= 0 && g.K >= 0 && g.ldc >= g.N);
  assert(g.lda >= (g.trans_a ? g.M : g.K) && g.ldb >= (g.trans_b ? g.K : g.N));
  if (g.M == 0 || g.N == 0) return;
  if (g.K == 0) return gemm_empty_k(g);
  // Up to 4 rows, B readable in place or packed already: one fma chain per output, the
  // same order (kernels/gemm_rows.h).
  if (gemm_rows::applies(g)) return gemm_rows::gemm_rows_cpu(ex, g);

  // The k blocking. It decides where partial sums wait, never their order.
  Plan p;
  p.g = &g;
  p.avx2 = ex.avx2();
  p.chunked = g.order == KOrder::batch_chunked;
  // AVX2, batch-chunked: chunk pairs on half tiles when lockstep runs one thread, whole
  // tiles otherwise. The pair kernel stores a third as much and loads a quarter more: alone
  // on its core it is 1.05-1.08x the whole-tile kernel (256 x 784 x 128 / 512 tn), with
  // another thread busy on the same 2-vCPU VM 0.85x (docs/benchmarks.md, issue 21).
  p.pairs = p.chunked && num_threads() == 1;
  bool group512 = false;  // the AVX-512 group kernel takes every tile
#if LOCKSTEP_HAVE_AVX512
  group512 = ex.avx512();
#endif
  if (p.chunked) {
    // Fixed: a block must be an aligned subtree of the canonical tree. The AVX-512 group
    // kernel combines up to 16 chunks itself, so K <= 512 (the MLP's grad-weight at batch
    // 512) needs no per-tile TreeStack between blocks and no scalar epilogue after them
    // (perf at 256 x 784 x 512: those were ~25% of the product with 8-chunk blocks; now
    // 1.3x faster, paired under load).
    p.kc = group512 ? kKC512Chunked : kKC;
    p.nk = ceil_div(g.K, p.kc);
    p.slots = p.nk > 1 ? ceil_log2(p.nk) + 1 : 0;  // one TreeStack per tile over the blocks
    // The AVX-512 group kernel continues its own chunk tree across the blocks instead (perf:
    // the tiles' TreeStacks and scalar epilogue were 13% of the GPT's grad-weight 384 x 128
    // x 2048).
    // So does the AVX2 kernel (gemm_tile_avx2, both of its chunked paths; 256 x 784 x 512
    // tn: the TreeStacks and scalar epilogue were ~7% of the product).
    bool own_tree = group512;
#if LOCKSTEP_HAVE_AVX2
    own_tree = own_tree || ex.avx2();
#endif
    p.group_tree = own_tree && p.nk > 1;
    // Its slots: the AVX-512 group kernel's stack over all chunks, the AVX2 kernel's counter
    // over the blocks (whole blocks of kGroupChunks chunks).
    if (p.group_tree) p.slots = group512 ? ceil_log2(ceil_div(g.K, kChunk)) + 1 : ceil_log2(p.nk) + 1;
  } else {
    // Sequential: any split continues the same chain, so balance the blocks. The AVX-512
    // group kernel takes deeper blocks: fewer partials between blocks (measured, best of
    // 300 interleaved calls at 512^3: 512 against 256, +4%; 1024 against 512 see kKC512).
    int64_t kc_max = ex.avx512() ? kKC512 : ex.avx2() ? kKCAvx2 : kKC;
    p.nk = ceil_div(g.K, kc_max);
    p.kc = ceil_div(g.K, p.nk);
    p.slots = p.nk > 1 ? 1 : 0;  // the running partial between blocks
    p.group_tree = false;
  }
  // Same bits either way (tests/kernels/test_gemm.cpp, "SIMD and scalar").
  p.kernel = gemm_tile_scalar;
  p.group_a = 1;
  p.mc = kMC;
#if LOCKSTEP_HAVE_AVX2
  if (ex.avx2()) p.kernel = gemm_tile_avx2;
  if (ex.avx2() && !p.chunked) p.mc = std::clamp<int64_t>(kABlockAvx2 / p.kc / kMR * kMR, kMR, kMC);
#endif
#if LOCKSTEP_HAVE_NEON
  if (ex.neon()) p.kernel = gemm_tile_neon;
#endif
#if LOCKSTEP_HAVE_AVX512
  if (ex.avx512()) {
    p.group_a = kGroupA;
    p.mc = kMC512;
  }
#endif

  // Packed B for the whole call, filled on first use (ensure_b_packed).
  p.n_strips = ceil_div(g.N, kNR);
  // A plain B used by a single row block (M <= mc: the MLP's products at batch 128) is read
  // in place by the AVX-512 group kernel, its full strips unpacked: packing would copy
  // each value to read it once (perf: 10-16% of 128 x 784 x 256; measured 1.03-1.25x,
  // docs/benchmarks.md, issue 21). Only when each strip row is one cache line (64-byte
  // aligned rows) and the row stride is not a multiple of 4 KiB: then a strip's rows all
  // fall in one L1 set (measured 0.53-0.91x at K = 256-512; strides of 1-2 KiB, 4 or 2
  // sets, measured 0.98-1.11x). The kernel reads the same values in the same order: no
  // bit changes (tests/kernels/test_gemm.cpp, "B read in place").
  p.first_packed = 0;
  bool aligned = reinterpret_cast<uintptr_t>(g.B) % 64 == 0 && g.ldb % kNR == 0;
  bool page_stride = g.ldb * int64_t(sizeof(float)) % 4096 == 0;
  // A B packed before the call (g.b_packed, FrozenWeights) is read packed.
  bool b_in_place = p.group_a > 1 && !g.trans_b && aligned && !page_stride && !g.b_packed;
  // A few more rows (up to an A block of kMC512 x 512 floats, the L2 share it has at
  // K >= 512) still make one row block, so that B can be read in place (measured: 256 x
  // 784 x 128 tn, the MLP's layer-0 grad-weight at batch 128, 1.03-1.09x against two row
  // blocks of packed B). Row blocks never change a sum.
  if (b_in_place && g.M * std::min(p.kc, g.K) <= kInPlaceAFloats) p.mc = std::max(p.mc, ceil_div(g.M, kMR) * kMR);
  if (b_in_place && g.M <= p.mc) p.first_packed = g.N / kNR;
  p.panel_strips = std::max<int64_t>(1, kPanelBytes / (int64_t(sizeof(float)) * kNR * g.K));
  // (Packed before the call, g.b_packed: every piece is marked packed.)
  FloatBuffer b_buffer(g.b_packed ? 1 : p.n_strips * kNR * g.K);
  p.b_packed = g.b_packed ? const_cast<float*>(g.b_packed) : b_buffer.get();

  // Split the longer side of C, so that the shared packed B is read by fewer threads when
  // N is the long side; fall back to the other side when it has fewer strips than threads.
  int64_t m_strips = ceil_div(g.M, kMR), n_strips = p.n_strips;
  int threads = num_threads();
  bool split_rows = g.M >= g.N;
  if (split_rows && m_strips < threads && n_strips > m_strips) split_rows = false;
  if (!split_rows && n_strips < threads && m_strips > n_strips) split_rows = true;
  // A row split's threads all need every strip of B: claims small enough that each of
  // them finds some to pack (two per thread, each starting at its own, ensure_b_packed),
  // not one thread packing B while the others wait (2 threads, 128 x 128 x 256 with 8
  // strips: one claim before; best of 3600 calls 154 -> 164 GFLOP/s, perf: the micro-kernel
  // 64 -> 71% of the cycles, sched_yield 10 -> 6%).
  p.claim_strips = kClaimStrips;
  if (split_rows) {
    int64_t tasks = std::min<int64_t>(threads, ceil_div(m_strips, ceil_div(kMinFmasPerTask, kMR * g.N * g.K)));
    if (tasks > 1) p.claim_strips = std::clamp<int64_t>(ceil_div(n_strips, 2 * tasks), 1, kClaimStrips);
  }
  int64_t n_flags = ceil_div(p.n_strips, p.claim_strips) * p.nk;
  std::unique_ptr<std::atomic<uint8_t>[]> ready(new std::atomic<uint8_t>[n_flags]);
  for (int64_t f = 0; f < n_flags; ++f) ready[f].store(g.b_packed ? 2 : 0, std::memory_order_relaxed);
  p.b_ready = ready.get();

  if (split_rows) {
    int64_t grain = ceil_div(kMinFmasPerTask, kMR * g.N * g.K);
    parallel_for(m_strips, grain, [&](int64_t b, int64_t e) {
      compute_block(p, b * kMR, std::min(e * kMR, g.M), 0, n_strips);
    });
  } else {
    int64_t grain = ceil_div(kMinFmasPerTask, g.M * kNR * g.K);
    // More than one task: op(A) packed once and shared, not once by every thread (2 threads,
    // thread CPU time summed over both, paired under load: 128 x 256 x 784 nt 1.1x;
    // docs/benchmarks.md, issue 21).
    p.a_stride = ceil_div(p.mc, kMR) * kMR;
    int64_t a_floats = ceil_div(g.M, p.mc) * p.a_stride * g.K;
    bool share_a = threads > 1 && ceil_div(n_strips, grain) > 1 && a_floats <= kSharedAFloats;
    FloatBuffer a_buffer(share_a ? a_floats : 1);
    std::unique_ptr<std::atomic<uint8_t>[]> a_ready;
    if (share_a) {
      p.a_groups = ceil_div(p.a_stride / kMR, kClaimAStrips);
      int64_t n = ceil_div(g.M, p.mc) * p.nk * p.a_groups;
      a_ready.reset(new std::atomic<uint8_t>[n]);
      for (int64_t f = 0; f < n; ++f) a_ready[f].store(0, std::memory_order_relaxed);
      p.a_shared = a_buffer.get();
      p.a_ready = a_ready.get();
    }
    parallel_for(n_strips, grain, [&](int64_t b, int64_t e) { compute_block(p, 0, g.M, b, e); });
  }
}

// float64: the same contract with plain blocked loops (reference checks and gradient checks
// need it exact, not fast). Each thread owns whole rows of C (static partition); within a
// row, kCols outputs advance together through k, each its own fma chain in increasing k,
// or, batch-chunked, one chunk partial per kBatchChunk values of k combined by TreeStack.
void gemm_double(const GemmArgsF64& g) {
  assert(g.M >= 0 && g.N >= 0 && g.K >= 0 && g.ldc >= g.N);
  if (g.M == 0 || g.N == 0) return;
  constexpr int64_t kCols = 64;  // columns summed side by side
  bool chunked = g.order == KOrder::batch_chunked;
  int64_t levels = ceil_log2(std::max<int64_t>(1, ceil_div(g.K, kBatchChunk)));
  auto a_at = [&](int64_t i, int64_t k) { return g.trans_a ? g.A[k * g.lda + i] : g.A[i * g.lda + k]; };
  auto b_at = [&](int64_t k, int64_t j) { return g.trans_b ? g.B[j * g.ldb + k] : g.B[k * g.ldb + j]; };
  // acc[j] += a[i, k] * b[k, j0 + j] for k in [k0, k1), in increasing k.
  auto fma_range = [&](double* acc, int64_t i, int64_t j0, int64_t w, int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) {
      double a = a_at(i, k);
      for (int64_t j = 0; j < w; ++j) acc[j] = std::fma(a, b_at(k, j0 + j), acc[j]);
    }
  };
  int64_t grain = std::max<int64_t>(1, kMinFmasPerTask / std::max<int64_t>(1, g.N * g.K));
  parallel_for(g.M, grain, [&](int64_t i0, int64_t i1) {
    // TreeStack storage: levels + 1 slots of kCols partials (reduce_order.h).
    std::vector<double> acc(kCols), tree_storage((levels + 1) * kCols);
    for (int64_t i = i0; i < i1; ++i)
      for (int64_t j0 = 0; j0 < g.N; j0 += kCols) {
        int64_t w = std::min(kCols, g.N - j0);
        std::fill(acc.begin(), acc.end(), 0.0);
        if (chunked && g.K > 0) {
          TreeStack<double> tree(tree_storage.data(), w);
          for (int64_t k0 = 0; k0 < g.K; k0 += kBatchChunk) {
            double* part = tree.next();
            std::fill(part, part + w, 0.0);
            fma_range(part, i, j0, w, k0, std::min(g.K, k0 + kBatchChunk));
            tree.push();
          }
          const double* sum = tree.finish();
          std::copy(sum, sum + w, acc.begin());
        } else {
          fma_range(acc.data(), i, j0, w, 0, g.K);  // K == 0 leaves +0.0
        }
        // Epilogue: out = acc (+ bias[j]), then (C +) out.
        for (int64_t j = 0; j < w; ++j) {
          double out = acc[j];
          if (g.bias) out = out + g.bias[j0 + j];
          double* c = g.C + i * g.ldc + j0 + j;
          if (g.accumulate) out = *c + out;
          *c = out;
        }
      }
  });
}

}  // namespace

int64_t gemm_packed_b_floats(int64_t N, int64_t K) { return ceil_div(N, kNR) * kNR * K; }

// The whole of op(B), as ensure_b_packed leaves it once every piece is packed.
void gemm_pack_b_cpu(const Exec& ex, const GemmArgs& g, float* dst) {
  if (g.N > 0 && g.K > 0) pack_b_panel(g, 0, ceil_div(g.N, kNR), 0, g.K, dst, ex.avx2());
}

// float64 has no SIMD path: nothing in ex applies to it.
template <typename T>
void gemm_cpu(const Exec& ex, const GemmArgsT<T>& g) {
  if constexpr (std::is_same_v<T, float>)
    gemm_float(ex, g);
  else
    gemm_double(g);
}
template void gemm_cpu<float>(const Exec&, const GemmArgs&);
template void gemm_cpu<double>(const Exec&, const GemmArgsF64&);

// The contract as plain loops, one output at a time; std::fma is one correctly rounded
// fused multiply-add on every machine, so this is the bit pattern everything else matches.
void gemm_cpu_ref(const GemmArgs& g) {
  std::vector<float> partials;
  for (int64_t i = 0; i < g.M; ++i)
    for (int64_t j = 0; j < g.N; ++j) {
      float acc = 0.0f;
      if (g.order == KOrder::sequential || g.K == 0) {
        for (int64_t k = 0; k < g.K; ++k) acc = std::fma(op_a(g, i, k), op_b(g, k, j), acc);
      } else {
        // One partial per chunk of kBatchChunk values of k, then the canonical tree.
        partials.clear();
        for (int64_t k0 = 0; k0 < g.K; k0 += kBatchChunk) {
          float part = 0.0f;
          for (int64_t k = k0; k < std::min(g.K, k0 + kBatchChunk); ++k)
            part = std::fma(op_a(g, i, k), op_b(g, k, j), part);
          partials.push_back(part);
        }
        acc = tree_sum_inplace(partials.data(), static_cast<int64_t>(partials.size()));
      }
      // Epilogue, in the contract's order.
      float out = acc;
      if (g.bias) out = out + g.bias[j];
      if (g.accumulate) out = g.C[i * g.ldc + j] + out;
      g.C[i * g.ldc + j] = out;
    }
}

}  // namespace lockstep
