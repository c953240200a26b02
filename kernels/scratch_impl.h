// Scratch<T>: a zero-initialised scratch array of the CPU kernel templates that are compiled
// once per SIMD level (batchnorm_impl.h, layernorm_impl.h, attention_impl.h). It lives in an
// anonymous namespace and uses no standard container, so each including file keeps its own
// copy and the linker never shares code built for AVX2 with the portable path
// (tests/isa_symbols.sh). Owned by its scope; resize() grows it and drops the contents.
#pragma once
#include <cstddef>
#include <cstdint>

namespace lockstep {
namespace {

template <typename T>
class Scratch {
 public:
  Scratch() = default;
  explicit Scratch(int64_t n) { resize(n); }
  ~Scratch() { delete[] p_; }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  // At least n elements, all zero when it had to grow (never a null pointer after a call).
  void resize(int64_t n) {
    if (p_ && n <= cap_) return;
    delete[] p_;
    cap_ = n > 0 ? n : 1;
    p_ = new T[static_cast<size_t>(cap_)]();
  }
  T* data() { return p_; }
  T& operator[](int64_t i) { return p_[i]; }

 private:
  T* p_ = nullptr;
  int64_t cap_ = 0;
};

}  // namespace
}  // namespace lockstep
