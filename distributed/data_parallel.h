// DataParallel: the data-parallel training step, bitwise identical for any world size.
//
// Every rank holds the whole model. A global batch of N rows is cut by BatchTree: rank r
// runs forward and backward on its rows only, and every sum over the batch is put back
// together in the single-process batch order:
//   - the loss: each rank's batch-order sum of its rows' losses (cross_entropy with
//     Reduction::sum) is combined by the tree, then divided by N, as the mean loss does;
//     backward seeds it with 1/N, the gradient the mean gives every row;
//   - BatchNorm: SyncBatchNorm layers (nn/sync_batchnorm.h) combine their statistics and
//     backward sums through the shared BatchSync this class sets before each step;
//   - Dropout: each Dropout layer draws its rank's rows of the whole batch's mask;
//   - parameter gradients: each rank's gradient is its node of the tree (Linear's
//     grad-weight GEMM, the bias sums, BatchNorm's dgamma/dbeta all use the batch order);
//     combine_gradients() all-gathers them in one message and rebuilds the tree.
// So after combine_gradients() every rank holds, bit for bit, the gradients one process
// computes on the whole batch, and identical optimizer steps keep the replicas identical.
//   dp.begin_step(N) -> rows [b, e); forward on rows b..e; loss = dp.backward_mean(local sum);
//   dp.combine_gradients(); optimizer.step();
#pragma once
#include <memory>
#include <optional>
#include <utility>

#include "distributed/communicator.h"
#include "nn/module.h"
#include "nn/sequential.h"
#include "nn/sync_batchnorm.h"

namespace lockstep::distributed {

class DataParallel {
 public:
  // sync: the BatchSync shared by the model's SyncBatchNorm layers, or null (layers that
  // normalise over their own rank's rows only: the per-rank BatchNorm of common trainers,
  // which changes the results with the world size).
  DataParallel(Communicator& comm, nn::Module& model, std::shared_ptr<nn::BatchSync> sync);
  ~DataParallel();  // detaches the BatchSync: the layers are plain BatchNorm1d again
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  Communicator& comm() { return comm_; }
  // Parameters and buffers of the model from `root` (the initial weights, or a loaded checkpoint).
  void broadcast_state(int root = 0);
  // Prepares a step over a global batch of `global_rows` rows: returns this rank's rows.
  std::pair<int64_t, int64_t> begin_step(int64_t global_rows);
  // The same with the batch cut by `tree` (rows in the tree's units, returned) while the
  // loss is the mean over `mean_rows` rows (e.g. a GPT: the tree over whole sequences, the
  // mean over their tokens); `row_offset`: the global row of this rank's first row (Dropout).
  std::pair<int64_t, int64_t> begin_step(const BatchTree& tree, int64_t mean_rows, int64_t row_offset);
  // Backward of the global mean loss from this rank's 0-d float32 loss SUM over its rows;
  // returns the global mean loss (the same on every rank).
  float backward_mean(const Tensor& local_loss_sum);
  // For a rank that owns no rows of this batch and whose BatchNorm layers are per-rank (no
  // sync: there is nothing to normalise and no statistics to share): instead of forward and
  // backward_mean, takes part in the loss combination and leaves a zero gradient on every
  // parameter (read by no one: an empty node is never combined). Returns the global mean loss.
  float idle_backward_mean();
  bool synced() const { return sync_ != nullptr; }
  // Every parameter's gradient becomes the whole batch's, on every rank.
  void combine_gradients();
  // The same, with the gradients of `extra` leaves (not parameters of the model, e.g. a tied
  // head's alias, nn/gpt.h) after the parameters' in the one message. An idle rank sets
  // zero gradients on them first (idle_backward_mean does so for the parameters).
  void combine_gradients(const std::vector<Tensor>& extra);
  // Throws naming the rank unless every rank holds the same state-dict bits (debug check).
  void check_replicas();
  // Floats all-gathered per rank by combine_gradients (the gradient message).
  int64_t gradient_floats() const;

 private:
  Communicator& comm_;
  nn::Module& model_;
  std::shared_ptr<nn::BatchSync> sync_;
  std::optional<BatchTree> tree_;
  int64_t mean_rows_ = 0;
};

// Rows [begin, end) of t along dim 0, copied (contiguous CPU tensors).
Tensor take_rows(const Tensor& t, int64_t begin, int64_t end);

}  // namespace lockstep::distributed
