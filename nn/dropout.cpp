#include "nn/dropout.h"

#include "core/random.h"

namespace lockstep::nn {

Dropout::Dropout(double p) : Module("Dropout"), p_(p) {
  LS_CHECK_ARG(p >= 0.0 && p <= 1.0, "Dropout", "expected a probability in [0, 1], got ", p);
  reset_own(0, "");
}

void Dropout::reset_own(uint64_t seed, const std::string& prefix) {
  seed_ = seed;
  stream_ = stream_id("dropout:" + prefix);
  step_ = 0;
}

Tensor Dropout::forward(const Tensor& x) {
  if (!is_training() || p_ == 0.0) return x;
  return dropout(x, p_, true, seed_, stream_, step_++);
}

std::string Dropout::extra_repr() const { return str_cat("p=", p_, ", inplace=False"); }

}  // namespace lockstep::nn
