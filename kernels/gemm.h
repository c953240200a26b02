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

namespace lockstep {

enum class KOrder { sequential, batch_chunked };

struct GemmArgs {
  bool trans_a = false, trans_b = false;
  int64_t M = 0, N = 0, K = 0;
  const float* A = nullptr;
  int64_t lda = 0;
  const float* B = nullptr;
  int64_t ldb = 0;
  float* C = nullptr;
  int64_t ldc = 0;
  const float* bias = nullptr;  // length N, or null
  bool accumulate = false;      // add into C instead of overwriting it
  KOrder order = KOrder::sequential;
};

// The same contract in float64 (reference checks and float64 gradient checks).
struct GemmArgsF64 {
  bool trans_a = false, trans_b = false;
  int64_t M = 0, N = 0, K = 0;
  const double* A = nullptr;
  int64_t lda = 0;
  const double* B = nullptr;
  int64_t ldb = 0;
  double* C = nullptr;
  int64_t ldc = 0;
  const double* bias = nullptr;
  bool accumulate = false;
  KOrder order = KOrder::sequential;
};

// Deterministic: packed, cache-blocked, register-tiled (AVX-512 group kernel or AVX2+FMA
// micro-kernel by simd_level(), portable scalar otherwise); threads split the output
// tiles, never K.
void gemm_cpu(const GemmArgs& g);
void gemm_cpu(const GemmArgsF64& g);

// Reference: the canonical order as plain loops (for tests; slow).
void gemm_cpu_ref(const GemmArgs& g);

// Fast mode: the variant an autotuner picked for this (shape, thread count) by timing,
// Eigen's multi-threaded GEMM among them. Same math, rounding order not guaranteed.
void gemm_fast_cpu(const GemmArgs& g);

// Fast-mode variants, exposed for benchmarks and tests.
enum class GemmAlgo { canonical, eigen, split_k };
const char* gemm_algo_name(GemmAlgo a);
void gemm_fast_cpu_with(GemmAlgo algo, const GemmArgs& g);
GemmAlgo gemm_autotune_choice(const GemmArgs& g);  // times the variants once per shape
void gemm_autotune_reset();                        // forget all choices

// ---- CUDA, device pointers (gemm_cuda.cu, gemm_fast_cuda.cu; docs/cuda.md) ----
// Deterministic: a register-tiled shared-memory kernel whose every output follows the
// canonical order above, so the same bits as gemm_cpu. The block tile (128x128 or 64x64)
// is chosen from the shapes alone; both tiles give the same bits.
void gemm_cuda(const GemmArgs& g);
enum class GemmCudaTile { large, small };
void gemm_cuda_with(GemmCudaTile tile, const GemmArgs& g);
// Reference: one thread per output running the plain canonical loop (tests; slow).
void gemm_cuda_ref(const GemmArgs& g);
// Fast mode: the variant an autotuner picked for this shape by timing (cached per shape),
// cuBLAS SGEMM among them; TF32 tensor cores only when allow_tf32() (base/mode.h).
void gemm_fast_cuda(const GemmArgs& g);
enum class GemmCudaAlgo { tiled, cublas };
const char* gemm_cuda_algo_name(GemmCudaAlgo a);
void gemm_fast_cuda_with(GemmCudaAlgo algo, const GemmArgs& g);
GemmCudaAlgo gemm_cuda_autotune_choice(const GemmArgs& g);  // times the variants once per shape
void gemm_cuda_autotune_reset();

}  // namespace lockstep
