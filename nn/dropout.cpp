#include "nn/dropout.h"

#include <cstring>

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

// The u64 values travel as int64 bits (safetensors has no u64 in PyTorch's reader).
std::pair<std::string, Tensor> Dropout::own_rng_state() const {
  std::vector<int64_t> v(3);
  const uint64_t u[3] = {seed_, stream_, step_};
  std::memcpy(v.data(), u, sizeof u);
  return {"dropout", Tensor::from_vector(v, {3})};
}

void Dropout::load_own_rng_state(const Tensor& t) {
  LS_CHECK_ARG(t.defined() && t.dtype() == DType::i64 && t.shape() == Shape{3}, "Dropout",
               "expected int64 [3] (seed, stream, step), got ", t.str());
  const std::vector<int64_t> v = t.to(Device::cpu).to_vector<int64_t>();
  uint64_t u[3];
  std::memcpy(u, v.data(), sizeof u);
  LS_CHECK_ARG(u[1] == stream_, "Dropout", "stream ", u[1], " does not match the layer's ", stream_);
  set_state(u[0], u[2]);
}

std::string Dropout::extra_repr() const { return str_cat("p=", p_, ", inplace=False"); }

}  // namespace lockstep::nn
