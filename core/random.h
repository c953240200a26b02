// Counter-based random numbers (Philox4x32-10, base/philox.h).
//
// Every random value in lockstep is a pure function of (seed, stream, position): no hidden
// mutable state, so a value never depends on the thread that asked for it, on how many
// numbers another consumer drew, or on the device. Each consumer — a layer's initialiser,
// a Dropout layer, the data loader's shuffle, an augmentation — has its own stream id,
// usually derived from its name with stream_id("init:0.weight").
#pragma once
#include <cstdint>
#include <string>

#include "core/tensor.h"

namespace lockstep {

// FNV-1a 64 of the name: a stable stream id for a named consumer.
uint64_t stream_id(const std::string& name);

// Element i of t (row-major) gets the draw at position `position + i` of (seed, stream).
// float32 or float64 CPU tensors.
// uniform: lo + (hi - lo) * u with u in [0, 1) (computed as u * (hi - lo) + lo, no fma).
void fill_uniform(Tensor& t, double lo, double hi, uint64_t seed, uint64_t stream, uint64_t position = 0);
// normal: mean + std * z, z a Box–Muller normal from the project's own log/sin/cos.
void fill_normal(Tensor& t, double mean, double std, uint64_t seed, uint64_t stream, uint64_t position = 0);

// A Generator is (seed, offset) and nothing more: a cursor into the streams of one seed.
// draw(n) hands out the positions [offset, offset + n) and advances; the state to save in a
// checkpoint is the two numbers.
class Generator {
 public:
  explicit Generator(uint64_t seed = 0, uint64_t offset = 0) : seed_(seed), offset_(offset) {}
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_state(uint64_t seed, uint64_t offset) { seed_ = seed, offset_ = offset; }
  uint64_t draw(uint64_t n) {  // first position of n fresh ones
    uint64_t p = offset_;
    offset_ += n;
    return p;
  }
  void uniform_(Tensor& t, double lo, double hi, uint64_t stream) {
    fill_uniform(t, lo, hi, seed_, stream, draw(static_cast<uint64_t>(t.numel())));
  }
  void normal_(Tensor& t, double mean, double std, uint64_t stream) {
    fill_normal(t, mean, std, seed_, stream, draw(static_cast<uint64_t>(t.numel())));
  }

 private:
  uint64_t seed_, offset_;
};

}  // namespace lockstep
