#include "nn/sync_batchnorm.h"

namespace lockstep::nn {

SyncBatchNorm::SyncBatchNorm(int64_t num_features, std::shared_ptr<const BatchSync> sync, BatchNormOptions opts)
    : BatchNorm1d(num_features, opts), C_(num_features), sync_(std::move(sync)) {}

Tensor SyncBatchNorm::forward(const Tensor& x) {
  if (x.defined() && x.dim() == 4) return forward_2d(x);
  if (!is_training() || !sync_ || !sync_->combine) return BatchNorm1d::forward(x);
  LS_CHECK_ARG(x.defined() && x.dim() == 2 && x.size(1) == C_, "SyncBatchNorm", "expected input N x ", C_, ", got ",
               x.defined() ? shape_str(x.shape()) : "undefined");
  const double momentum = next_momentum();
  return batch_norm_synced(x, running_mean(), running_var(), weight(), bias(), momentum, options().eps,
                           sync_->global_rows, sync_->combine);
}

// N x C x H x W: BatchNorm2d's op, or its synced form in a data-parallel training step.
Tensor SyncBatchNorm::forward_2d(const Tensor& x) {
  LS_CHECK_ARG(x.size(1) == C_, "SyncBatchNorm", "expected input N x ", C_, " x H x W, got ", shape_str(x.shape()));
  const double momentum = next_momentum();
  if (!is_training() || !sync_ || !sync_->combine)
    return batch_norm2d(x, running_mean(), running_var(), weight(), bias(), is_training(), momentum, options().eps);
  return batch_norm2d_synced(x, running_mean(), running_var(), weight(), bias(), momentum, options().eps,
                             sync_->global_rows, sync_->combine);
}

}  // namespace lockstep::nn
