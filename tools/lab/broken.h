// Deliberately broken components the library does not provide (it never will): the lab's
// problems use them to show what lockstep's own versions avoid. Demonstrations only.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "nn/module.h"

namespace lockstep_cli::lab {

// The classic *stateful* global generator (like torch.manual_seed): every draw advances one
// shared position, so one extra draw anywhere shifts every value drawn after it. Draws are
// Philox values of (seed, a fixed "global" stream, position), as lockstep's keyed streams
// are; what breaks reproducibility is the shared position, not the generator.
void manual_seed(uint64_t seed);
float global_uniform();                                               // next value in [0, 1)
void global_fill_uniform(lockstep::Tensor& t, double lo, double hi);  // t.numel() next values

// Dropout whose mask comes from the stateful global generator (global_uniform above, as
// torch.manual_seed's generator): every mask depends on how many numbers anyone drew from
// that generator before, so one extra draw anywhere shifts every later mask.
class GlobalRngDropout : public lockstep::nn::Module {
 public:
  explicit GlobalRngDropout(double p) : Module("GlobalRngDropout"), p_(p) {}
  lockstep::Tensor forward(const lockstep::Tensor& x) override;

 private:
  double p_;
};

// Sums x the way atomics do: `threads` threads claim pieces of `piece` elements from a
// shared counter, sum each piece, and add the piece sum into one shared float with a
// compare-and-swap loop (a float atomicAdd). The order of the additions is the order the
// threads get there, so the result depends on timing.
float atomic_order_sum(const std::vector<float>& x, int threads, int64_t piece);

}  // namespace lockstep_cli::lab
