// LayerNorm and RMSNorm over the last dim (torch.nn.LayerNorm with a 1-d normalized_shape,
// torch.nn.RMSNorm). Parameters "weight" (ones) and, for LayerNorm, "bias" (zeros); none
// when elementwise_affine is false. Formulas and orders: kernels/layernorm.h. Each row is
// normalised alone (batch-invariant); the parameter gradients are batch-order sums.
#pragma once
#include "nn/module.h"

namespace lockstep::nn {

struct LayerNormOptions {
  double eps = 1e-5;
  bool elementwise_affine = true;
  bool bias = true;  // LayerNorm only
};

class LayerNorm : public Module {
 public:
  explicit LayerNorm(int64_t normalized_shape, LayerNormOptions opts = {});
  Tensor forward(const Tensor& x) override;
  Tensor& weight() { return weight_; }
  Tensor& bias() { return bias_; }

 protected:
  void reset_own(uint64_t seed, const std::string& prefix) override;
  std::string extra_repr() const override;

 private:
  int64_t C_;
  LayerNormOptions opts_;
  Tensor weight_, bias_;
};

struct RMSNormOptions {
  double eps = 1e-6;  // torch's default is the dtype's epsilon; lockstep takes a fixed one
  bool elementwise_affine = true;
};

class RMSNorm : public Module {
 public:
  explicit RMSNorm(int64_t normalized_shape, RMSNormOptions opts = {});
  Tensor forward(const Tensor& x) override;
  Tensor& weight() { return weight_; }

 protected:
  void reset_own(uint64_t seed, const std::string& prefix) override;
  std::string extra_repr() const override;

 private:
  int64_t C_;
  RMSNormOptions opts_;
  Tensor weight_;
};

}  // namespace lockstep::nn
