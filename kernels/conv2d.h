// 2-d convolution (cross-correlation, as PyTorch), NCHW, row-major, contiguous.
//   x: N x C x H x W        w: O x (C/G) x KH x KW        bias: O (or null)
//   y: N x O x OH x OW,     OH = (H + 2 pad_h - dil_h (KH - 1) - 1) / stride_h + 1 (same for W)
// Group g (G = groups) maps input channels [g C/G, (g+1) C/G) to outputs [g O/G, (g+1) O/G).
// Tap (c, i, j) of output (n, o, oh, ow) reads x[n, g C/G + c, ih, iw] with
// ih = oh stride_h - pad_h + i dil_h, iw = ow stride_w - pad_w + j dil_w, and 0 outside.
//
// Canonical orders (deterministic mode, every device, float and double; docs/determinism.md):
//   forward (implicit GEMM, K = (C/G) KH KW):  acc = +0; for (c, i, j) in row-major order,
//     padding taps included (x = 0): acc = fma(w[o, c, i, j], x_tap, acc); then
//     y = acc, and y = y + bias[o] when there is a bias. (gemm.h's sequential order.)
//   grad-input dx[n, c, h, w]: for each tap (i, j) in row-major order that some output
//     (oh, ow) reads at (h, w): t = +0; for o in the group in increasing order:
//     t = fma(w[o, c, i, j], dy[n, o, oh, ow], t); then dx = dx + t, dx starting at +0.
//     (A GEMM W^T dy in sequential order, then col2im adding the taps in (i, j) order.)
//   grad-weight dw[o, c, i, j] and grad-bias db[o]: the batch order of reduce_order.h with
//     a sample as a row: the batch is cut into chunks of kBatchChunk samples; a chunk sums
//     its rows (n, oh, ow) in increasing order from +0 (dw: fma(dy, x_tap, acc), padding
//     taps included; db: acc + dy); the chunk partials are combined by tree_sum. A
//     data-parallel worker's samples are a node of that tree, as for Linear's weight.
// float forward and grad-weight at a SIMD level: im2col gathered straight into the GEMM
// micro-kernels' packed strips (conv2d_packed.h), the same orders.
// Threads split samples, channel planes or GEMM output tiles, never a sum, so the bits are
// the same for any thread count and SIMD level (the float GEMM's AVX2/AVX-512 paths give
// its scalar bits), and a sample's outputs do not depend on the rest of the batch.
// The backward kernels WRITE their outputs (they do not add into them).
//
// Fast mode (conv2d_fast_cpu.cpp) runs what a library would: the forward algorithm an
// autotuner picked by timing (Conv2dAlgo), backward through fast mode's autotuned GEMM
// with the whole batch as one running sum. Documented bounds against float64
// (tests/kernels/test_conv2d.cpp): forward |y - ref| <= 1e-5 + 1e-5 |ref|; dx, dw and db
// within 1e-5 sum |terms| of their sums.
// CUDA (conv2d_cuda.cu): the same signatures with device pointers and the same bits in
// deterministic mode; fast mode adds the chunk partials of grad-weight and grad-bias
// with atomicAdd (completion order).
#pragma once
#include <cstdint>

#include "base/exec.h"
#include "kernels/conv2d_algo.h"

namespace lockstep {

struct Conv2dDims {
  int64_t N = 0, C = 0, H = 0, W = 0;   // input
  int64_t O = 0, KH = 0, KW = 0;        // weight O x C/G x KH x KW
  int64_t OH = 0, OW = 0;               // output
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1, groups = 1;

  int64_t cg() const { return C / groups; }               // input channels per group
  int64_t og() const { return O / groups; }               // output channels per group
  int64_t k() const { return cg() * KH * KW; }            // GEMM depth: taps per output
  int64_t p() const { return OH * OW; }                   // output pixels per plane
};

// ---- deterministic (conv2d_cpu.cpp) ----
template <typename T>
void conv2d_forward_cpu(const Exec& ex, const Conv2dDims& d, T* y, const T* x, const T* w, const T* bias);
template <typename T>
void conv2d_backward_input_cpu(const Exec& ex, const Conv2dDims& d, T* dx, const T* dy, const T* w);
// dw: O x C/G x KH x KW; db: O or null (then no grad-bias).
template <typename T>
void conv2d_backward_weight_cpu(const Exec& ex, const Conv2dDims& d, T* dw, T* db, const T* dy, const T* x);

// im2col of one sample and one group: col[k, p] (row stride ldc) for k = (c, i, j), p = (oh, ow).
template <typename T>
void conv2d_im2col(const Conv2dDims& d, const T* x_sample, int64_t group, T* col, int64_t ldc);
// The reverse for grad-input: dx_group (the group's C/G planes of one sample) += col2im(col),
// the taps of each element added in (i, j) order.
template <typename T>
void conv2d_col2im_add(const Conv2dDims& d, const T* col, int64_t ldc, T* dx_group);

// References: the canonical orders above as plain loops, float (tests; slow).
void conv2d_forward_ref(const Conv2dDims& d, float* y, const float* x, const float* w, const float* bias);
void conv2d_backward_input_ref(const Conv2dDims& d, float* dx, const float* dy, const float* w);
void conv2d_backward_weight_ref(const Conv2dDims& d, float* dw, float* db, const float* dy, const float* x);

// ---- fast mode (conv2d_fast_cpu.cpp) ----
// Forward with `algo` (Conv2dAlgo::autotune: the variant timed fastest for this shape,
// thread count and SIMD level, measured once and remembered); returns the one that ran.
// double always runs the canonical kernel. An algorithm that does not apply to the shape
// (winograd: 3x3, stride 1, dilation 1 only) is replaced by im2col_gemm.
template <typename T>
Conv2dAlgo conv2d_forward_fast_cpu(const Exec& ex, Conv2dAlgo algo, const Conv2dDims& d, T* y, const T* x,
                                   const T* w, const T* bias);
template <typename T>
void conv2d_backward_input_fast_cpu(const Exec& ex, const Conv2dDims& d, T* dx, const T* dy, const T* w);
template <typename T>
void conv2d_backward_weight_fast_cpu(const Exec& ex, const Conv2dDims& d, T* dw, T* db, const T* dy,
                                     const T* x);
bool conv2d_algo_applies(Conv2dAlgo algo, const Conv2dDims& d);
void conv2d_autotune_reset();  // forget every timed choice

// ---- CUDA: the same contracts with device pointers (conv2d_cuda.cu) ----
template <typename T>
void conv2d_forward_cuda(const Exec& ex, const Conv2dDims& d, T* y, const T* x, const T* w, const T* bias);
template <typename T>
void conv2d_backward_input_cuda(const Exec& ex, const Conv2dDims& d, T* dx, const T* dy, const T* w);
// Deterministic: chunk partials combined by tree_sum. Fast (ex.fast()): each chunk's
// partial is added into dw/db with atomicAdd as it completes (order not fixed).
template <typename T>
void conv2d_backward_weight_cuda(const Exec& ex, const Conv2dDims& d, T* dw, T* db, const T* dy, const T* x);

}  // namespace lockstep
