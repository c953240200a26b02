// CUDA pooling (kernels/pool2d.h): one thread per output element in forward and one per
// input element in backward (the gather), each running the CPU's loop for its element in
// the same order, so the CPU's bits; no atomics, no shared memory.
#include "kernels/cuda_common.cuh"
#include "kernels/pool2d.h"

namespace lockstep {
namespace {

using namespace cuda_detail;

__device__ float neg_inf(float) { return __int_as_float(0xff800000); }
__device__ double neg_inf(double) { return __longlong_as_double(static_cast<long long>(0xfff0000000000000ULL)); }

template <typename T>
__global__ void max_fwd_kernel(T* y, int64_t* idx, const T* x, Pool2dGeom g) {
  LS_CUDA_FOR(o, g.planes * g.OH * g.OW) {
    const int64_t ow = o % g.OW, oh = (o / g.OW) % g.OH, p = o / (g.OW * g.OH);
    const T* xp = x + p * g.H * g.W;
    const int64_t hs = oh * g.sh - g.ph, ws = ow * g.sw - g.pw;
    const int64_t h0 = hs > 0 ? hs : 0, h1 = hs + g.kh < g.H ? hs + g.kh : g.H;
    const int64_t w0 = ws > 0 ? ws : 0, w1 = ws + g.kw < g.W ? ws + g.kw : g.W;
    T best = neg_inf(T(0));
    int64_t bi = h0 * g.W + w0;
    for (int64_t h = h0; h < h1; ++h)
      for (int64_t w = w0; w < w1; ++w) {
        const T v = xp[h * g.W + w];
        if (v > best || v != v) best = v, bi = h * g.W + w;
      }
    y[o] = best;
    idx[o] = bi;
  }
}

template <typename T>
__global__ void max_bwd_kernel(T* dx, const T* dy, const int64_t* idx, Pool2dGeom g) {
  LS_CUDA_FOR(i, g.planes * g.H * g.W) {
    const int64_t me = i % (g.H * g.W), p = i / (g.H * g.W), ih = me / g.W, iw = me % g.W;
    int64_t oh0, oh1, ow0, ow1;
    pool_covering(ih, g.kh, g.sh, g.ph, g.OH, &oh0, &oh1);
    pool_covering(iw, g.kw, g.sw, g.pw, g.OW, &ow0, &ow1);
    const T* gp = dy + p * g.OH * g.OW;
    const int64_t* ip = idx + p * g.OH * g.OW;
    T acc = T(0);
    for (int64_t oh = oh0; oh <= oh1; ++oh)
      for (int64_t ow = ow0; ow <= ow1; ++ow)
        if (ip[oh * g.OW + ow] == me) acc += gp[oh * g.OW + ow];
    dx[i] = acc;
  }
}

template <typename T>
__global__ void avg_fwd_kernel(T* y, const T* x, Pool2dGeom g, bool cip) {
  LS_CUDA_FOR(o, g.planes * g.OH * g.OW) {
    const int64_t ow = o % g.OW, oh = (o / g.OW) % g.OH, p = o / (g.OW * g.OH);
    const T* xp = x + p * g.H * g.W;
    const int64_t hs = oh * g.sh - g.ph, ws = ow * g.sw - g.pw;
    const int64_t h0 = hs > 0 ? hs : 0, h1 = hs + g.kh < g.H ? hs + g.kh : g.H;
    const int64_t w0 = ws > 0 ? ws : 0, w1 = ws + g.kw < g.W ? ws + g.kw : g.W;
    T acc = T(0);
    for (int64_t h = h0; h < h1; ++h)
      for (int64_t w = w0; w < w1; ++w) acc += xp[h * g.W + w];
    y[o] = acc / static_cast<T>(avg_pool_div(g, oh, ow, cip));
  }
}

template <typename T>
__global__ void avg_bwd_kernel(T* dx, const T* dy, Pool2dGeom g, bool cip) {
  LS_CUDA_FOR(i, g.planes * g.H * g.W) {
    const int64_t me = i % (g.H * g.W), p = i / (g.H * g.W), ih = me / g.W, iw = me % g.W;
    int64_t oh0, oh1, ow0, ow1;
    pool_covering(ih, g.kh, g.sh, g.ph, g.OH, &oh0, &oh1);
    pool_covering(iw, g.kw, g.sw, g.pw, g.OW, &ow0, &ow1);
    const T* gp = dy + p * g.OH * g.OW;
    T acc = T(0);
    for (int64_t oh = oh0; oh <= oh1; ++oh)
      for (int64_t ow = ow0; ow <= ow1; ++ow) acc += gp[oh * g.OW + ow] / static_cast<T>(avg_pool_div(g, oh, ow, cip));
    dx[i] = acc;
  }
}

template <typename T>
__global__ void adaptive_fwd_kernel(T* y, const T* x, Pool2dGeom g) {
  LS_CUDA_FOR(o, g.planes * g.OH * g.OW) {
    const int64_t ow = o % g.OW, oh = (o / g.OW) % g.OH, p = o / (g.OW * g.OH);
    const T* xp = x + p * g.H * g.W;
    const int64_t h0 = adaptive_start(oh, g.H, g.OH), h1 = adaptive_end(oh, g.H, g.OH);
    const int64_t w0 = adaptive_start(ow, g.W, g.OW), w1 = adaptive_end(ow, g.W, g.OW);
    T acc = T(0);
    for (int64_t h = h0; h < h1; ++h)
      for (int64_t w = w0; w < w1; ++w) acc += xp[h * g.W + w];
    y[o] = acc / static_cast<T>((h1 - h0) * (w1 - w0));
  }
}

template <typename T>
__global__ void adaptive_bwd_kernel(T* dx, const T* dy, Pool2dGeom g) {
  LS_CUDA_FOR(i, g.planes * g.H * g.W) {
    const int64_t me = i % (g.H * g.W), p = i / (g.H * g.W), ih = me / g.W, iw = me % g.W;
    const T* gp = dy + p * g.OH * g.OW;
    T acc = T(0);
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      const int64_t h0 = adaptive_start(oh, g.H, g.OH), h1 = adaptive_end(oh, g.H, g.OH);
      if (ih < h0 || ih >= h1) continue;
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        const int64_t w0 = adaptive_start(ow, g.W, g.OW), w1 = adaptive_end(ow, g.W, g.OW);
        if (iw < w0 || iw >= w1) continue;
        acc += gp[oh * g.OW + ow] / static_cast<T>((h1 - h0) * (w1 - w0));
      }
    }
    dx[i] = acc;
  }
}

int64_t outputs(const Pool2dGeom& g) { return g.planes * g.OH * g.OW; }
int64_t inputs(const Pool2dGeom& g) { return g.planes * g.H * g.W; }

}  // namespace

template <typename T>
void max_pool2d_forward_cuda(const Exec&, T* y, int64_t* idx, const T* x, const Pool2dGeom& g) {
  if (outputs(g) <= 0) return;
  LS_LAUNCH(max_fwd_kernel<T>, grid_for(outputs(g)), kThreads, 0, cuda_stream(), y, idx, x, g);
  CUDA_CHECK_LAUNCH("max_fwd_kernel");
}
template <typename T>
void max_pool2d_backward_cuda(const Exec&, T* dx, const T* dy, const int64_t* idx, const Pool2dGeom& g) {
  if (inputs(g) <= 0) return;
  LS_LAUNCH(max_bwd_kernel<T>, grid_for(inputs(g)), kThreads, 0, cuda_stream(), dx, dy, idx, g);
  CUDA_CHECK_LAUNCH("max_bwd_kernel");
}
template <typename T>
void avg_pool2d_forward_cuda(const Exec&, T* y, const T* x, const Pool2dGeom& g, bool cip) {
  if (outputs(g) <= 0) return;
  LS_LAUNCH(avg_fwd_kernel<T>, grid_for(outputs(g)), kThreads, 0, cuda_stream(), y, x, g, cip);
  CUDA_CHECK_LAUNCH("avg_fwd_kernel");
}
template <typename T>
void avg_pool2d_backward_cuda(const Exec&, T* dx, const T* dy, const Pool2dGeom& g, bool cip) {
  if (inputs(g) <= 0) return;
  LS_LAUNCH(avg_bwd_kernel<T>, grid_for(inputs(g)), kThreads, 0, cuda_stream(), dx, dy, g, cip);
  CUDA_CHECK_LAUNCH("avg_bwd_kernel");
}
template <typename T>
void adaptive_avg_pool2d_forward_cuda(const Exec&, T* y, const T* x, const Pool2dGeom& g) {
  if (outputs(g) <= 0) return;
  LS_LAUNCH(adaptive_fwd_kernel<T>, grid_for(outputs(g)), kThreads, 0, cuda_stream(), y, x, g);
  CUDA_CHECK_LAUNCH("adaptive_fwd_kernel");
}
template <typename T>
void adaptive_avg_pool2d_backward_cuda(const Exec&, T* dx, const T* dy, const Pool2dGeom& g) {
  if (inputs(g) <= 0) return;
  LS_LAUNCH(adaptive_bwd_kernel<T>, grid_for(inputs(g)), kThreads, 0, cuda_stream(), dx, dy, g);
  CUDA_CHECK_LAUNCH("adaptive_bwd_kernel");
}

#define LS_POOL2D(T)                                                                                          \
  template void max_pool2d_forward_cuda<T>(const Exec&, T*, int64_t*, const T*, const Pool2dGeom&);           \
  template void max_pool2d_backward_cuda<T>(const Exec&, T*, const T*, const int64_t*, const Pool2dGeom&);    \
  template void avg_pool2d_forward_cuda<T>(const Exec&, T*, const T*, const Pool2dGeom&, bool);               \
  template void avg_pool2d_backward_cuda<T>(const Exec&, T*, const T*, const Pool2dGeom&, bool);              \
  template void adaptive_avg_pool2d_forward_cuda<T>(const Exec&, T*, const T*, const Pool2dGeom&);            \
  template void adaptive_avg_pool2d_backward_cuda<T>(const Exec&, T*, const T*, const Pool2dGeom&);
LS_POOL2D(float)
LS_POOL2D(double)
#undef LS_POOL2D

}  // namespace lockstep
