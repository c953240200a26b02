// Deterministic CUDA GEMM (kernels/gemm.h): the canonical order on the GPU.
//
// Tiled kernel. A block of 256 threads (16 x 16) owns a BM x BN tile of C; thread (ty, tx)
// owns TM x TN outputs: rows ty*TM/2 + [0, TM/2) and BM/2 + ty*TM/2 + [0, TM/2), columns
// likewise, held in registers. K is walked in tiles of BK: op(A)[tile rows, k tile] and
// op(B)[k tile, tile cols] are staged in shared memory (k-major, two buffers: the next k
// tile is loaded from global memory into registers while the current one is used, then
// stored into the other buffer; one barrier per k tile). Inside a k tile, k goes up one at
// a time and every accumulator takes one fmaf per k. So each output is exactly
//   acc = +0.0f; for k = 0 .. K-1: acc = fmaf(opA[i,k], opB[k,j], acc)
// then the epilogue out = acc (+ bias[j]) (C[i,j] +) -- gemm_cpu's order, bit for bit.
// float64 runs the same kernels with double elements (fma_t is fma there): gemm_cpu's
// float64 order, bit for bit.
// The last k tile runs only its valid k (never a padded k: fmaf(0, 0, -0.0f) would turn
// an underflowed -0 into +0). Rows and columns past M, N are computed from zeros and not
// stored. The block tile (128x128, 8x8 per thread; or 64x64, 4x4 per thread) is picked
// from the shapes; both run the same per-output chain, so the choice never shows.
//
// KOrder::batch_chunked: grid z runs over chunks of kBatchChunk values of k; each chunk's
// tile is summed as above into a workspace P[chunk][M][N] (chunks * M * N floats), then one
// thread per output combines its chunk partials by tree_sum (reduce_cuda.cuh) and applies
// the epilogue: gemm_cpu's chunk partials and tree.
//
// Launch sizes depend on M, N, K only. No atomics.
#include "kernels/gemm.h"
#include "kernels/reduce_cuda.cuh"

namespace lockstep {
namespace {

using namespace cuda_detail;
using namespace cuda_reduce;

constexpr int kGemmThreads = 256;
constexpr int kBK = 8;
constexpr int64_t kMaxGridZ = 65535;
// The large tile when it still gives this many blocks (a constant: same on every GPU).
constexpr int64_t kLargeTileMinBlocks = 256;

template <typename T>
struct KernelArgs {
  bool trans_a, trans_b;
  int64_t M, N, K;
  const T* A;
  int64_t lda;
  const T* B;
  int64_t ldb;
  T* C;
  int64_t ldc;
  const T* bias;
  bool accumulate;
  // chunk > 0: slice z sums k in [z * chunk, min(K, (z + 1) * chunk)) into P + z * M * N
  int64_t chunk;
  int64_t nz;
  T* P;
};

template <typename T>
__device__ __forceinline__ T load_a(const KernelArgs<T>& g, int64_t i, int64_t k, int64_t k_end) {
  if (i >= g.M || k >= k_end) return T(0);
  return g.trans_a ? g.A[k * g.lda + i] : g.A[i * g.lda + k];
}
template <typename T>
__device__ __forceinline__ T load_b(const KernelArgs<T>& g, int64_t k, int64_t j, int64_t k_end) {
  if (j >= g.N || k >= k_end) return T(0);
  return g.trans_b ? g.B[j * g.ldb + k] : g.B[k * g.ldb + j];
}

template <typename T, int BM, int BN, int TM, int TN>
__global__ void __launch_bounds__(kGemmThreads) gemm_tiled_kernel(KernelArgs<T> g) {
  constexpr int LA = BM * kBK / kGemmThreads;  // A values each thread stages per k tile
  constexpr int LB = BN * kBK / kGemmThreads;
  static_assert(BM == 16 * TM && BN == 16 * TN, "16 x 16 threads cover the tile");
  __shared__ __align__(16) T As[2][kBK][BM];
  __shared__ __align__(16) T Bs[2][kBK][BN];
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * BM, n0 = static_cast<int64_t>(blockIdx.x) * BN;

  // Which values this thread stages: runs along the stored rows, so loads coalesce.
  // op(A)[m0 + a_i + q*a_di, k0 + a_k + q*a_dk] for q < LA; likewise B.
  int a_i, a_k, a_di, a_dk, b_j, b_k, b_dj, b_dk;
  if (!g.trans_a) a_i = tid / (kBK / LA), a_k = (tid % (kBK / LA)) * LA, a_di = 0, a_dk = 1;
  else a_k = tid / (BM / LA), a_i = (tid % (BM / LA)) * LA, a_di = 1, a_dk = 0;
  if (g.trans_b) b_j = tid / (kBK / LB), b_k = (tid % (kBK / LB)) * LB, b_dj = 0, b_dk = 1;
  else b_k = tid / (BN / LB), b_j = (tid % (BN / LB)) * LB, b_dj = 1, b_dk = 0;

  for (int64_t z = blockIdx.z; z < g.nz; z += gridDim.z) {
    const int64_t k_begin = g.chunk > 0 ? z * g.chunk : 0;
    const int64_t k_end = g.chunk > 0 ? (k_begin + g.chunk < g.K ? k_begin + g.chunk : g.K) : g.K;
    const int64_t ntiles = (k_end - k_begin + kBK - 1) / kBK;

    T acc[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
      for (int j = 0; j < TN; ++j) acc[i][j] = T(0);

    T ra[LA], rb[LB];
    auto fetch = [&](int64_t k0) {
#pragma unroll
      for (int q = 0; q < LA; ++q) ra[q] = load_a(g, m0 + a_i + q * a_di, k0 + a_k + q * a_dk, k_end);
#pragma unroll
      for (int q = 0; q < LB; ++q) rb[q] = load_b(g, k0 + b_k + q * b_dk, n0 + b_j + q * b_dj, k_end);
    };
    auto stash = [&](int buf) {
#pragma unroll
      for (int q = 0; q < LA; ++q) As[buf][a_k + q * a_dk][a_i + q * a_di] = ra[q];
#pragma unroll
      for (int q = 0; q < LB; ++q) Bs[buf][b_k + q * b_dk][b_j + q * b_dj] = rb[q];
    };

    if (ntiles > 0) {
      fetch(k_begin);
      stash(0);
    }
    __syncthreads();
    for (int64_t t = 0; t < ntiles; ++t) {
      const int cur = static_cast<int>(t & 1);
      const int64_t k0 = k_begin + t * kBK;
      if (t + 1 < ntiles) fetch(k0 + kBK);  // in flight while this tile is used
      const int klen = k_end - k0 < kBK ? static_cast<int>(k_end - k0) : kBK;
      // one k at a time: every accumulator advances by one fma per k, in increasing k
      auto step = [&](int kk) {
        T a[TM], b[TN];
#pragma unroll
        for (int i = 0; i < TM / 2; ++i) {
          a[i] = As[cur][kk][ty * (TM / 2) + i];
          a[TM / 2 + i] = As[cur][kk][BM / 2 + ty * (TM / 2) + i];
        }
#pragma unroll
        for (int j = 0; j < TN / 2; ++j) {
          b[j] = Bs[cur][kk][tx * (TN / 2) + j];
          b[TN / 2 + j] = Bs[cur][kk][BN / 2 + tx * (TN / 2) + j];
        }
#pragma unroll
        for (int i = 0; i < TM; ++i)
#pragma unroll
          for (int j = 0; j < TN; ++j) acc[i][j] = fma_t(a[i], b[j], acc[i][j]);
      };
      if (klen == kBK) {
#pragma unroll
        for (int kk = 0; kk < kBK; ++kk) step(kk);
      } else {
        for (int kk = 0; kk < klen; ++kk) step(kk);
      }
      if (t + 1 < ntiles) stash(cur ^ 1);
      __syncthreads();
    }

    // Epilogue (or the raw chunk partial), for the outputs inside C.
#pragma unroll
    for (int i = 0; i < TM; ++i) {
      const int64_t gi = m0 + (i < TM / 2 ? ty * (TM / 2) + i : BM / 2 + ty * (TM / 2) + (i - TM / 2));
      if (gi >= g.M) continue;
#pragma unroll
      for (int j = 0; j < TN; ++j) {
        const int64_t gj = n0 + (j < TN / 2 ? tx * (TN / 2) + j : BN / 2 + tx * (TN / 2) + (j - TN / 2));
        if (gj >= g.N) continue;
        if (g.chunk > 0) {
          g.P[(z * g.M + gi) * g.N + gj] = acc[i][j];
          continue;
        }
        T out = acc[i][j];
        if (g.bias) out = out + g.bias[gj];
        T* c = g.C + gi * g.ldc + gj;
        if (g.accumulate) out = *c + out;
        *c = out;
      }
    }
  }
}

// Thread (i, j): the tree over the chunk partials P[0 .. nz)[i][j], then the epilogue.
template <typename T>
__global__ void gemm_chunk_tree_kernel(KernelArgs<T> g) {
  LS_CUDA_FOR(t, g.M * g.N) {
    const int64_t i = t / g.N, j = t % g.N;
    T out = tree_sum_strided(g.P + t, g.nz, g.M * g.N);
    if (g.bias) out = out + g.bias[j];
    T* c = g.C + i * g.ldc + j;
    if (g.accumulate) out = *c + out;
    *c = out;
  }
}

// K == 0: every output is the epilogue applied to +0.0f.
template <typename T>
__global__ void gemm_empty_k_kernel(KernelArgs<T> g) {
  LS_CUDA_FOR(t, g.M * g.N) {
    const int64_t i = t / g.N, j = t % g.N;
    T out = T(0);
    if (g.bias) out = out + g.bias[j];
    T* c = g.C + i * g.ldc + j;
    if (g.accumulate) out = *c + out;
    *c = out;
  }
}

// The plain loops, one thread per output: the reference every other kernel must match.
template <typename T>
__global__ void gemm_ref_kernel(KernelArgs<T> g, bool chunked) {
  LS_CUDA_FOR(t, g.M * g.N) {
    const int64_t i = t / g.N, j = t % g.N;
    T acc = T(0);
    if (!chunked || g.K == 0) {
      for (int64_t k = 0; k < g.K; ++k) acc = fma_t(load_a(g, i, k, g.K), load_b(g, k, j, g.K), acc);
    } else {
      TreeStack1<T> stack;
      for (int64_t k0 = 0; k0 < g.K; k0 += kBatchChunk) {
        T part = T(0);
        const int64_t k1 = k0 + kBatchChunk < g.K ? k0 + kBatchChunk : g.K;
        for (int64_t k = k0; k < k1; ++k) part = fma_t(load_a(g, i, k, g.K), load_b(g, k, j, g.K), part);
        stack.push(part);
      }
      acc = stack.finish();
    }
    T out = acc;
    if (g.bias) out = out + g.bias[j];
    T* c = g.C + i * g.ldc + j;
    if (g.accumulate) out = *c + out;
    *c = out;
  }
}

template <typename T>
KernelArgs<T> kernel_args(const GemmArgsT<T>& a) {
  KernelArgs<T> g;
  g.trans_a = a.trans_a, g.trans_b = a.trans_b;
  g.M = a.M, g.N = a.N, g.K = a.K;
  g.A = a.A, g.lda = a.lda, g.B = a.B, g.ldb = a.ldb, g.C = a.C, g.ldc = a.ldc;
  g.bias = a.bias, g.accumulate = a.accumulate;
  g.chunk = 0, g.nz = 1, g.P = nullptr;
  return g;
}

template <typename T, int BM, int BN, int TM, int TN>
void launch_tiled(const KernelArgs<T>& g) {
  const dim3 grid(static_cast<unsigned>(ceil_div(g.N, BN)), static_cast<unsigned>(ceil_div(g.M, BM)),
                  static_cast<unsigned>(g.nz < kMaxGridZ ? g.nz : kMaxGridZ));
  LS_LAUNCH((gemm_tiled_kernel<T, BM, BN, TM, TN>), grid, kGemmThreads, 0, cuda_stream(), g);
  CUDA_CHECK_LAUNCH("gemm_tiled_kernel");
}

template <typename T>
void run_tiled(GemmCudaTile tile, const GemmArgsT<T>& a) {
  if (a.M == 0 || a.N == 0) return;
  KernelArgs<T> g = kernel_args(a);
  cudaStream_t s = cuda_stream();
  if (a.K == 0) {
    LS_LAUNCH(gemm_empty_k_kernel, grid_for(a.M * a.N), kThreads, 0, s, g);
    CUDA_CHECK_LAUNCH("gemm_empty_k_kernel");
    return;
  }
  const bool chunked = a.order == KOrder::batch_chunked && a.K > kBatchChunk;
  DeviceBuffer<T> work(chunked ? ceil_div(a.K, kBatchChunk) * a.M * a.N : 1);
  if (chunked) g.chunk = kBatchChunk, g.nz = ceil_div(a.K, kBatchChunk), g.P = work.get();
  if (tile == GemmCudaTile::large)
    launch_tiled<T, 128, 128, 8, 8>(g);
  else
    launch_tiled<T, 64, 64, 4, 4>(g);
  if (chunked) {
    LS_LAUNCH(gemm_chunk_tree_kernel, grid_for(a.M * a.N), kThreads, 0, s, g);
    CUDA_CHECK_LAUNCH("gemm_chunk_tree_kernel");
  }
}

}  // namespace

// The deterministic kernels read nothing from ex.
template <typename T>
void gemm_cuda_with(const Exec&, GemmCudaTile tile, const GemmArgsT<T>& g) {
  run_tiled(tile, g);
}

template <typename T>
void gemm_cuda(const Exec&, const GemmArgsT<T>& g) {
  // With a single chunk (K <= 32) the batch-chunked order is the sequential one.
  const int64_t nz = g.order == KOrder::batch_chunked && g.K > kBatchChunk ? ceil_div(g.K, kBatchChunk) : 1;
  const int64_t large_blocks = ceil_div(g.M, 128) * ceil_div(g.N, 128) * nz;
  run_tiled(large_blocks >= kLargeTileMinBlocks ? GemmCudaTile::large : GemmCudaTile::small, g);
}

template <typename T>
void gemm_cuda_ref(const GemmArgsT<T>& a) {
  if (a.M == 0 || a.N == 0) return;
  KernelArgs<T> g = kernel_args(a);
  LS_LAUNCH(gemm_ref_kernel, grid_for(a.M * a.N), kThreads, 0, cuda_stream(), g, a.order == KOrder::batch_chunked);
  CUDA_CHECK_LAUNCH("gemm_ref_kernel");
}

#define LS_GEMM_CUDA(T)                                                         \
  template void gemm_cuda<T>(const Exec&, const GemmArgsT<T>&);                 \
  template void gemm_cuda_with<T>(const Exec&, GemmCudaTile, const GemmArgsT<T>&); \
  template void gemm_cuda_ref<T>(const GemmArgsT<T>&);
LS_GEMM_CUDA(float)
LS_GEMM_CUDA(double)
#undef LS_GEMM_CUDA

}  // namespace lockstep
