// Philox4x32-10, the counter-based generator of Salmon et al. (SC'11), and the draws that
// lockstep builds on it. No state: a value is a pure function of its arguments, computed
// with integer operations and the IEEE-exact functions of base/math.h, so it has the
// same bits on every CPU, SIMD path and GPU.
//
// The mapping of (seed, stream, position) to bits -- part of the determinism contract:
//   key     = (seed & 0xffffffff, seed >> 32)
//   counter = (block & 0xffffffff, block >> 32, stream & 0xffffffff, stream >> 32)
//   w[0..3] = philox4x32_10(counter, key)
//   philox_uint32 / uniform_f32 / normal_f32 at `position`: block = position / 4, and the
//     value uses word position % 4 (uniform) or the pair of words (2j, 2j + 1) with
//     j = (position / 2) % 2 (normal: the pair gives two normals, cos for an even
//     position, sin for an odd one).
//   uniform_f64 at `position`: block = position / 2, words (2j, 2j + 1), j = position % 2.
// So one block serves four consecutive float positions, and a consumer that owns a stream
// can be handed any range of positions independently of every other consumer. Draws of
// different kinds from the same (seed, stream, position) share bits: give each kind of
// draw its own stream.
#pragma once

#include <cstdint>

#include "base/math.h"

namespace lockstep {

struct Philox4x32 {
  uint32_t w[4];
};

// Ten rounds of: two 32x32 -> 64-bit products (multipliers 0xD2511F53, 0xCD9E8D57), their
// high halves xored with the other two counter words and the key, then the key bumped by
// the Weyl constants 0x9E3779B9, 0xBB67AE85 (the bump after the tenth round is unused).
LS_MATH_INLINE Philox4x32 philox4x32_10(const uint32_t counter[4], const uint32_t key[2]) {
  uint32_t c0 = counter[0], c1 = counter[1], c2 = counter[2], c3 = counter[3];
  uint32_t k0 = key[0], k1 = key[1];
  for (int round = 0; round < 10; ++round) {
    uint64_t p0 = static_cast<uint64_t>(0xD2511F53u) * c0;
    uint64_t p1 = static_cast<uint64_t>(0xCD9E8D57u) * c2;
    uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
    uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
    c0 = n0;
    c1 = static_cast<uint32_t>(p1);
    c2 = n2;
    c3 = static_cast<uint32_t>(p0);
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return Philox4x32{{c0, c1, c2, c3}};
}

// The four words of block `block` of (seed, stream); see the mapping at the top.
LS_MATH_INLINE Philox4x32 philox_block(uint64_t seed, uint64_t stream, uint64_t block) {
  const uint32_t counter[4] = {static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32),
                               static_cast<uint32_t>(stream), static_cast<uint32_t>(stream >> 32)};
  const uint32_t key[2] = {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)};
  return philox4x32_10(counter, key);
}

// Word i (0..3) of a block, by selects rather than a variable index, which would put the
// block in local memory on a GPU.
LS_MATH_INLINE uint32_t philox_word(const Philox4x32& b, uint32_t i) {
  uint32_t lo = (i & 1u) ? b.w[1] : b.w[0];
  uint32_t hi = (i & 1u) ? b.w[3] : b.w[2];
  return (i & 2u) ? hi : lo;
}

// A float in [0, 1): the top 24 bits times 2^-24, exact; 2^24 equally likely values.
LS_MATH_INLINE float uint32_to_uniform01f(uint32_t u) {
  return static_cast<float>(static_cast<int32_t>(u >> 8)) * 0x1p-24f;
}

// A double in [0, 1) from 53 bits: the top 27 bits of a, then the top 26 bits of b, times
// 2^-53. Two int32 conversions and an exact multiply-add (no int64 -> double, which AVX2
// lacks).
LS_MATH_INLINE double uint32x2_to_uniform01(uint32_t a, uint32_t b) {
  double hi = static_cast<double>(static_cast<int32_t>(a >> 5));
  double lo = static_cast<double>(static_cast<int32_t>(b >> 6));
  return (hi * 0x1p26 + lo) * 0x1p-53;
}

// Two standard normals from two words (Box-Muller):
//   u1 = ((a >> 8) + 1) 2^-24 in [2^-24, 1], never 0, so log(u1) is finite;
//   u2 = (b >> 8) 2^-24 in [0, 1);  rho = sqrt(-2 log u1);  theta = 2 pi u2 (float 2 pi);
//   z0 = rho cos(theta), z1 = rho sin(theta).
// |z| <= sqrt(48 ln 2) = 5.77: the tails beyond (probability 8e-9) are cut off.
LS_MATH_INLINE void box_muller_f32(uint32_t a, uint32_t b, float& z0, float& z1) {
  float u1 = static_cast<float>(static_cast<int32_t>((a >> 8) + 1u)) * 0x1p-24f;
  float u2 = uint32_to_uniform01f(b);
  float rho = ls_sqrtf(-2.0f * ls_logf(u1));
  float theta = 0x1.921fb6p+2f * u2;
  z0 = rho * ls_cosf(theta);
  z1 = rho * ls_sinf(theta);
}

// Raw 32 bits at (seed, stream, position).
LS_MATH_INLINE uint32_t philox_uint32(uint64_t seed, uint64_t stream, uint64_t position) {
  return philox_word(philox_block(seed, stream, position >> 2), static_cast<uint32_t>(position & 3u));
}

// Uniform float in [0, 1) at (seed, stream, position).
LS_MATH_INLINE float uniform_f32(uint64_t seed, uint64_t stream, uint64_t position) {
  return uint32_to_uniform01f(philox_uint32(seed, stream, position));
}

// Uniform double in [0, 1) at (seed, stream, position), two words per draw.
LS_MATH_INLINE double uniform_f64(uint64_t seed, uint64_t stream, uint64_t position) {
  Philox4x32 b = philox_block(seed, stream, position >> 1);
  bool second = (position & 1u) != 0u;
  return uint32x2_to_uniform01(second ? b.w[2] : b.w[0], second ? b.w[3] : b.w[1]);
}

// Standard normal float at (seed, stream, position). Positions 2m and 2m + 1 are the cos
// and sin halves of one Box-Muller pair; a caller filling a range can take both at once
// with philox_block and box_muller_f32 and get the same bits.
LS_MATH_INLINE float normal_f32(uint64_t seed, uint64_t stream, uint64_t position) {
  Philox4x32 b = philox_block(seed, stream, position >> 2);
  bool second_pair = (position & 2u) != 0u;
  float z0, z1;
  box_muller_f32(second_pair ? b.w[2] : b.w[0], second_pair ? b.w[3] : b.w[1], z0, z1);
  return ls_select((position & 1u) != 0u, z1, z0);
}

}  // namespace lockstep
