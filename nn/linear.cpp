#include "nn/linear.h"

#include <cmath>

#include "core/autograd.h"
#include "core/random.h"

namespace lockstep::nn {

Linear::Linear(int64_t in_features, int64_t out_features, LinearOptions opts)
    : Module("Linear"), in_(in_features), out_(out_features), opts_(opts) {
  LS_CHECK_ARG(in_features > 0 && out_features > 0, "Linear", "expected positive sizes, got in=", in_features,
               ", out=", out_features);
  weight_ = register_parameter("weight", Tensor::empty({out_, in_}));
  if (opts_.bias) bias_ = register_parameter("bias", Tensor::empty({out_}));
  reset_own(opts_.seed, "");
}

void Linear::reset_own(uint64_t seed, const std::string& prefix) {
  NoGradGuard ng;
  // Bounds in double from IEEE sqrt and division: the same on every machine.
  const double fan_in = static_cast<double>(in_), fan_out = static_cast<double>(out_);
  const uint64_t ws = stream_id("init:" + prefix + "weight");
  switch (opts_.init) {
    case Init::pytorch_default: {  // kaiming_uniform(a=sqrt(5)): gain sqrt(1/3), bound gain*sqrt(3/fan_in)
      double bound = 1.0 / std::sqrt(fan_in);
      fill_uniform(weight_, -bound, bound, seed, ws);
      break;
    }
    case Init::xavier_uniform: {
      double bound = std::sqrt(6.0 / (fan_in + fan_out));
      fill_uniform(weight_, -bound, bound, seed, ws);
      break;
    }
    case Init::xavier_normal:
      fill_normal(weight_, 0.0, std::sqrt(2.0 / (fan_in + fan_out)), seed, ws);
      break;
    case Init::kaiming_normal:  // ReLU gain sqrt(2), fan_in mode
      fill_normal(weight_, 0.0, std::sqrt(2.0 / fan_in), seed, ws);
      break;
    case Init::normal:
      fill_normal(weight_, 0.0, opts_.normal_std, seed, ws);
      break;
  }
  if (bias_.defined()) {
    if (opts_.init == Init::pytorch_default) {
      double bound = 1.0 / std::sqrt(fan_in);
      fill_uniform(bias_, -bound, bound, seed, stream_id("init:" + prefix + "bias"));
    } else {
      bias_.zero_();
    }
  }
}

Tensor Linear::forward(const Tensor& x) { return linear(x, weight_, bias_); }

std::string Linear::extra_repr() const {
  return str_cat("in_features=", in_, ", out_features=", out_, ", bias=", bias_.defined() ? "True" : "False");
}

}  // namespace lockstep::nn
