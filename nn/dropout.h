// Dropout: inverted dropout in train mode, identity in eval mode. The mask of the k-th
// training forward is a pure function of (seed, stream, k, element index): the layer's
// stream is keyed by its full name, so masks do not depend on other layers, on threads, or
// on the device. `step()` is the layer's only state: with the seed and the stream it is the
// layer's random state, rng_state_dict() key "dropout.<module name>" (int64 [3]: seed,
// stream, step, u64 bits), which checkpoints save; a load must match the stream.
#pragma once
#include "nn/module.h"

namespace lockstep::nn {

class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5);
  Tensor forward(const Tensor& x) override;
  double p() const { return p_; }
  uint64_t step() const { return step_; }
  void set_step(uint64_t s) { step_ = s; }
  // Restores the random state saved in a checkpoint (the stream is fixed by the name).
  void set_state(uint64_t seed, uint64_t step) { seed_ = seed, step_ = step; }
  uint64_t seed() const { return seed_; }
  uint64_t stream() const { return stream_; }
  // Data parallelism: the forward's input is rows [first_row, ...) of the global batch, so
  // its masks are drawn as those rows of the whole batch's mask (0: the whole batch).
  void set_row_offset(int64_t first_row) { row_offset_ = first_row; }
  int64_t row_offset() const { return row_offset_; }

 protected:
  void reset_own(uint64_t seed, const std::string& prefix) override;
  std::string extra_repr() const override;
  std::pair<std::string, Tensor> own_rng_state() const override;
  void load_own_rng_state(const Tensor& t) override;

 private:
  double p_;
  uint64_t seed_ = 0, stream_ = 0, step_ = 0;
  int64_t row_offset_ = 0;
};

}  // namespace lockstep::nn
