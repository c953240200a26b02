// Run-time choice between the AVX2/FMA kernels and the portable scalar ones.
// Both compute the same operations in the same order, so they give the same bits;
// tests switch between them to prove it.
#pragma once

namespace lockstep {

bool simd_available();          // built with LOCKSTEP_SIMD and the CPU has AVX2 and FMA
bool simd_enabled();            // available and not switched off
void set_simd_enabled(bool on); // switching on where unavailable keeps it off

class SimdGuard {
 public:
  explicit SimdGuard(bool on) : saved_(simd_enabled()) { set_simd_enabled(on); }
  ~SimdGuard() { set_simd_enabled(saved_); }
  SimdGuard(const SimdGuard&) = delete;
  SimdGuard& operator=(const SimdGuard&) = delete;

 private:
  bool saved_;
};

}  // namespace lockstep
