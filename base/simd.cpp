#include "base/simd.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "lockstep/config.h"

namespace lockstep {

SimdLevel simd_level_available() {
  static const SimdLevel level = [] {
    SimdLevel l = SimdLevel::scalar;
#if LOCKSTEP_HAVE_AVX2
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) l = SimdLevel::avx2;
#endif
#if LOCKSTEP_HAVE_AVX512
    // GCC's check includes the OS's consent (XCR0) to save the zmm state.
    if (l == SimdLevel::avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq"))
      l = SimdLevel::avx512;
#endif
#if LOCKSTEP_HAVE_NEON
    l = SimdLevel::neon;  // Advanced SIMD is part of every AArch64 CPU (the ABI requires it)
#endif
    return l;
  }();
  return level;
}

const char* simd_level_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::scalar: return "scalar";
    case SimdLevel::avx2: return "avx2";
    case SimdLevel::avx512: return "avx512";
    case SimdLevel::neon: return "neon";
  }
  return "?";
}

std::vector<SimdLevel> simd_levels_available() {
  switch (simd_level_available()) {
    case SimdLevel::scalar: return {SimdLevel::scalar};
    case SimdLevel::avx2: return {SimdLevel::scalar, SimdLevel::avx2};
    case SimdLevel::avx512: return {SimdLevel::scalar, SimdLevel::avx2, SimdLevel::avx512};
    case SimdLevel::neon: return {SimdLevel::scalar, SimdLevel::neon};
  }
  return {SimdLevel::scalar};
}

// The level itself when this machine has it; else the highest available level below it in
// its own family (avx512 -> avx2), else scalar. Levels of two families are never compared.
static SimdLevel clamp(SimdLevel level) {
  const std::vector<SimdLevel> have = simd_levels_available();
  for (SimdLevel l = level;;) {
    for (SimdLevel h : have)
      if (h == l) return l;
    if (l != SimdLevel::avx512) return SimdLevel::scalar;
    l = SimdLevel::avx2;
  }
}

// LOCKSTEP_SIMD in the environment caps the starting level: 0 or scalar, avx2, avx512, neon.
static SimdLevel initial_level() {
  const char* env = std::getenv("LOCKSTEP_SIMD");
  if (env && (std::strcmp(env, "0") == 0 || std::strcmp(env, "scalar") == 0)) return SimdLevel::scalar;
  if (env && std::strcmp(env, "avx2") == 0) return clamp(SimdLevel::avx2);
  if (env && std::strcmp(env, "avx512") == 0) return clamp(SimdLevel::avx512);
  if (env && std::strcmp(env, "neon") == 0) return clamp(SimdLevel::neon);
  return simd_level_available();
}

static std::atomic<int> g_level{static_cast<int>(initial_level())};

SimdLevel simd_level() { return static_cast<SimdLevel>(g_level.load(std::memory_order_relaxed)); }
void set_simd_level(SimdLevel level) { g_level.store(static_cast<int>(clamp(level)), std::memory_order_relaxed); }

bool simd_available() { return simd_level_available() != SimdLevel::scalar; }
bool simd_enabled() { return simd_level() != SimdLevel::scalar; }
void set_simd_enabled(bool on) { set_simd_level(on ? simd_level_available() : SimdLevel::scalar); }

}  // namespace lockstep
