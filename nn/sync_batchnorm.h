// SyncBatchNorm: BatchNorm1d for data parallelism. In train mode with a BatchSync set, the
// forward sees this process's rows of a global batch and normalises with the statistics of
// the whole global batch (core/ops.h batch_norm_synced): y, dx and the running statistics
// are bit for bit those of BatchNorm1d on the whole batch; the weight/bias gradients are
// this process's partial sums, to be combined with the other gradients. Without a sync (or
// in eval mode) it is exactly BatchNorm1d. Same parameters, buffers and state-dict keys.
// An N x C x H x W input is BatchNorm2d's (batch_norm2d, batch_norm2d_synced), as PyTorch's
// SyncBatchNorm takes any rank; global_rows then counts samples.
#pragma once
#include <memory>

#include "core/ops.h"
#include "nn/batchnorm.h"

namespace lockstep::nn {

// Shared by the SyncBatchNorm layers of a model; the data-parallel driver (distributed/) sets it
// before each step: the global batch's row count and how partial sums are combined.
struct BatchSync {
  int64_t global_rows = 0;
  BatchSumCombine combine;  // empty: no synchronisation (plain BatchNorm1d)
};

class SyncBatchNorm : public BatchNorm1d {
 public:
  SyncBatchNorm(int64_t num_features, std::shared_ptr<const BatchSync> sync, BatchNormOptions opts = {});
  Tensor forward(const Tensor& x) override;

 private:
  Tensor forward_2d(const Tensor& x);
  int64_t C_;
  std::shared_ptr<const BatchSync> sync_;
};

}  // namespace lockstep::nn
