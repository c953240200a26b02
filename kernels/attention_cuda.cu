// CUDA attention (kernels/attention.h), the CPU's orders bit for bit. One warp per query
// row: lane l owns the keys j = l, l + 32, ... (their scores as fma chains over d, their
// exp, the contiguous order's lane l of the row sum, their probabilities), so no lane
// reads what another lane wrote; the output chains (lane l owns dims l, l + 32, ...) take
// each key's probability from its owner by __shfl_sync, in increasing key order.
// Backward: kernel 1, one warp per query row: dp, c, ds (to a workspace) and dq (ds by
// shuffles as above); kernel 2, one warp per key row: dk and dv, lane l owning dims
// l, l + 32, ..., chains over the queries in increasing order from the workspace.
// Fast mode runs the same kernels (the batch-derived split is the CPU's, attention.h).
#include "base/math.h"
#include "kernels/attention.h"
#include "kernels/cuda_common.cuh"
#include "kernels/reduce_cuda.cuh"

namespace lockstep {
namespace {

using namespace cuda_detail;
using cuda_reduce::fma_t;
using cuda_reduce::kFullMask;
using cuda_reduce::kWarpsPerBlock;

__device__ inline float exp_t(float x) { return ls_expf(x); }
__device__ inline double exp_t(double x) { return ls_exp(x); }

// NaN-propagating maximum (exact; which of equal values wins does not change a bit below).
template <typename T>
__device__ T max_nan(T a, T b) {
  return (a != a || a > b) ? a : b;
}

// The contiguous-order sum of e[0 .. L), lane l adding its own elements l, l + 32, ...
template <typename T>
__device__ T warp_row_sum_own(const T* e, int64_t L) {
  const int lane = threadIdx.x & 31;
  cuda_reduce::TreeStack1<T> stack;
  T total = T(0);
  for (int64_t b0 = 0; b0 < L; b0 += kReduceBlock) {
    const int64_t len = L - b0 < kReduceBlock ? L - b0 : kReduceBlock;
    T acc = T(0);
    for (int64_t i = lane; i < len; i += kReduceLanes) acc = acc + e[b0 + i];
    for (int s = kReduceLanes / 2; s >= 1; s /= 2) acc = acc + __shfl_down_sync(kFullMask, acc, s);
    acc = __shfl_sync(kFullMask, acc, 0);
    if (L <= kReduceBlock) return acc;
    stack.push(acc);
  }
  if (L > kReduceBlock) total = stack.finish();
  return total;
}

// o[d] (d = lane, lane + 32, ...) = fma chain over j < L of w[j] * rows[j][d]; w[j] is read
// by its owner lane (j mod 32) and handed round by a shuffle.
template <typename T>
__device__ void warp_weighted_rows(T* o, const T* w, const T* rows, int64_t L, int64_t D) {
  const int lane = threadIdx.x & 31;
  for (int64_t d0 = 0; d0 < D; d0 += 32) {
    const int64_t d = d0 + lane;
    T acc = T(0);
    for (int64_t j0 = 0; j0 < L; j0 += 32) {
      const T mine = j0 + lane < L ? w[j0 + lane] : T(0);
      const int64_t n = L - j0 < 32 ? L - j0 : 32;
      for (int64_t jj = 0; jj < n; ++jj) {
        const T wj = __shfl_sync(kFullMask, mine, static_cast<int>(jj));
        if (d < D) acc = fma_t(wj, rows[(j0 + jj) * D + d], acc);
      }
    }
    if (d < D) o[d] = acc;
  }
}

template <typename T>
__device__ T dot_chain(const T* a, const T* b, int64_t D) {
  T acc = T(0);
  for (int64_t d = 0; d < D; ++d) acc = fma_t(a[d], b[d], acc);
  return acc;
}

// e: the row's probabilities (Tk per row; p itself when the caller wants it).
template <typename T>
__global__ void attn_forward_kernel(T* out, T* e_all, const T* q, const T* k, const T* v, const int64_t* kv_len,
                                    int64_t B, int64_t H, int64_t Tq, int64_t Tk, int64_t D, bool causal, T scale) {
  const int64_t r = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  if (r >= B * H * Tq) return;  // whole warps exit together
  const int lane = threadIdx.x & 31;
  const int64_t bh = r / Tq, t = r % Tq, b = bh / H;
  const int64_t len = kv_len ? kv_len[b] : Tk;
  const int64_t L = attention_visible(len, Tq, t, causal);
  const T* qr = q + r * D;
  const T* kh = k + bh * Tk * D;
  const T* vh = v + bh * Tk * D;
  T* e = e_all + r * Tk;
  T* o = out + r * D;
  if (L == 0) {
    for (int64_t d = lane; d < D; d += 32) o[d] = T(0);
    for (int64_t j = lane; j < Tk; j += 32) e[j] = T(0);
    return;
  }
  T m = T(0);
  bool first = true;
  for (int64_t j = lane; j < L; j += 32) {
    e[j] = dot_chain(qr, kh + j * D, D) * scale;
    m = first ? e[j] : max_nan(m, e[j]);
    first = false;
  }
  // lanes without a key (L < 32) take lane 0's first score, which cannot change the max
  const T s0 = __shfl_sync(kFullMask, first ? T(0) : e[lane], 0);
  if (first) m = s0;
  for (int s = 16; s >= 1; s /= 2) m = max_nan(m, __shfl_xor_sync(kFullMask, m, s));
  for (int64_t j = lane; j < L; j += 32) e[j] = exp_t(e[j] - m);
  const T l = warp_row_sum_own(e, L);
  for (int64_t j = lane; j < Tk; j += 32) e[j] = j < L ? e[j] / l : T(0);
  warp_weighted_rows(o, e, vh, L, D);
}

// Kernel 1 of the backward: one warp per query row i.
template <typename T>
__global__ void attn_backward_q_kernel(T* dq, T* ds_all, T* tmp_all, const T* g, const T* k, const T* v, const T* p,
                                       const int64_t* kv_len, int64_t B, int64_t H, int64_t Tq, int64_t Tk,
                                       int64_t D, bool causal, T scale) {
  const int64_t r = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  if (r >= B * H * Tq) return;
  const int lane = threadIdx.x & 31;
  const int64_t bh = r / Tq, i = r % Tq, b = bh / H;
  const int64_t len = kv_len ? kv_len[b] : Tk;
  const int64_t L = attention_visible(len, Tq, i, causal);
  const T* gi = g + r * D;
  const T* vh = v + bh * Tk * D;
  const T* pi = p + r * Tk;
  T* ds = ds_all + r * Tk;
  T* tmp = tmp_all + r * Tk;
  for (int64_t j = lane; j < L; j += 32) {
    ds[j] = dot_chain(gi, vh + j * D, D);  // dp, for now
    tmp[j] = pi[j] * ds[j];
  }
  const T c = warp_row_sum_own(tmp, L);
  for (int64_t j = lane; j < L; j += 32) ds[j] = (pi[j] * (ds[j] - c)) * scale;
  if (dq) warp_weighted_rows(dq + r * D, ds, k + bh * Tk * D, L, D);
}

// Kernel 2: one warp per key row j of every head.
template <typename T>
__global__ void attn_backward_kv_kernel(T* dk, T* dv, const T* ds_all, const T* g, const T* q, const T* p,
                                        const int64_t* kv_len, int64_t B, int64_t H, int64_t Tq, int64_t Tk,
                                        int64_t D, bool causal) {
  const int64_t r = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  if (r >= B * H * Tk) return;
  const int lane = threadIdx.x & 31;
  const int64_t bh = r / Tk, j = r % Tk, b = bh / H;
  const int64_t len = kv_len ? kv_len[b] : Tk;
  for (int64_t d = lane; d < D; d += 32) {
    T ak = T(0), av = T(0);
    for (int64_t i = 0; i < Tq; ++i) {
      if (j >= attention_visible(len, Tq, i, causal)) continue;
      const int64_t qi = bh * Tq + i;
      ak = fma_t(ds_all[qi * Tk + j], q[qi * D + d], ak);
      av = fma_t(p[qi * Tk + j], g[qi * D + d], av);
    }
    if (dk) dk[r * D + d] = ak;
    if (dv) dv[r * D + d] = av;
  }
}

// kv_len lives on the host (attention.h): copied to the device for the kernels.
struct DeviceLens {
  DeviceBuffer<int64_t> buf;
  const int64_t* ptr = nullptr;
  DeviceLens(const int64_t* host, int64_t B) : buf(host ? B : 1) {
    if (host) {
      cuda_copy_to_device(buf.get(), host, sizeof(int64_t) * static_cast<size_t>(B));
      ptr = buf.get();
    }
  }
};

unsigned warps_grid(int64_t warps) { return static_cast<unsigned>(ceil_div(warps, kWarpsPerBlock)); }

}  // namespace

template <typename T>
void attention_forward_cuda(const Exec&, T* out, T* p, const T* q, const T* k, const T* v, const int64_t* kv_len,
                            int64_t B, int64_t H, int64_t Tq, int64_t Tk, int64_t D, bool causal, T scale) {
  const int64_t rows = B * H * Tq;
  if (rows <= 0 || D <= 0) return;
  DeviceLens lens(kv_len, B);
  DeviceBuffer<T> scratch(p ? 1 : rows * (Tk > 0 ? Tk : 1));
  LS_LAUNCH(attn_forward_kernel, warps_grid(rows), kWarpsPerBlock * 32, 0, cuda_stream(), out,
            p ? p : scratch.get(), q, k, v, lens.ptr, B, H, Tq, Tk, D, causal, scale);
  CUDA_CHECK_LAUNCH("attn_forward_kernel");
}

template <typename T>
void attention_backward_cuda(const Exec&, T* dq, T* dk, T* dv, const T* g, const T* q, const T* k, const T* v,
                             const T* p, const int64_t* kv_len, int64_t B, int64_t H, int64_t Tq, int64_t Tk,
                             int64_t D, bool causal, T scale) {
  if (B * H <= 0 || D <= 0) return;
  DeviceLens lens(kv_len, B);
  const int64_t qrows = B * H * Tq, krows = B * H * Tk;
  DeviceBuffer<T> ds(qrows * Tk > 0 ? qrows * Tk : 1), tmp(qrows * Tk > 0 ? qrows * Tk : 1);
  cudaStream_t s = cuda_stream();
  if (qrows > 0) {
    LS_LAUNCH(attn_backward_q_kernel, warps_grid(qrows), kWarpsPerBlock * 32, 0, s, dq, ds.get(), tmp.get(), g, k, v,
              p, lens.ptr, B, H, Tq, Tk, D, causal, scale);
    CUDA_CHECK_LAUNCH("attn_backward_q_kernel");
  }
  if ((dk || dv) && krows > 0) {
    LS_LAUNCH(attn_backward_kv_kernel, warps_grid(krows), kWarpsPerBlock * 32, 0, s, dk, dv, ds.get(), g, q, p,
              lens.ptr, B, H, Tq, Tk, D, causal);
    CUDA_CHECK_LAUNCH("attn_backward_kv_kernel");
  }
}

#define LS_ATTENTION(T)                                                                                            \
  template void attention_forward_cuda<T>(const Exec&, T*, T*, const T*, const T*, const T*, const int64_t*,       \
                                          int64_t, int64_t, int64_t, int64_t, int64_t, bool, T);                   \
  template void attention_backward_cuda<T>(const Exec&, T*, T*, T*, const T*, const T*, const T*, const T*,        \
                                           const T*, const int64_t*, int64_t, int64_t, int64_t, int64_t, int64_t,  \
                                           bool, T);
LS_ATTENTION(float)
LS_ATTENTION(double)
#undef LS_ATTENTION

}  // namespace lockstep
