#include "nn/layernorm.h"

#include "core/autograd.h"

namespace lockstep::nn {

LayerNorm::LayerNorm(int64_t normalized_shape, LayerNormOptions opts)
    : Module("LayerNorm"), C_(normalized_shape), opts_(opts) {
  LS_CHECK_ARG(normalized_shape > 0, "LayerNorm", "expected a positive size, got ", normalized_shape);
  if (opts_.elementwise_affine) {
    weight_ = register_parameter("weight", Tensor::ones({C_}));
    if (opts_.bias) bias_ = register_parameter("bias", Tensor::zeros({C_}));
  }
}

void LayerNorm::reset_own(uint64_t, const std::string&) {
  NoGradGuard ng;
  if (weight_.defined()) weight_.fill_(1.0);
  if (bias_.defined()) bias_.zero_();
}

Tensor LayerNorm::forward(const Tensor& x) {
  LS_CHECK_ARG(x.defined() && x.dim() >= 1 && x.size(-1) == C_, "LayerNorm", "expected an input [..., ", C_,
               "], got ", x.defined() ? shape_str(x.shape()) : "undefined");
  return layer_norm(x, weight_, bias_, opts_.eps);
}

std::string LayerNorm::extra_repr() const {
  return str_cat("(", C_, ",), eps=", opts_.eps, ", elementwise_affine=", opts_.elementwise_affine ? "True" : "False");
}

RMSNorm::RMSNorm(int64_t normalized_shape, RMSNormOptions opts) : Module("RMSNorm"), C_(normalized_shape), opts_(opts) {
  LS_CHECK_ARG(normalized_shape > 0, "RMSNorm", "expected a positive size, got ", normalized_shape);
  if (opts_.elementwise_affine) weight_ = register_parameter("weight", Tensor::ones({C_}));
}

void RMSNorm::reset_own(uint64_t, const std::string&) {
  NoGradGuard ng;
  if (weight_.defined()) weight_.fill_(1.0);
}

Tensor RMSNorm::forward(const Tensor& x) {
  LS_CHECK_ARG(x.defined() && x.dim() >= 1 && x.size(-1) == C_, "RMSNorm", "expected an input [..., ", C_,
               "], got ", x.defined() ? shape_str(x.shape()) : "undefined");
  return rms_norm(x, weight_, opts_.eps);
}

std::string RMSNorm::extra_repr() const {
  return str_cat("(", C_, ",), eps=", opts_.eps, ", elementwise_affine=", opts_.elementwise_affine ? "True" : "False");
}

}  // namespace lockstep::nn
