// Run-time choice between the vector kernels and the portable scalar ones.
// Every level computes the same operations in the same order, so they give the same bits;
// tests switch between them to prove it.
//
// Levels: scalar (portable C++), avx2 (AVX2 + FMA: every *_avx2.cpp kernel) and avx512
// (AVX-512F: the GEMM micro-kernel and fast mode's Eigen build; every other kernel keeps
// its AVX2 path there) on x86-64; neon (aarch64 Advanced SIMD: the GEMM micro-kernel and
// the contiguous sum, kernels/*_neon.cpp; every other kernel is portable there) on Arm.
// The x86 levels are ordered (avx512 includes avx2); neon is of another family, so compare
// levels with ==, never with < (Exec::avx2() says which kernels a level selects).
// A level is available when it was built (LOCKSTEP_SIMD) and the CPU and OS support it.
// LOCKSTEP_SIMD=0 | scalar | avx2 | avx512 | neon in the environment caps the starting
// level (a level this machine lacks gives the highest one below it, or scalar).
#pragma once

#include <vector>

namespace lockstep {

enum class SimdLevel : int { scalar = 0, avx2 = 1, avx512 = 2, neon = 3 };

SimdLevel simd_level_available();     // the highest level built and supported here
std::vector<SimdLevel> simd_levels_available();  // every level this machine can run, scalar first
SimdLevel simd_level();               // the active level
void set_simd_level(SimdLevel level); // a level not available here: the highest available below it, or scalar
const char* simd_level_name(SimdLevel level);  // "scalar", "avx2", "avx512", "neon"

bool simd_available();          // simd_level_available() != scalar
bool simd_enabled();            // simd_level() != scalar
void set_simd_enabled(bool on); // on: the highest available level; off: scalar

class SimdGuard {
 public:
  explicit SimdGuard(bool on) : saved_(simd_level()) { set_simd_enabled(on); }
  ~SimdGuard() { set_simd_level(saved_); }
  SimdGuard(const SimdGuard&) = delete;
  SimdGuard& operator=(const SimdGuard&) = delete;

 private:
  SimdLevel saved_;
};

class SimdLevelGuard {
 public:
  explicit SimdLevelGuard(SimdLevel level) : saved_(simd_level()) { set_simd_level(level); }
  ~SimdLevelGuard() { set_simd_level(saved_); }
  SimdLevelGuard(const SimdLevelGuard&) = delete;
  SimdLevelGuard& operator=(const SimdLevelGuard&) = delete;

 private:
  SimdLevel saved_;
};

}  // namespace lockstep
