// Execution mode. deterministic (the default): every floating-point reduction follows
// an order fixed by the shapes alone, so results are bitwise reproducible across runs,
// thread counts, SIMD paths, batch composition and devices (docs/determinism.md).
// fast: library GEMMs, completion-order reductions and autotuning; faster, not reproducible.
#pragma once

namespace lockstep {

enum class Mode { deterministic, fast };

Mode mode();              // the current global mode
void set_mode(Mode m);    // sets it for the whole process
const char* mode_name(Mode m);

// Fast mode on CUDA: let cuBLAS SGEMM use TF32 tensor cores (10-bit mantissa products),
// as PyTorch's allow_tf32. Off by default; no effect in deterministic mode or on the CPU.
void set_allow_tf32(bool on);
bool allow_tf32();

// Sets the mode for a scope and restores the previous one on exit.
class ModeGuard {
 public:
  explicit ModeGuard(Mode m) : saved_(mode()) { set_mode(m); }
  ~ModeGuard() { set_mode(saved_); }
  ModeGuard(const ModeGuard&) = delete;
  ModeGuard& operator=(const ModeGuard&) = delete;

 private:
  Mode saved_;
};

}  // namespace lockstep
