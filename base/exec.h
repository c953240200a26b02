// What a kernel may vary by: the mode, the SIMD level and (CUDA fast mode) TF32 products.
// An op's dispatch point (core/ops/dispatch.h) reads the process-wide settings once and
// passes them in; kernels never read base/mode.h or base/simd.h globals themselves, so a
// kernel's behaviour is a function of its arguments.
#pragma once

#include "base/mode.h"
#include "base/simd.h"

namespace lockstep {

struct Exec {
  Mode mode = Mode::deterministic;
  SimdLevel simd = SimdLevel::scalar;
  bool allow_tf32 = false;  // CUDA fast-mode GEMM only (base/mode.h)

  bool fast() const { return mode == Mode::fast; }
  // Which kernels the level selects; == only (base/simd.h: neon is not "above" avx512).
  bool avx2() const { return simd == SimdLevel::avx2 || simd == SimdLevel::avx512; }  // the AVX2+FMA kernels
  bool avx512() const { return simd == SimdLevel::avx512; }  // the AVX-512 GEMM and Eigen build
  bool neon() const { return simd == SimdLevel::neon; }      // the NEON GEMM and contiguous sum
  // The settings in force now: mode(), simd_level(), allow_tf32().
  static Exec current() { return Exec{lockstep::mode(), simd_level(), lockstep::allow_tf32()}; }
};

}  // namespace lockstep
