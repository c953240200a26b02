#include "nn/sync_batchnorm.h"

namespace lockstep::nn {

SyncBatchNorm::SyncBatchNorm(int64_t num_features, std::shared_ptr<const BatchSync> sync, BatchNormOptions opts)
    : BatchNorm1d(num_features, opts), C_(num_features), sync_(std::move(sync)) {}

Tensor SyncBatchNorm::forward(const Tensor& x) {
  if (!is_training() || !sync_ || !sync_->combine) return BatchNorm1d::forward(x);
  LS_CHECK_ARG(x.defined() && x.dim() == 2 && x.size(1) == C_, "SyncBatchNorm", "expected input N x ", C_, ", got ",
               x.defined() ? shape_str(x.shape()) : "undefined");
  const double momentum = next_momentum();
  return batch_norm_synced(x, running_mean(), running_var(), weight(), bias(), momentum, options().eps,
                           sync_->global_rows, sync_->combine);
}

}  // namespace lockstep::nn
