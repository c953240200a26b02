// CUDA conv2d (kernels/conv2d.h): one thread per output element, each running the
// canonical order of its sum exactly as the CPU's GEMM does (fma from +0, padding taps
// included as x = 0), so deterministic mode gives the CPU's bits.
//   forward:      thread per y[n, o, oh, ow]: (c, i, j) in order, then + bias.
//   grad-input:   thread per dx[n, c, h, w]: taps (i, j) in order, each an o-sum from +0.
//   grad-weight:  thread per (chunk q, o, k): the chunk's rows (n, oh, ow) in order into a
//                 partial; then (deterministic) thread per (o, k) folds the chunk partials
//                 with tree_sum, or (fast mode) every chunk thread atomicAdds its partial
//                 into dw as it finishes, so the order of the additions is the GPU's.
//   grad-bias:    the same with thread per (q, o).
// Launch sizes depend on the shapes only (cuda_common.cuh). No shared memory.
#include "kernels/conv2d.h"
#include "kernels/cuda_common.cuh"
#include "kernels/reduce_order.h"

namespace lockstep {
namespace {

using namespace cuda_detail;

struct Dev {  // Conv2dDims by value on the device
  int64_t N, C, H, W, O, KH, KW, OH, OW, sh, sw, ph, pw, dh, dw, G;
};

Dev dev_of(const Conv2dDims& d) {
  return Dev{d.N, d.C, d.H, d.W, d.O, d.KH, d.KW, d.OH, d.OW, d.stride_h, d.stride_w,
             d.pad_h, d.pad_w, d.dil_h, d.dil_w, d.groups};
}

// One rounding for either type (the CPU's std::fma); plain fma(float, ...) would be the
// double version on a host compiler.
__device__ inline float fma_of(float a, float b, float c) { return fmaf(a, b, c); }
__device__ inline double fma_of(double a, double b, double c) { return fma(a, b, c); }

// x at tap (c, i, j) of output (oh, ow) of plane base xc (channel c of the sample), 0 outside.
template <typename T>
__device__ T tap(const Dev& d, const T* xc, int64_t i, int64_t j, int64_t oh, int64_t ow) {
  const int64_t ih = oh * d.sh - d.ph + i * d.dh, iw = ow * d.sw - d.pw + j * d.dw;
  return (ih >= 0 && ih < d.H && iw >= 0 && iw < d.W) ? xc[ih * d.W + iw] : T(0);
}

template <typename T>
__global__ void conv2d_forward_kernel(Dev d, T* y, const T* x, const T* w, const T* bias) {
  const int64_t Cg = d.C / d.G, Og = d.O / d.G, P = d.OH * d.OW;
  LS_CUDA_FOR(e, d.N * d.O * P) {
    const int64_t p = e % P, o = (e / P) % d.O, n = e / (P * d.O), g = o / Og;
    const int64_t oh = p / d.OW, ow = p % d.OW;
    T acc = T(0);
    for (int64_t c = 0; c < Cg; ++c) {
      const T* xc = x + ((n * d.C + g * Cg + c) * d.H) * d.W;
      const T* wc = w + (o * Cg + c) * d.KH * d.KW;
      for (int64_t i = 0; i < d.KH; ++i)
        for (int64_t j = 0; j < d.KW; ++j) acc = fma_of(wc[i * d.KW + j], tap(d, xc, i, j, oh, ow), acc);
    }
    if (bias) acc = acc + bias[o];
    y[e] = acc;
  }
}

template <typename T>
__global__ void conv2d_backward_input_kernel(Dev d, T* dx, const T* dy, const T* w) {
  const int64_t Cg = d.C / d.G, Og = d.O / d.G, HW = d.H * d.W;
  LS_CUDA_FOR(e, d.N * d.C * HW) {
    const int64_t h = (e % HW) / d.W, wi = e % d.W, ch = (e / HW) % d.C, n = e / (HW * d.C);
    const int64_t g = ch / Cg, c = ch % Cg;
    T acc = T(0);
    for (int64_t i = 0; i < d.KH; ++i)
      for (int64_t j = 0; j < d.KW; ++j) {
        const int64_t th = h + d.ph - i * d.dh, tw = wi + d.pw - j * d.dw;
        if (th < 0 || tw < 0 || th % d.sh || tw % d.sw) continue;
        const int64_t oh = th / d.sh, ow = tw / d.sw;
        if (oh >= d.OH || ow >= d.OW) continue;
        T t = T(0);
        for (int64_t o = g * Og; o < (g + 1) * Og; ++o)
          t = fma_of(w[((o * Cg + c) * d.KH + i) * d.KW + j], dy[((n * d.O + o) * d.OH + oh) * d.OW + ow], t);
        acc = acc + t;
      }
    dx[e] = acc;
  }
}

// Chunk partials of dw (and db when bias_rows): parts[q * O * K + o * K + k]; with `atomic`
// each partial is added into out instead.
template <typename T>
__global__ void conv2d_weight_chunks_kernel(Dev d, T* parts, T* dw_atomic, const T* dy, const T* x, int64_t chunks) {
  const int64_t Cg = d.C / d.G, Og = d.O / d.G, K = Cg * d.KH * d.KW, P = d.OH * d.OW;
  LS_CUDA_FOR(e, chunks * d.O * K) {
    const int64_t k = e % K, o = (e / K) % d.O, q = e / (K * d.O), g = o / Og;
    const int64_t c = k / (d.KH * d.KW), i = (k / d.KW) % d.KH, j = k % d.KW;
    const int64_t n0 = q * kBatchChunk, n1 = n0 + kBatchChunk < d.N ? n0 + kBatchChunk : d.N;
    T acc = T(0);
    for (int64_t n = n0; n < n1; ++n) {
      const T* xc = x + ((n * d.C + g * Cg + c) * d.H) * d.W;
      const T* dyo = dy + (n * d.O + o) * P;
      for (int64_t oh = 0; oh < d.OH; ++oh)
        for (int64_t ow = 0; ow < d.OW; ++ow) acc = fma_of(dyo[oh * d.OW + ow], tap(d, xc, i, j, oh, ow), acc);
    }
    if (dw_atomic)
      atomicAdd(dw_atomic + o * K + k, acc);
    else
      parts[e] = acc;
  }
}

template <typename T>
__global__ void conv2d_bias_chunks_kernel(Dev d, T* parts, T* db_atomic, const T* dy, int64_t chunks) {
  const int64_t P = d.OH * d.OW;
  LS_CUDA_FOR(e, chunks * d.O) {
    const int64_t o = e % d.O, q = e / d.O;
    const int64_t n0 = q * kBatchChunk, n1 = n0 + kBatchChunk < d.N ? n0 + kBatchChunk : d.N;
    T acc = T(0);
    for (int64_t n = n0; n < n1; ++n)
      for (int64_t p = 0; p < P; ++p) acc = acc + dy[(n * d.O + o) * P + p];
    if (db_atomic)
      atomicAdd(db_atomic + o, acc);
    else
      parts[e] = acc;
  }
}

// out[e] = tree_sum over q of parts[q * width + e] (reduce_order.h), parts clobbered.
template <typename T>
__global__ void tree_fold_kernel(T* parts, T* out, int64_t n, int64_t width) {
  LS_CUDA_FOR(e, width) {
    int64_t m = n;
    while (m > 1) {
      const int64_t half = m / 2;
      for (int64_t q = 0; q < half; ++q)
        parts[q * width + e] = parts[2 * q * width + e] + parts[(2 * q + 1) * width + e];
      if (m & 1) parts[half * width + e] = parts[(m - 1) * width + e];
      m = half + (m & 1);
    }
    out[e] = parts[e];
  }
}

}  // namespace

template <typename T>
void conv2d_forward_cuda(const Exec&, const Conv2dDims& d, T* y, const T* x, const T* w, const T* bias) {
  const int64_t n = d.N * d.O * d.p();
  LS_LAUNCH(conv2d_forward_kernel<T>, grid_for(n), kThreads, 0, cuda_stream(), dev_of(d), y, x, w, bias);
  CUDA_CHECK_LAUNCH("conv2d_forward_kernel");
}

template <typename T>
void conv2d_backward_input_cuda(const Exec&, const Conv2dDims& d, T* dx, const T* dy, const T* w) {
  const int64_t n = d.N * d.C * d.H * d.W;
  LS_LAUNCH(conv2d_backward_input_kernel<T>, grid_for(n), kThreads, 0, cuda_stream(), dev_of(d), dx, dy, w);
  CUDA_CHECK_LAUNCH("conv2d_backward_input_kernel");
}

template <typename T>
void conv2d_backward_weight_cuda(const Exec& ex, const Conv2dDims& d, T* dw, T* db, const T* dy, const T* x) {
  const int64_t chunks = (d.N + kBatchChunk - 1) / kBatchChunk, K = d.k(), O = d.O;
  const Dev dd = dev_of(d);
  if (ex.fast()) {  // chunk partials added with atomics, in completion order
    cuda_memset_zero(dw, sizeof(T) * O * K);
    LS_LAUNCH(conv2d_weight_chunks_kernel<T>, grid_for(chunks * O * K), kThreads, 0, cuda_stream(),
              dd, nullptr, dw, dy, x, chunks);
    CUDA_CHECK_LAUNCH("conv2d_weight_chunks_kernel");
    if (db) {
      cuda_memset_zero(db, sizeof(T) * O);
      LS_LAUNCH(conv2d_bias_chunks_kernel<T>, grid_for(chunks * O), kThreads, 0, cuda_stream(),
                dd, nullptr, db, dy, chunks);
      CUDA_CHECK_LAUNCH("conv2d_bias_chunks_kernel");
    }
    return;
  }
  DeviceBuffer<T> parts(chunks * O * K);
  LS_LAUNCH(conv2d_weight_chunks_kernel<T>, grid_for(chunks * O * K), kThreads, 0, cuda_stream(),
            dd, parts.get(), nullptr, dy, x, chunks);
  CUDA_CHECK_LAUNCH("conv2d_weight_chunks_kernel");
  LS_LAUNCH(tree_fold_kernel<T>, grid_for(O * K), kThreads, 0, cuda_stream(), parts.get(), dw, chunks, O * K);
  CUDA_CHECK_LAUNCH("tree_fold_kernel");
  if (db) {
    DeviceBuffer<T> bparts(chunks * O);
    LS_LAUNCH(conv2d_bias_chunks_kernel<T>, grid_for(chunks * O), kThreads, 0, cuda_stream(),
              dd, bparts.get(), nullptr, dy, chunks);
    CUDA_CHECK_LAUNCH("conv2d_bias_chunks_kernel");
    LS_LAUNCH(tree_fold_kernel<T>, grid_for(O), kThreads, 0, cuda_stream(), bparts.get(), db, chunks, O);
    CUDA_CHECK_LAUNCH("tree_fold_kernel");
  }
}

#define LS_CONV2D_CUDA_INST(T)                                                                                 \
  template void conv2d_forward_cuda<T>(const Exec&, const Conv2dDims&, T*, const T*, const T*, const T*);      \
  template void conv2d_backward_input_cuda<T>(const Exec&, const Conv2dDims&, T*, const T*, const T*);         \
  template void conv2d_backward_weight_cuda<T>(const Exec&, const Conv2dDims&, T*, T*, const T*, const T*);
LS_CONV2D_CUDA_INST(float)
LS_CONV2D_CUDA_INST(double)
#undef LS_CONV2D_CUDA_INST

}  // namespace lockstep
