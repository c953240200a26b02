// BatchNorm1d over N x C, PyTorch semantics: in train mode, normalise with the batch mean
// and biased variance and update running_mean/running_var (unbiased variance) with
// `momentum` (none: cumulative average); in eval mode, normalise with the running
// statistics and change nothing. Parameters "weight" (ones), "bias" (zeros); buffers
// "running_mean", "running_var", "num_batches_tracked" (int64, 0-d).
#pragma once
#include <optional>

#include "nn/module.h"

namespace lockstep::nn {

struct BatchNormOptions {
  double eps = 1e-5;
  std::optional<double> momentum = 0.1;  // nullopt: cumulative moving average
  bool affine = true;
  bool track_running_stats = true;
};

class BatchNorm1d : public Module {
 public:
  explicit BatchNorm1d(int64_t num_features, BatchNormOptions opts = {})
      : BatchNorm1d("BatchNorm1d", num_features, opts) {}
  Tensor forward(const Tensor& x) override;
  Tensor& weight() { return weight_; }
  Tensor& bias() { return bias_; }
  Tensor& running_mean() { return running_mean_; }
  Tensor& running_var() { return running_var_; }
  int64_t num_batches_tracked() const;
  void reset_running_stats();

 protected:
  BatchNorm1d(const char* type_name, int64_t num_features, BatchNormOptions opts);
  int64_t num_features() const { return C_; }
  void reset_own(uint64_t seed, const std::string& prefix) override;
  std::string extra_repr() const override;
  const BatchNormOptions& options() const { return opts_; }
  // The momentum of this training forward; counts it in num_batches_tracked (0 when no
  // running statistics are tracked or in eval mode).
  double next_momentum();

 private:
  int64_t C_;
  BatchNormOptions opts_;
  Tensor weight_, bias_, running_mean_, running_var_, num_batches_;
};

// BatchNorm2d over N x C x H x W: the same parameters, buffers, keys and momentum rule, with
// per-channel statistics over N x H x W (core/ops.h batch_norm2d, kernels/batchnorm2d.h).
class BatchNorm2d : public BatchNorm1d {
 public:
  explicit BatchNorm2d(int64_t num_features, BatchNormOptions opts = {})
      : BatchNorm1d("BatchNorm2d", num_features, opts) {}
  Tensor forward(const Tensor& x) override;
};

}  // namespace lockstep::nn
