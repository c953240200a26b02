// NEON contiguous-order block partial (kernels/reduce.h; aarch64 only, LOCKSTEP_HAVE_NEON;
// called only when ex.neon()).
//
// The canonical order's 32 lanes live in eight q registers, acc[q] holding lanes 4q .. 4q+3,
// so one 32-element step is eight vector adds, each lane adding its own element exactly as
// the scalar loop does. The halving fold maps onto registers: s = 16 is acc[q] += acc[q+4],
// s = 8 acc[q] += acc[q+2], s = 4 acc[0] += acc[1], s = 2 the two 64-bit halves, s = 1
// lanes 0 and 1. Same bits as block_partial_scalar (tests/kernels/test_reduce.cpp).
#include <arm_neon.h>

#include "kernels/reduce.h"
#include "kernels/reduce_order.h"

namespace lockstep {

static_assert(kReduceLanes == 32, "the register layout below assumes 32 lanes");

float sum_block_neon(const float* x, int64_t len) {
  float32x4_t acc[8];
  for (int q = 0; q < 8; ++q) acc[q] = vdupq_n_f32(0.0f);
  const int64_t full = len - len % kReduceLanes;
  for (int64_t i = 0; i < full; i += kReduceLanes)
    for (int q = 0; q < 8; ++q) acc[q] = vaddq_f32(acc[q], vld1q_f32(x + i + 4 * q));
  if (full < len) {
    // the last < 32 elements go to lanes 0, 1, ... one by one, as in the scalar loop
    float lane[kReduceLanes];
    for (int q = 0; q < 8; ++q) vst1q_f32(lane + 4 * q, acc[q]);
    for (int64_t i = full; i < len; ++i) lane[i - full] += x[i];
    for (int q = 0; q < 8; ++q) acc[q] = vld1q_f32(lane + 4 * q);
  }
  for (int q = 0; q < 4; ++q) acc[q] = vaddq_f32(acc[q], acc[q + 4]);  // s = 16
  for (int q = 0; q < 2; ++q) acc[q] = vaddq_f32(acc[q], acc[q + 2]);  // s = 8
  acc[0] = vaddq_f32(acc[0], acc[1]);                                   // s = 4
  const float32x2_t v = vadd_f32(vget_low_f32(acc[0]), vget_high_f32(acc[0]));  // s = 2
  return vget_lane_f32(v, 0) + vget_lane_f32(v, 1);                    // s = 1
}

}  // namespace lockstep
