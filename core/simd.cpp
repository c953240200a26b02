#include "core/simd.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "lockstep/config.h"

namespace lockstep {

bool simd_available() {
#if LOCKSTEP_HAVE_AVX2
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok;
#else
  return false;
#endif
}

// LOCKSTEP_SIMD=0 in the environment starts with the scalar path.
static bool initial_simd() {
  const char* env = std::getenv("LOCKSTEP_SIMD");
  if (env && std::strcmp(env, "0") == 0) return false;
  return simd_available();
}

static std::atomic<bool> g_simd{initial_simd()};

bool simd_enabled() { return g_simd.load(std::memory_order_relaxed); }
void set_simd_enabled(bool on) { g_simd.store(on && simd_available(), std::memory_order_relaxed); }

}  // namespace lockstep
