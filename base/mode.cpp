#include "base/mode.h"

#include <atomic>

namespace lockstep {

static std::atomic<Mode> g_mode{Mode::deterministic};

Mode mode() { return g_mode.load(std::memory_order_relaxed); }
void set_mode(Mode m) { g_mode.store(m, std::memory_order_relaxed); }
static std::atomic<bool> g_allow_tf32{false};
void set_allow_tf32(bool on) { g_allow_tf32.store(on, std::memory_order_relaxed); }
bool allow_tf32() { return g_allow_tf32.load(std::memory_order_relaxed); }

const char* mode_name(Mode m) { return m == Mode::deterministic ? "deterministic" : "fast"; }

}  // namespace lockstep
