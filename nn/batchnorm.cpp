#include "nn/batchnorm.h"

#include "core/autograd.h"

namespace lockstep::nn {

BatchNorm1d::BatchNorm1d(const char* type_name, int64_t num_features, BatchNormOptions opts)
    : Module(type_name), C_(num_features), opts_(opts) {
  LS_CHECK_ARG(num_features > 0, type_name, "expected a positive number of features, got ", num_features);
  LS_CHECK_ARG(opts.eps > 0, type_name, "expected eps > 0, got ", opts.eps);
  if (opts_.affine) {
    weight_ = register_parameter("weight", Tensor::ones({C_}));
    bias_ = register_parameter("bias", Tensor::zeros({C_}));
  }
  if (opts_.track_running_stats) {
    running_mean_ = register_buffer("running_mean", Tensor::zeros({C_}));
    running_var_ = register_buffer("running_var", Tensor::ones({C_}));
    num_batches_ = register_buffer("num_batches_tracked", Tensor::zeros({}, DType::i64));
  }
}

void BatchNorm1d::reset_running_stats() {
  if (!opts_.track_running_stats) return;
  running_mean_.zero_();
  running_var_.fill_(1.0);
  num_batches_.zero_();
}

// Not random: weight = 1, bias = 0, fresh statistics (PyTorch's reset_parameters).
void BatchNorm1d::reset_own(uint64_t, const std::string&) {
  NoGradGuard ng;
  if (opts_.affine) {
    weight_.fill_(1.0);
    bias_.zero_();
  }
  reset_running_stats();
}

int64_t BatchNorm1d::num_batches_tracked() const {
  return num_batches_.defined() ? num_batches_.data<int64_t>()[0] : 0;
}

Tensor BatchNorm1d::forward(const Tensor& x) {
  LS_CHECK_ARG(x.defined() && x.dim() == 2 && x.size(1) == C_, "BatchNorm1d", "expected input N x ", C_, ", got ",
               x.defined() ? shape_str(x.shape()) : "undefined");
  const double momentum = next_momentum();
  return batch_norm(x, running_mean_, running_var_, weight_, bias_, is_training(), momentum, opts_.eps);
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  LS_CHECK_ARG(x.defined() && x.dim() == 4 && x.size(1) == num_features(), "BatchNorm2d", "expected input N x ",
               num_features(), " x H x W, got ", x.defined() ? shape_str(x.shape()) : "undefined");
  const double momentum = next_momentum();
  return batch_norm2d(x, running_mean(), running_var(), weight(), bias(), is_training(), momentum,
                      options().eps);
}

double BatchNorm1d::next_momentum() {
  if (!is_training() || !opts_.track_running_stats) return 0.0;
  num_batches_.data<int64_t>()[0] += 1;
  // momentum None: cumulative average, factor 1 / num_batches_tracked
  return opts_.momentum ? *opts_.momentum : 1.0 / static_cast<double>(num_batches_tracked());
}

std::string BatchNorm1d::extra_repr() const {
  return str_cat(C_, ", eps=", opts_.eps, ", momentum=", opts_.momentum ? str_cat(*opts_.momentum) : "None",
                 ", affine=", opts_.affine ? "True" : "False",
                 ", track_running_stats=", opts_.track_running_stats ? "True" : "False");
}

}  // namespace lockstep::nn
