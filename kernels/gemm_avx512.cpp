// AVX-512F micro-kernel of the deterministic GEMM (compiled with -mavx512f; called only
// when ex.avx512()). Layouts and the driver are in gemm_cpu.cpp / gemm_internal.h.
//
// One call computes a group of n = 1..kGroupA tiles that share their B strip: n
// consecutive packed A strips (6 rows each) times one packed B strip (16 columns, one zmm
// register). Edge tiles (fewer than 6 rows or 16 columns: the packed strips are padded with
// zeros) are computed whole into a tile buffer, and only their valid outputs go through the
// scalar epilogue into C, as the AVX2 kernel does; a lone tile (n = 1) has 6 accumulator
// chains, fewer than the 8 that hide the fma latency, but zmm-wide. Register tile: 6n x 16
// outputs in 6n zmm accumulators (up to 30), zmm31 holding the B row. Per k: one aligned
// 64-byte load of the B row and 6n vfmadd231ps whose A operand is broadcast from memory
// ({1to16}). Against the AVX2 6 x 16 tile, this issues
// 6n + 1 instructions per 6n zmm fmas instead of 8 per 12 ymm fmas, and reads B once per
// 6n rows instead of once per 6.
//
// Order: every accumulator lane is one output element and advances in increasing k with
// one fma per product, the canonical loop; lanes never mix, so neither the vector width
// nor the group size enters the result. The batch-chunked order restarts the tile at
// +0.0f every kChunk values of k and combines the chunk tiles with the same binary
// counter as TreeStack (older + newer, right fold at the end), element by element: a
// chunk's tile is added to the older subtrees while still in registers, and only the
// result is stored (a block is up to 16 chunks; see gemm_group_avx512).
//
// The whole call is one asm statement per group size with the accumulators in fixed
// registers (zmm0..zmm29): 30 accumulators exceed the operand limit of an asm statement
// and GCC's register allocator (it spilled the AVX2 kernel's twelve), so the statement
// loads them from the tiles' partial sums (or zeroes them), runs the k loop, adds the
// older chunk subtrees if asked, and stores them either back as partial sums or through
// the epilogue into C.
//
// No standard-library or shared templates here: an instantiation compiled with AVX-512
// could be picked by the linker for a build of the same symbol that runs on any CPU.
#include <immintrin.h>

#include <cassert>
#include <cstddef>
#include <cstdint>

#include "kernels/gemm_internal.h"

namespace lockstep {
namespace gemm_detail {
namespace {


// ---- the asm text -----------------------------------------------------------------------
// Step K of the unrolled loop, B row K in register BR (zmm31 for even K, zmm30 for odd
// K): for each strip P (rows Z0..Z5 of the accumulators) six fmas with A value (K, R)
// broadcast from P + 24*K + 4*R bytes.
#define LS_F(K, BR, P, R, Z) "vfmadd231ps 24*" #K "+4*" #R "(%[" #P "])%{1to16%}, %%zmm" #BR ", %%zmm" #Z "\n\t"
#define LS_STRIP(K, BR, P, Z0, Z1, Z2, Z3, Z4, Z5)                                       \
  LS_F(K, BR, P, 0, Z0) LS_F(K, BR, P, 1, Z1) LS_F(K, BR, P, 2, Z2) LS_F(K, BR, P, 3, Z3) \
  LS_F(K, BR, P, 4, Z4) LS_F(K, BR, P, 5, Z5)
// B rows one step ahead: at the start of step K of a group of 4, row K + 1 goes into the
// other register (perf: the first fma after each B load was the loop's hot spot when a
// step loaded its own row). Rows are ldb bytes apart (64 when packed; the row stride of B
// itself when read in place); b is at row 0 of the group, and moves on by two rows at
// steps 1 and 3, so it is at the next group's row 0 after the group.
#define LS_BNEXT_0 "vmovups (%[b],%[ldb]), %%zmm30\n\t"
#define LS_BNEXT_1 "leaq (%[b],%[ldb],2), %[b]\n\t vmovups (%[b]), %%zmm31\n\t"
#define LS_STEP1(K, BR) LS_STRIP(K, BR, a0, 0, 1, 2, 3, 4, 5)
#define LS_STEP2(K, BR) LS_STEP1(K, BR) LS_STRIP(K, BR, a1, 6, 7, 8, 9, 10, 11)
#define LS_STEP3(K, BR) LS_STEP2(K, BR) LS_STRIP(K, BR, a2, 12, 13, 14, 15, 16, 17)
#define LS_STEP4(K, BR) LS_STEP3(K, BR) LS_STRIP(K, BR, a3, 18, 19, 20, 21, 22, 23)
#define LS_STEP5(K, BR) LS_STEP4(K, BR) LS_STRIP(K, BR, a4, 24, 25, 26, 27, 28, 29)

// Accumulator Z <-> the tile buffer at acc + 64*Z bytes (tile i's row r is Z = 6i + r);
// the buffer's address is in the b register at those two moments.
#define LS_LOAD(Z) "vmovups 64*" #Z "(%[b]), %%zmm" #Z "\n\t"
#define LS_STORE(Z) "vmovups %%zmm" #Z ", 64*" #Z "(%[b])\n\t"
#define LS_ZERO(Z) "vpxord %%zmm" #Z ", %%zmm" #Z ", %%zmm" #Z "\n\t"
// Accumulator Z = older + Z, older from the slot whose address is in b (zmm31 = older is the
// first operand, as in TreeStack's a[j] + b[j]).
#define LS_MERGE(Z) "vmovups 64*" #Z "(%[b]), %%zmm31\n\t vaddps %%zmm" #Z ", %%zmm31, %%zmm" #Z "\n\t"
#define LS_SIX(M, A, B, C, D, E, F) M(A) M(B) M(C) M(D) M(E) M(F)
#define LS_ALL1(M) LS_SIX(M, 0, 1, 2, 3, 4, 5)
#define LS_ALL2(M) LS_ALL1(M) LS_SIX(M, 6, 7, 8, 9, 10, 11)
#define LS_ALL3(M) LS_ALL2(M) LS_SIX(M, 12, 13, 14, 15, 16, 17)
#define LS_ALL4(M) LS_ALL3(M) LS_SIX(M, 18, 19, 20, 21, 22, 23)
#define LS_ALL5(M) LS_ALL4(M) LS_SIX(M, 24, 25, 26, 27, 28, 29)

// A pointers on by NA_BYTES.
#define LS_ADVANCE(NA_BYTES)                                                              \
  "addq $" #NA_BYTES ", %[a0]\n\t addq $" #NA_BYTES ", %[a1]\n\t addq $" #NA_BYTES        \
  ", %[a2]\n\t addq $" #NA_BYTES ", %[a3]\n\t addq $" #NA_BYTES ", %[a4]\n\t"

// Where one call's accumulators come from and go to (read by the asm through one pointer,
// which leaves registers for the loop).
struct GroupIo {
  float* acc;             // tile buffer: loaded unless zero; the raw result goes here unless to_c
  float* c;               // to_c: C at the group's top-left corner, rows ldc_bytes apart
  int64_t ldc_bytes;
  const float* bias;      // to_c: bias at the first column, or null
  int64_t flags;          // kZero | kToC | kAccumulate
  // One cache line prefetched per 4 k steps, from here on: the driver points it at this
  // group's share of the next B strip, so the strip is in L1 when its first group starts.
  const float* prefetch;
  // Batch-chunked order, after the steps: `merges` older subtrees are added in registers,
  // acc = older + acc, the first at merge_from, each next one kSlotBytes below it.
  int64_t merges;
  const float* merge_from;
  // C rows prefetched for writing inside the k loop, one row (two lines) per 4 steps
  // while the loop counter is above c_stop: the first rows from c_prefetch on, ldc_bytes
  // apart. c_stop = n4 (or more) prefetches none.
  const float* c_prefetch;
  int64_t c_stop;
};
constexpr int64_t kZero = 1, kToC = 2, kAccumulate = 4;
constexpr int64_t kSlotBytes = kGroupA * kTile * sizeof(float);  // one slot of the chunk tree
static_assert(kSlotBytes == 1920, "LS_GROUP_ASM steps down by 1920 bytes per merge");
// The asm reads the fields at these byte offsets.
static_assert(offsetof(GroupIo, acc) == 0 && offsetof(GroupIo, c) == 8 && offsetof(GroupIo, ldc_bytes) == 16 &&
                  offsetof(GroupIo, bias) == 24 && offsetof(GroupIo, flags) == 32 &&
                  offsetof(GroupIo, prefetch) == 40 && offsetof(GroupIo, merges) == 48 &&
                  offsetof(GroupIo, merge_from) == 56 && offsetof(GroupIo, c_prefetch) == 64 &&
                  offsetof(GroupIo, c_stop) == 72,
              "GroupIo layout used by LS_GROUP_ASM");

// Row Z of the group into C: out = acc (+ bias) then (C +) out, one row of 16 columns, the
// operand order of the scalar epilogue. Registers after the loop: a0 = C row, a1 =
// ldc_bytes, a2 = bias, a3 = flags.
#define LS_CROW(Z)                                                                        \
  "testq %[a2], %[a2]\n\t"                                                                \
  "jz 8f\n\t"                                                                             \
  "vaddps (%[a2]), %%zmm" #Z ", %%zmm" #Z "\n"                                            \
  "8:\n\t"                                                                                \
  "testq $4, %[a3]\n\t"                                                                   \
  "jz 8f\n\t"                                                                             \
  "vmovups (%[a0]), %%zmm31\n\t"                                                          \
  "vaddps %%zmm" #Z ", %%zmm31, %%zmm" #Z "\n"                                            \
  "8:\n\t"                                                                                \
  "vmovups %%zmm" #Z ", (%[a0])\n\t"                                                      \
  "addq %[a1], %[a0]\n\t"

// The whole call: accumulators loaded from io.acc (or zeroed), B row 0 loaded (when rem > 0),
// n4 groups of 4 steps (each loading the row after it), rem single steps (each loading
// the next row after its fmas, if there is one: no row past the last is ever read), then
// either stored raw to io.acc or through the epilogue into C. Pointers of strips the group
// does not have are copies of a0 and are advanced without being read.
#define LS_GROUP_ASM(ALL, STEP)                                                           \
  __asm__ volatile("testq $1, 32(%[io])\n\t"                                              \
                   "jnz 1f\n\t"                                                           \
                   "movq (%[io]), %[b]\n\t"                                               \
                   ALL(LS_LOAD) "jmp 2f\n\t"                                              \
                   "1:\n\t" ALL(LS_ZERO)                                                  \
                   "2:\n\t"                                                               \
                   "movq %[b0], %[b]\n\t"                                                 \
                   "testq %[rem], %[rem]\n\t"                                             \
                   "jz 13f\n\t"                                                           \
                   "vmovups (%[b]), %%zmm31\n"                                             \
                   "13:\n\t"                                                              \
                   "movq 40(%[io]), %[pf]\n\t"                                            \
                   "movq 64(%[io]), %[pc]\n\t"                                            \
                   "testq %[n4], %[n4]\n\t"                                               \
                   "jz 4f\n\t"                                                            \
                   ".p2align 5\n"                                                         \
                   "3:\n\t"                                                               \
                   "prefetcht0 (%[pf])\n\t"                                               \
                   "addq %[ldb], %[pf]\n\t"                                               \
                   "cmpq 72(%[io]), %[n4]\n\t"                                            \
                   "jle 12f\n\t"                                                          \
                   "prefetchw (%[pc])\n\t"                                                \
                   "prefetchw 60(%[pc])\n\t"                                              \
                   "addq 16(%[io]), %[pc]\n"                                               \
                   "12:\n\t" LS_BNEXT_0 STEP(0, 31) LS_BNEXT_1 STEP(1, 30)                \
                   LS_BNEXT_0 STEP(2, 31) LS_BNEXT_1 STEP(3, 30) LS_ADVANCE(96)            \
                   "decq %[n4]\n\t"                                                       \
                   "jnz 3b\n\t"                                                           \
                   "4:\n\t"                                                               \
                   "testq %[rem], %[rem]\n\t"                                             \
                   "jz 6f\n\t"                                                            \
                   "5:\n\t" STEP(0, 31) LS_ADVANCE(24)                                   \
                   "decq %[rem]\n\t"                                                      \
                   "jz 6f\n\t"                                                            \
                   "addq %[ldb], %[b]\n\t"                                                \
                   "vmovups (%[b]), %%zmm31\n\t"                                          \
                   "jmp 5b\n"                                                             \
                   "6:\n\t"                                                               \
                   "movq 48(%[io]), %[n4]\n\t"                                            \
                   "testq %[n4], %[n4]\n\t"                                               \
                   "jz 10f\n\t"                                                           \
                   "movq 56(%[io]), %[b]\n"                                                \
                   "11:\n\t" ALL(LS_MERGE)                                                \
                   "subq $1920, %[b]\n\t"                                                 \
                   "decq %[n4]\n\t"                                                       \
                   "jnz 11b\n"                                                             \
                   "10:\n\t"                                                              \
                   "testq $2, 32(%[io])\n\t"                                              \
                   "jnz 7f\n\t"                                                           \
                   "movq (%[io]), %[b]\n\t"                                               \
                   ALL(LS_STORE) "jmp 9f\n\t"                                             \
                   "7:\n\t"                                                               \
                   "movq 8(%[io]), %[a0]\n\t"                                             \
                   "movq 16(%[io]), %[a1]\n\t"                                            \
                   "movq 24(%[io]), %[a2]\n\t"                                            \
                   "movq 32(%[io]), %[a3]\n\t"                                            \
                   ALL(LS_CROW)                                                           \
                   "9:\n\t"                                                               \
                   : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3),          \
                     [a4] "+r"(a4), [b] "=&r"(bscratch), [n4] "+r"(n4), [rem] "+r"(rem),  \
                     [pf] "=&r"(pfscratch), [pc] "=&r"(pcscratch)                         \
                   : [io] "r"(&io), [b0] "r"(b), [ldb] "r"(ldb_bytes)                     \
                   : "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5",      \
                     "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13",  \
                     "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20",       \
                     "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27",       \
                     "xmm28", "xmm29", "xmm30", "xmm31")

// n k steps of the group of na tiles (na tile buffers back to back in io.acc, each kMR
// rows of kNR floats): acc = (kZero ? +0.0f : acc) continued by fma over the steps, in
// order, then stored raw to io.acc or, with kToC, through the epilogue into C. a[i] is
// strip i's packed A at the first step, b the B row of the first step (rows ldb_bytes
// apart). With n == 0 it is the epilogue alone.
// Groups of 4 steps in the unrolled loop for n steps: each group loads the row after it,
// so the last step is always left to the single steps (1..4 of them when n > 0).
inline int64_t loop_groups(int64_t n) { return n > 0 ? (n - 1) >> 2 : 0; }

void group_steps(const GroupIo& io, const float* const* a, int na, const float* b, int64_t ldb_bytes, int64_t n) {
  const float *a0 = a[0], *a1 = a[0], *a2 = a[0], *a3 = a[0], *a4 = a[0];
  if (na > 1) a1 = a[1];
  if (na > 2) a2 = a[2];
  if (na > 3) a3 = a[3];
  if (na > 4) a4 = a[4];
  int64_t n4 = loop_groups(n), rem = n - 4 * n4;
  const float *bscratch, *pfscratch, *pcscratch;
  switch (na) {
    case 1: LS_GROUP_ASM(LS_ALL1, LS_STEP1); break;
    case 2: LS_GROUP_ASM(LS_ALL2, LS_STEP2); break;
    case 3: LS_GROUP_ASM(LS_ALL3, LS_STEP3); break;
    case 4: LS_GROUP_ASM(LS_ALL4, LS_STEP4); break;
    case 5: LS_GROUP_ASM(LS_ALL5, LS_STEP5); break;
  }
}

#undef LS_GROUP_ASM
#undef LS_CROW
#undef LS_ADVANCE
#undef LS_ALL5
#undef LS_ALL4
#undef LS_ALL3
#undef LS_ALL2
#undef LS_ALL1
#undef LS_SIX
#undef LS_MERGE
#undef LS_ZERO
#undef LS_STORE
#undef LS_LOAD
#undef LS_STEP5
#undef LS_STEP4
#undef LS_STEP3
#undef LS_STEP2
#undef LS_STEP1
#undef LS_BNEXT_1
#undef LS_BNEXT_0
#undef LS_STRIP
#undef LS_F

}  // namespace

// Edge tiles of a finished group: their raw sums (tile i at acc + i * kTile) through the
// scalar epilogue, valid rows and columns only.
void epilogue_tiles(const TileArgs* t, int na, const float* acc) {
  for (int i = 0; i < na; ++i)
    epilogue_scalar(acc + i * kTile, t[i].c, t[i].ldc, t[i].mr, t[i].nr, t[i].bias, t[i].accumulate);
}

void gemm_group_avx512(const TileArgs* t, int na) {
  const float* a[kGroupA];
  bool full = true;
  for (int i = 0; i < na; ++i) a[i] = t[i].a, full = full && t[i].full;
  const TileArgs& x = t[0];
  const int64_t ldb_bytes = x.ldb * int64_t(sizeof(float));
  // The group ends in C: its rows are fetched for writing while the k loop runs.
  // Sequential order: one row (prefetchw, both lines of an unaligned row) per 4 k steps
  // inside the loop, rows that do not fit the loop's count at the start (a burst of 30
  // prefetches at the start stalled the loop: perf, 8% of 512^3 on the instruction after
  // them; spread, 1.03-1.15x, docs/benchmarks.md, issue 21). Batch-chunked: spread over
  // the chunks' loops (below).
  int64_t c_rows = 0;  // rows 0 .. c_rows of the group, in the loop
  bool in_loop = true;
  if (x.last && !x.chunked)
    for (int i = 0; i < na; ++i) {
      in_loop = in_loop && c_rows + t[i].mr <= loop_groups(x.kc);
      if (in_loop)
        c_rows += t[i].mr;
      else
        prefetch_c_rows(t[i]);
    }
  // Full tiles take the asm's own epilogue into C; a group with an edge tile ends raw.
  const int64_t to_c = full ? (x.last ? kToC : 0) | (x.accumulate ? kAccumulate : 0) : 0;
  if (!x.chunked) {
    // Sequential order: one call from the partials (or +0.0f) to the partials or to C. The
    // driver keeps the partials of consecutive tiles back to back, as io.acc needs them
    // (they exist only when there are several k blocks: a group with an edge tile that is
    // both first and last ends in a buffer of its own).
    alignas(64) float own[kGroupA * kTile];
    float* acc = !full && x.first && x.last ? own : x.partial;
    for (int i = 1; i < na && acc == x.partial; ++i) assert(t[i].partial == x.partial + i * kTile);
    int64_t n4 = loop_groups(x.kc);
    GroupIo io{acc, x.c, x.ldc * int64_t(sizeof(float)), x.bias, (x.first ? kZero : 0) | to_c, x.prefetch, 0, nullptr,
               x.c, n4 - c_rows};
    group_steps(io, a, na, x.b, ldb_bytes, x.kc);
    if (!full && x.last) epilogue_tiles(t, na, acc);
    return;
  }
  // Batch-chunked: chunk q is summed from +0.0f in registers; then, still in registers,
  // the equal-sized subtrees on the stack are added to it, older + newer, once per
  // trailing zero bit of q + 1 (TreeStack::push), and after the last chunk of K every
  // subtree left (TreeStack::finish's fold from the right); the result goes to the slot it
  // occupies, or for the last chunk of a finished full group through the epilogue into C.
  // q counts the chunks of the whole K: a call with several k blocks (not first or not
  // last) continues the stack its group keeps at t[0].partial (slot d of the group's tiles
  // at partial + d * kGroupA * kTile), which holds popcount(q) subtrees when chunk q starts;
  // so the stack over all blocks is exactly TreeStack over all chunks. One block alone uses
  // a stack here (up to 16 chunks).
  alignas(64) float local[kGroupLevels512 * kGroupA * kTile];
  constexpr int64_t kSlot = kGroupA * kTile;
  float* stack = x.first && x.last ? local : x.partial;
  const int64_t q0 = x.k_base / kChunk;
  int depth = __builtin_popcountll(static_cast<unsigned long long>(q0));
  int64_t n_chunks = (x.kc + kChunk - 1) / kChunk;
  // The last block's C rows (consecutive rows of C, ldc apart) go to the chunks' loops, as
  // many per chunk as its loop has iterations, from the first chunk on; rows left over
  // (K = 128: 28 of 30 fit) are asked for at the last chunk. (Before: a tile's rows per
  // chunk before its call, perf: the prefetches and the division choosing the tiles were
  // 6% of 256 x 784 x 128.)
  int64_t c_left = 0;
  if (x.last)
    for (int i = 0; i < na; ++i) c_left += t[i].mr;
  const float* c_next = x.c;
  for (int64_t q = 0; q < n_chunks; ++q) {
    int64_t k0 = q * kChunk;
    const float* ak[kGroupA];
    for (int i = 0; i < na; ++i) ak[i] = a[i] + kMR * k0;
    int64_t len = x.kc - k0 < kChunk ? x.kc - k0 : kChunk;
    bool final_chunk = x.last && q == n_chunks - 1;
    int merges = final_chunk ? depth : __builtin_ctzll(static_cast<unsigned long long>(q0 + q + 1));
    const float* from = depth > 0 ? stack + (depth - 1) * kSlot : nullptr;
    depth -= merges;
    int64_t flags = kZero | (final_chunk ? to_c : 0);
    int64_t loops = loop_groups(len), c_rows = c_left < loops ? c_left : loops;
    if (x.last && q == n_chunks - 1)
      for (int64_t r = c_rows; r < c_left; ++r) {
        const char* row = reinterpret_cast<const char*>(c_next + r * x.ldc);
        __builtin_prefetch(row, 1, 3);
        __builtin_prefetch(row + 60, 1, 3);
      }
    group_steps(GroupIo{stack + depth * kSlot, x.c, x.ldc * int64_t(sizeof(float)), x.bias, flags,
                        x.prefetch + x.ldb * k0, merges, from, c_next, loops - c_rows},
                ak, na, x.b + x.ldb * k0, ldb_bytes, len);
    c_left -= c_rows;
    c_next += c_rows * x.ldc;
    ++depth;
  }
  if (x.last && !(to_c & kToC)) epilogue_tiles(t, na, stack);  // edge tiles
}

}  // namespace gemm_detail
}  // namespace lockstep
