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
  LS_CHECK_ARG(row_offset_ == 0 || x.dim() >= 1, "Dropout", "a row offset needs an input with rows, got ",
               shape_str(x.shape()));
  const int64_t row_numel = row_offset_ == 0 || x.size(0) == 0 ? 0 : x.numel() / x.size(0);
  return dropout(x, p_, true, seed_, stream_, step_++, static_cast<uint64_t>(row_offset_ * row_numel));
}

std::string Dropout::extra_repr() const { return str_cat("p=", p_, ", inplace=False"); }

}  // namespace lockstep::nn
