#include "nn/conv.h"

#include <cmath>

#include "core/autograd.h"
#include "core/random.h"

namespace lockstep::nn {

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, Conv2dOptions opts)
    : Module("Conv2d"),
      in_(in_channels),
      out_(out_channels),
      k_(kernel_size),
      opts_(opts),
      args_(opts.stride, opts.padding, opts.dilation, opts.groups) {
  LS_CHECK_ARG(in_ > 0 && out_ > 0 && k_ > 0, "Conv2d", "expected positive sizes, got in_channels=", in_,
               ", out_channels=", out_, ", kernel_size=", k_);
  LS_CHECK_ARG(opts.groups >= 1 && in_ % opts.groups == 0 && out_ % opts.groups == 0, "Conv2d",
               "expected groups to divide in_channels and out_channels, got groups=", opts.groups,
               " for in_channels=", in_, ", out_channels=", out_);
  LS_CHECK_ARG(opts.stride >= 1 && opts.dilation >= 1 && opts.padding >= 0, "Conv2d",
               "expected stride >= 1, dilation >= 1 and padding >= 0, got ", opts.stride, ", ", opts.dilation,
               " and ", opts.padding);
  weight_ = register_parameter("weight", Tensor::empty({out_, in_ / opts.groups, k_, k_}));
  if (opts_.bias) bias_ = register_parameter("bias", Tensor::empty({out_}));
  reset_own(opts_.seed, "");
}

void Conv2d::reset_own(uint64_t seed, const std::string& prefix) {
  NoGradGuard ng;
  // kaiming_uniform(a=sqrt(5)): gain sqrt(1/3), bound gain*sqrt(3/fan_in) = 1/sqrt(fan_in).
  const double fan_in = static_cast<double>(in_ / opts_.groups * k_ * k_);
  const double bound = 1.0 / std::sqrt(fan_in);
  fill_uniform(weight_, -bound, bound, seed, stream_id("init:" + prefix + "weight"));
  if (bias_.defined()) fill_uniform(bias_, -bound, bound, seed, stream_id("init:" + prefix + "bias"));
}

Tensor Conv2d::forward(const Tensor& x) { return conv2d(x, weight_, bias_, args_); }

std::string Conv2d::extra_repr() const {
  std::string s = str_cat(in_, ", ", out_, ", kernel_size=(", k_, ", ", k_, "), stride=(", opts_.stride, ", ",
                          opts_.stride, ")");
  if (opts_.padding) s += str_cat(", padding=(", opts_.padding, ", ", opts_.padding, ")");
  if (opts_.dilation != 1) s += str_cat(", dilation=(", opts_.dilation, ", ", opts_.dilation, ")");
  if (opts_.groups != 1) s += str_cat(", groups=", opts_.groups);
  if (!bias_.defined()) s += ", bias=False";
  return s;
}

}  // namespace lockstep::nn
