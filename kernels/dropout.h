// Inverted dropout over n contiguous elements (any shape, row-major index i).
//
// Mask: element i at training step `step` of a layer keyed by (seed, stream) is kept iff
//   u >= p,  u = uniform_f32(seed, stream, position),  position = step * 2^40 + i
// (base/philox.h: one Philox output word per element, u = (word >> 8) * 2^-24 in [0, 1)),
// so P(keep) = 1 - p up to the 2^-24 grid. The mask is a pure function of
// (seed, stream, step, i, p): any element can be computed alone, on any device, by any
// thread. Requires i < 2^40 (n <= 2^40) and step < 2^24, so positions never overlap.
//
// Values, written in T (float or double); p is a float for both, so the float64 kernels
// draw the same mask as the float32 ones:
//   scale = 1 / (1 - p)         float: 1.0f / (1.0f - p); double: 1.0 / (1.0 - double(p))
//   m     = keep ? scale : 0
//   y     = x * m               forward
//   dx    = dy * m              backward (from the saved uint8 mask: 1 kept, 0 dropped)
// A dropped element is x * 0, not a literal 0, as in PyTorch (x * mask * scale): -0 for a
// negative x, NaN for an infinite or NaN x.
// p == 0: the identity (y = x and dx = dy, bits copied; mask all 1; no draws).
// p == 1: every element dropped (m = 0, scale never computed; mask all 0).
// The front end checks 0 <= p <= 1; the kernels assert.
//
// Every element is its own computation (threads split the elements, a Philox block of four
// positions at a time), so the bits are the same for any thread count, run to run and on
// CUDA. Backward WRITES dx; it does not add into it.
// CUDA (kernels/dropout_cuda.cu): the same signatures with device pointers and the same bits
// in deterministic mode (docs/cuda.md gives the GPU work split of each kernel).
#pragma once
#include <cstdint>

#include "base/exec.h"
#include "base/philox.h"

namespace lockstep {

inline constexpr int kDropoutStepShift = 40;  // position = (step << 40) + i

// Whether element i is kept at `step`; the rule above, for any device.
LS_MATH_INLINE bool dropout_keep(uint64_t seed, uint64_t stream, uint64_t step, uint64_t i, float p) {
  return uniform_f32(seed, stream, (step << kDropoutStepShift) + i) >= p;
}

// T is float or double. The Exec (base/exec.h) carries the SIMD level: ex.avx2() runs the
// float32 loops of dropout_avx2.cpp (same bits); the mode changes nothing here.
// y, x: n elements; mask: n bytes (1 kept, 0 dropped), or null when no backward follows.
// offset: the index of x[0] in a larger tensor (a data-parallel worker's rows of the global
// batch): element k draws as element offset + k, so the workers' masks, put together, are
// the whole batch's mask. Requires offset + n <= 2^40; offset 0 is the plain kernel.
template <typename T>
void dropout_forward_cpu(const Exec& ex, T* y, uint8_t* mask, const T* x, int64_t n, float p, uint64_t seed,
                         uint64_t stream, uint64_t step, uint64_t offset = 0);
// dx = dy * m from the forward's mask and p.
template <typename T>
void dropout_backward_cpu(const Exec& ex, T* dx, const T* dy, const uint8_t* mask, int64_t n, float p);

// ---- AVX2 (kernels/dropout_avx2.cpp; only with LOCKSTEP_HAVE_AVX2, when ex.avx2()) ----
// Same bits as the portable loops. Forward over the whole Philox blocks [b0, b1) (elements
// 4*b0 .. 4*b1 - 1, all < n); backward dx = dy * (mask ? scale : 0) over n elements.
void dropout_forward_blocks_avx2(float* y, uint8_t* mask, const float* x, int64_t b0, int64_t b1, float p,
                                 uint64_t seed, uint64_t stream, uint64_t first_block);
void dropout_backward_run_avx2(float* dx, const float* dy, const uint8_t* mask, int64_t n, float scale);

// ---- CUDA: the same contracts with device pointers (kernels/dropout_cuda.cu) ----
template <typename T>
void dropout_forward_cuda(const Exec& ex, T* y, uint8_t* mask, const T* x, int64_t n, float p, uint64_t seed,
                          uint64_t stream, uint64_t step, uint64_t offset = 0);
template <typename T>
void dropout_backward_cuda(const Exec& ex, T* dx, const T* dy, const uint8_t* mask, int64_t n, float p);

}  // namespace lockstep
