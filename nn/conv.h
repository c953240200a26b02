// Conv2d: y = conv2d(x, W, b) (core/ops.h), NCHW. W is O x C/groups x kH x kW ("weight"),
// b is O ("bias"), PyTorch's names and shapes. Default init as PyTorch:
// kaiming_uniform(a = sqrt(5)) for W, which is U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with
// fan_in = C/groups kH kW, and the same bound for b; values keyed by (seed, full name).
#pragma once
#include "core/ops.h"
#include "nn/module.h"

namespace lockstep::nn {

struct Conv2dOptions {
  int64_t stride = 1, padding = 0, dilation = 1, groups = 1;  // the same for h and w
  bool bias = true;
  uint64_t seed = 0;  // initial values until reset_parameters(seed)
};

class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, Conv2dOptions opts = {});
  Tensor forward(const Tensor& x) override;
  Tensor& weight() { return weight_; }
  Tensor& bias() { return bias_; }
  const Conv2dArgs& args() const { return args_; }

 protected:
  void reset_own(uint64_t seed, const std::string& prefix) override;
  std::string extra_repr() const override;

 private:
  int64_t in_, out_, k_;
  Conv2dOptions opts_;
  Conv2dArgs args_;
  Tensor weight_, bias_;
};

}  // namespace lockstep::nn
