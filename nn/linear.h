// Linear: y = x W^T + b, W is out x in ("weight"), b is out ("bias").
// Default init as PyTorch: kaiming_uniform(a = sqrt(5)) for W, which is U(-1/sqrt(in),
// 1/sqrt(in)), and U(-1/sqrt(in), 1/sqrt(in)) for b; values keyed by (seed, full name).
#pragma once
#include "nn/module.h"

namespace lockstep::nn {

enum class Init { pytorch_default, xavier_uniform, xavier_normal, kaiming_normal, normal };

struct LinearOptions {
  bool bias = true;
  Init init = Init::pytorch_default;
  double normal_std = 0.02;  // for Init::normal
  uint64_t seed = 0;         // initial values until reset_parameters(seed)
};

class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, LinearOptions opts = {});
  Tensor forward(const Tensor& x) override;
  Tensor& weight() { return weight_; }
  Tensor& bias() { return bias_; }
  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }

 protected:
  void reset_own(uint64_t seed, const std::string& prefix) override;
  std::string extra_repr() const override;

 private:
  int64_t in_, out_;
  LinearOptions opts_;
  Tensor weight_, bias_;
};

}  // namespace lockstep::nn
