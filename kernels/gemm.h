// GEMM: C (M x N) = op(A) (M x K) * op(B) (K x N), row-major, leading dimensions in elements.
// trans_a: A is stored K x M and op(A) = A^T; trans_b: B is stored N x K and op(B) = B^T.
//
// Canonical order (deterministic mode, every device):
//   KOrder::sequential (forward, grad-input):  acc = +0.0f; for k = 0..K-1 in increasing
//     order: acc = fma(opA[i,k], opB[k,j], acc).
//   KOrder::batch_chunked (grad-weight, where K is the batch): k is cut into chunks of
//     kBatchChunk (reduce_order.h); each chunk is accumulated as above from +0.0f; the chunk
//     partials are combined by tree_sum.
//   Then, in this order: out = acc; if (bias) out = out + bias[j]; if (accumulate)
//     out = C[i,j] + out; C[i,j] = out.
// K may be blocked for cache, but a partial sum always continues in the same order, so the
// result is bit-identical to the plain loop, for any thread count, SIMD or scalar path, and
// any M (row i of C does not depend on the other rows of A: batch invariance).
// K == 0 gives acc = +0.0f.
#pragma once
#include <cstdint>

#include "base/exec.h"

namespace lockstep {

enum class KOrder { sequential, batch_chunked };

// One product in element type T (float or double).
template <typename T>
struct GemmArgsT {
  bool trans_a = false, trans_b = false;
  int64_t M = 0, N = 0, K = 0;
  const T* A = nullptr;
  int64_t lda = 0;
  const T* B = nullptr;
  int64_t ldb = 0;
  T* C = nullptr;
  int64_t ldc = 0;
  const T* bias = nullptr;  // length N, or null
  bool accumulate = false;  // add into C instead of overwriting it
  KOrder order = KOrder::sequential;
  // Optional, deterministic CPU float only: op(B) already packed by gemm_pack_b_cpu from
  // this B, trans_b, ldb, N and K (a B reused unchanged by many products: frozen weights,
  // core/frozen_weights.h). The packing is a copy, so the bits are those of a null b_packed.
  const T* b_packed = nullptr;
};
using GemmArgs = GemmArgsT<float>;
using GemmArgsF64 = GemmArgsT<double>;  // reference checks and float64 gradient checks

// Every entry point that runs a product takes the Exec first; the plain-loop references
// (*_ref) read no setting and take none.

// Deterministic, float and double. float: packed, cache-blocked, register-tiled (the
// AVX-512 group kernel when ex.avx512(), the AVX2+FMA micro-kernel when ex.avx2(), the NEON
// one when ex.neon(), portable scalar otherwise); double: plain blocked loops. Threads split the output tiles, never K.
template <typename T> void gemm_cpu(const Exec& ex, const GemmArgsT<T>& g);

// Reference: the canonical order as plain loops (for tests; slow).
void gemm_cpu_ref(const GemmArgs& g);

// The packed op(B) that gemm_cpu<float> otherwise builds on every call, built once, for
// GemmArgs::b_packed: reads g.trans_b, B, ldb, N and K; dst holds gemm_packed_b_floats(N, K)
// floats, 64-byte aligned (host_alloc): the micro-kernels load packed B rows aligned.
int64_t gemm_packed_b_floats(int64_t N, int64_t K);
void gemm_pack_b_cpu(const Exec& ex, const GemmArgs& g, float* dst);

// Fast mode. float: the variant an autotuner picked for this (shape, thread count,
// ex.simd) by timing, Eigen's multi-threaded GEMM among them; same math, rounding order not
// guaranteed. double: gemm_cpu (there is no tuned float64 variant).
template <typename T> void gemm_fast_cpu(const Exec& ex, const GemmArgsT<T>& g);

// Fast-mode variants, exposed for benchmarks and tests.
enum class GemmAlgo { canonical, eigen, split_k };
const char* gemm_algo_name(GemmAlgo a);
void gemm_fast_cpu_with(const Exec& ex, GemmAlgo algo, const GemmArgs& g);
GemmAlgo gemm_autotune_choice(const Exec& ex, const GemmArgs& g);  // times the variants once per key
void gemm_autotune_reset();                                        // forget all choices

// ---- CUDA, device pointers (gemm_cuda.cu, gemm_fast_cuda.cu; docs/cuda.md) ----
// Deterministic, float and double: a register-tiled shared-memory kernel whose every
// output follows the canonical order above, so the same bits as gemm_cpu. The block tile
// (128x128 or 64x64) is chosen from the shapes alone; both tiles give the same bits.
template <typename T> void gemm_cuda(const Exec& ex, const GemmArgsT<T>& g);
enum class GemmCudaTile { large, small };
template <typename T> void gemm_cuda_with(const Exec& ex, GemmCudaTile tile, const GemmArgsT<T>& g);
// Reference: one thread per output running the plain canonical loop (tests; slow).
template <typename T> void gemm_cuda_ref(const GemmArgsT<T>& g);
// Fast mode. float: the variant an autotuner picked for this shape by timing (cached per
// shape and ex.allow_tf32), cuBLAS SGEMM among them; TF32 tensor cores only when
// ex.allow_tf32. double: gemm_cuda (no tuned float64 variant).
template <typename T> void gemm_fast_cuda(const Exec& ex, const GemmArgsT<T>& g);
enum class GemmCudaAlgo { tiled, cublas };
const char* gemm_cuda_algo_name(GemmCudaAlgo a);
void gemm_fast_cuda_with(const Exec& ex, GemmCudaAlgo algo, const GemmArgs& g);
GemmCudaAlgo gemm_cuda_autotune_choice(const Exec& ex, const GemmArgs& g);  // times the variants once per key
void gemm_cuda_autotune_reset();

}  // namespace lockstep
