// Deterministic float conv2d on the GEMM's SIMD micro-kernels (gemm_internal.h) with the
// im2col written straight into their packed strips: no col buffer, no second pass over the
// 9x-expanded input (conv2d_packed_cpu.cpp). Not a public header: conv2d_cpu.cpp calls it.
//
// Layouts: x, y, dy NCHW and w O x C/G x KH x KW as in conv2d.h. The input is read through
// a zero-padded copy (N x C x (H + 2 pad_h) x (W + 2 pad_w); x itself when there is no
// padding), so tap (c, i, j) of output pixel (n, oh, ow) is one load at a fixed offset from
// the pixel's window corner and padding taps read +0, as im2col's zeros.
// Orders: exactly conv2d.h's canonical ones. Forward: each output is one micro-kernel
// chain over k = (c, i, j) in increasing order from +0 (k blocks continue the chain), then
// y = acc (+ bias). Grad-weight: per chunk of kBatchChunk samples, each dw^T entry is one
// chain over the chunk's rows (n, oh, ow) in increasing order from +0; the caller combines
// the chunks (tree_sum). The micro-kernels give the same bits at every SIMD level.
// Threads split output pixel blocks (forward) or (chunk, group, tap-strip range) items
// (grad-weight), never a sum.
#pragma once
#include <cstdint>

#include "base/exec.h"
#include "kernels/conv2d.h"

namespace lockstep {

// True when ex has a SIMD micro-kernel (AVX2, AVX-512, NEON) for the packed path; the
// scalar level keeps im2col + gemm_cpu (the same bits).
bool conv2d_packed_applies(const Exec& ex);

// y = conv2d(x, w) (+ bias): conv2d_forward_cpu's contract, float. Needs conv2d_packed_applies(ex).
void conv2d_forward_packed(const Exec& ex, const Conv2dDims& d, float* y, const float* x, const float* w,
                           const float* bias);

// dx = grad-input: conv2d_backward_input_cpu's contract, float: per sample, dcol = W_g^T dy_g
// on the micro-kernels (W_g^T packed once per call), then conv2d_col2im_add.
void conv2d_backward_input_packed(const Exec& ex, const Conv2dDims& d, float* dx, const float* dy, const float* w);

// Chunk partials of grad-weight: for chunk q (samples [q kBatchChunk, ...)) and group g,
// parts[q O K + g K Og + k Og + o] = the chunk's sequential sum of dy[n, g Og + o, p] x_tap(k).
// Needs conv2d_packed_applies(ex).
void conv2d_weight_parts_packed(const Exec& ex, const Conv2dDims& d, float* parts, const float* dy, const float* x);

}  // namespace lockstep
