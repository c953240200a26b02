// 2-D pooling over NCHW (x: N x C x H x W row-major, contiguous; y: N x C x OH x OW), PyTorch
// semantics. The N*C planes are independent: threads split the planes (CPU) or the output
// elements (CUDA, one thread each); nothing is reduced across planes.
//
// Geometry (Pool2dGeom): window (kh, kw), stride (sh, sw), zero padding (ph, pw), floor mode:
//   OH = (H + 2 ph - kh) / sh + 1, window of output oh: rows [oh sh - ph, oh sh - ph + kh) ∩ [0, H)
// (the same for columns). The front end checks k, s > 0, 0 <= p <= k / 2 and OH, OW >= 1.
//
// max_pool2d: y = the largest x in the window, walked in (row, column) order; an element
//   replaces the running maximum when it is larger or NaN (PyTorch's rule), so ties keep the
//   FIRST maximum in window order and a NaN propagates. idx (int64) = ih * W + iw of the
//   chosen element within its plane; an all -inf window keeps its first in-bounds element.
//   Backward as a GATHER (no scatter, no atomics): each input element, one thread,
//     dx[ih, iw] = +0 + dy[o] + ... over the windows o = (oh, ow) that contain (ih, iw) and
//                 chose it (idx[o] == ih W + iw), in increasing (oh, ow) order.
// avg_pool2d: y = (+0 + x + ... in window order over the in-bounds elements) / div, where
//   div = (min(hs + kh, H + ph) - hs) * (min(ws + kw, W + pw) - ws) with count_include_pad
//   (hs = oh sh - ph, before clipping), else the number of in-bounds elements; div is T(int).
//   Backward gather: dx[ih, iw] = +0 + dy[o] / div[o] + ... over the windows containing
//   (ih, iw), increasing (oh, ow).
// adaptive_avg_pool2d to OH x OW: window rows [floor(oh H / OH), ceil((oh + 1) H / OH)),
//   the same for columns; y = window sum in (row, column) order from +0, / its element count.
//   Backward gather as avg_pool2d: dx = +0 + dy[o] / count[o] + ... over the windows containing
//   the element, increasing (oh, ow) (windows may overlap when H % OH != 0).
//
// Every output (forward) and every input gradient (backward) is one fixed sequence of
// operations on its own: the bits are the same for any thread count, SIMD level (portable
// loops, and AVX2 max_pool2d forward and backward for 2 x 2 windows with the same comparisons and selections),
// batch composition, and
// on CUDA (kernels/pool2d_cuda.cu, same signatures with device pointers). Backward kernels
// WRITE dx (the autograd engine accumulates).
#pragma once
#include <cstdint>

#include "base/exec.h"
#include "base/math.h"

namespace lockstep {

struct Pool2dGeom {
  int64_t planes = 0;  // N * C
  int64_t H = 0, W = 0, OH = 0, OW = 0;
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0;
};

// The windows that contain input row i (or column): o in [lo, hi], for kernel k, stride s,
// padding p and n outputs. Empty when lo > hi.
LS_MATH_INLINE void pool_covering(int64_t i, int64_t k, int64_t s, int64_t p, int64_t n, int64_t* lo,
                                  int64_t* hi) {
  // o covers i iff o s - p <= i < o s - p + k  <=>  (i + p - k) / s < o <= (i + p) / s
  const int64_t a = i + p - k + 1;  // o s >= a
  *lo = a <= 0 ? 0 : (a + s - 1) / s;
  const int64_t h = (i + p) / s;
  *hi = h < n - 1 ? h : n - 1;
}

// The divisor of avg_pool2d's window (oh, ow) (the rule above).
LS_MATH_INLINE int64_t avg_pool_div(const Pool2dGeom& g, int64_t oh, int64_t ow, bool count_include_pad) {
  int64_t hs = oh * g.sh - g.ph, ws = ow * g.sw - g.pw;
  int64_t he = hs + g.kh < g.H + g.ph ? hs + g.kh : g.H + g.ph;
  int64_t we = ws + g.kw < g.W + g.pw ? ws + g.kw : g.W + g.pw;
  if (count_include_pad) return (he - hs) * (we - ws);
  hs = hs < 0 ? 0 : hs, ws = ws < 0 ? 0 : ws;
  he = he < g.H ? he : g.H, we = we < g.W ? we : g.W;
  return (he - hs) * (we - ws);
}

// adaptive pooling's window [start, end) of output o of n over an input of size len.
LS_MATH_INLINE int64_t adaptive_start(int64_t o, int64_t len, int64_t n) { return (o * len) / n; }
LS_MATH_INLINE int64_t adaptive_end(int64_t o, int64_t len, int64_t n) { return ((o + 1) * len + n - 1) / n; }

// y, idx: planes x OH x OW.
template <typename T>
void max_pool2d_forward_cpu(const Exec& ex, T* y, int64_t* idx, const T* x, const Pool2dGeom& g);
// dx: planes x H x W, from dy and idx (planes x OH x OW).
template <typename T>
void max_pool2d_backward_cpu(const Exec& ex, T* dx, const T* dy, const int64_t* idx, const Pool2dGeom& g);
// The same two as plain loops for any geometry (what the two above run unless the windows
// tile the plane: kernel == stride, no padding; tests compare that path against these).
template <typename T>
void max_pool2d_forward_loops(T* y, int64_t* idx, const T* x, const Pool2dGeom& g);
template <typename T>
void max_pool2d_backward_loops(T* dx, const T* dy, const int64_t* idx, const Pool2dGeom& g);
// AVX2 (pool2d_avx2.cpp, only with LOCKSTEP_HAVE_AVX2, when ex.avx2()): one output row of a
// float 2 x 2, stride 2, unpadded max_pool2d: r0 = its first input row (r0 + W the second),
// base = r0's offset in the plane; y, idx: the OW outputs. The scalar loop's bits.
void max_pool2x2_row_avx2(const float* r0, int64_t W, int64_t OW, int64_t base, float* y, int64_t* idx);
// Its backward: dx0 = the window row's first input row (dx0 + W the second), columns [0, 2 OW);
// base = dx0's offset in the plane; dy, idx: the OW outputs. The scalar gather's bits.
void max_pool2x2_backward_row_avx2(float* dx0, int64_t W, int64_t OW, int64_t base, const float* dy,
                                   const int64_t* idx);
template <typename T>
void avg_pool2d_forward_cpu(const Exec& ex, T* y, const T* x, const Pool2dGeom& g, bool count_include_pad);
template <typename T>
void avg_pool2d_backward_cpu(const Exec& ex, T* dx, const T* dy, const Pool2dGeom& g, bool count_include_pad);
// g.kh..g.pw are unused: the windows are the adaptive ones of H -> OH, W -> OW.
template <typename T>
void adaptive_avg_pool2d_forward_cpu(const Exec& ex, T* y, const T* x, const Pool2dGeom& g);
template <typename T>
void adaptive_avg_pool2d_backward_cpu(const Exec& ex, T* dx, const T* dy, const Pool2dGeom& g);

template <typename T>
void max_pool2d_forward_cuda(const Exec& ex, T* y, int64_t* idx, const T* x, const Pool2dGeom& g);
template <typename T>
void max_pool2d_backward_cuda(const Exec& ex, T* dx, const T* dy, const int64_t* idx, const Pool2dGeom& g);
template <typename T>
void avg_pool2d_forward_cuda(const Exec& ex, T* y, const T* x, const Pool2dGeom& g, bool count_include_pad);
template <typename T>
void avg_pool2d_backward_cuda(const Exec& ex, T* dx, const T* dy, const Pool2dGeom& g, bool count_include_pad);
template <typename T>
void adaptive_avg_pool2d_forward_cuda(const Exec& ex, T* y, const T* x, const Pool2dGeom& g);
template <typename T>
void adaptive_avg_pool2d_backward_cuda(const Exec& ex, T* dx, const T* dy, const Pool2dGeom& g);

}  // namespace lockstep
