// Data-parallel training through the one training loop (tools/train/trainer.h): the
// Trainer's forward_backward seam becomes the data-parallel step of distributed/data_parallel.h.
//
//   auto sync = std::make_shared<nn::BatchSync>();
//   Trainer t(cfg, sync);                               // SyncBatchNorm layers
//   DistributedTraining d(comm, t, sync);               // rank 0's weights on every rank
//   t.run();                                            // each step through distributed::DataParallel
//
// Every rank builds the same Trainer (same data, loader order, optimizer, schedule) and
// reads the same checkpoint when resuming; each step runs this rank's rows of the global
// batch (cfg.batch_size is the global batch), SyncBatchNorm statistics, Dropout rows keyed
// by the global row, the loss as the global sum / N, gradients combined in the batch order.
// Promise (deterministic mode): the weights after every step are, bit for bit, those of the
// plain Trainer with the same config, for any world size, and a checkpoint written at one
// world size (or by the plain trainer) resumes at any other. Without a sync (per-rank
// BatchNorm, as common data-parallel trainers do) the result depends on the world size.
#pragma once
#include <memory>

#include "distributed/communicator.h"
#include "distributed/data_parallel.h"
#include "train/trainer.h"

namespace lockstep::tools {

class DistributedTraining {
 public:
  // Sends rank 0's model to every rank and installs the data-parallel step in `trainer`.
  // Any batch size works: a rank that owns no rows of a batch (fewer 32-row chunks than
  // ranks, e.g. the epoch's short last batch) still takes part in every collective.
  // fail_rank/fail_step: that rank throws before that (1-based) step (the failure tests).
  DistributedTraining(distributed::Communicator& comm, Trainer& trainer, std::shared_ptr<nn::BatchSync> sync,
                      int fail_rank = -1, int64_t fail_step = -1);

  // This rank's loader makes whole batches again (the rank keeps its rows of them): for the
  // rank that writes a trace or the sample order. Bits are the same either way.
  void whole_batches();
  // Every rank (all must call it) gathers each layer's output of the whole batch, and the
  // Trainer's trace receives them on the ranks that ask (--trace on rank 0).
  void gather_outputs() { gather_outputs_ = true; }
  // Throws naming the first rank whose model state differs from rank 0's (debug check).
  void check_replicas() { dp_.check_replicas(); }
  distributed::Communicator& comm() { return comm_; }
  int64_t gradient_floats() const { return dp_.gradient_floats(); }

 private:
  void install_gpt_step();  // --model gpt: whole sequences per rank (distributed.cpp)
  distributed::Communicator& comm_;
  Trainer& trainer_;
  distributed::DataParallel dp_;
  int fail_rank_;
  int64_t fail_step_;
  bool gather_outputs_ = false;
};

// A whole data-parallel run, as the tests, the lab and tests/distributed/dist_check.cpp make it.
struct DistributedOptions {
  bool sync_batchnorm = true;   // false: per-rank BatchNorm
  bool check_replicas = false;  // compare every rank's state-dict hash after each step
  int fail_rank = -1;           // failure injection (DistributedTraining)
  int64_t fail_step = -1;
};
struct DistributedResult {
  TrainResult train;
  int world = 1;
  uint64_t bytes_moved = 0;      // this rank's collective traffic (sent + received)
  int64_t gradient_floats = 0;   // floats in one gradient message
};

// Every rank calls it with the same arguments; rank 0 alone writes checkpoints. A rank that
// throws calls comm.abort() with the error (an MPI job ends naming the rank).
DistributedResult train_distributed(distributed::Communicator& comm, TrainConfig cfg, const TrainData& data,
                                    const DistributedOptions& o = {});
// train_distributed on `world` ranks that are threads of this process (distributed::LocalGroup);
// returns rank 0's result.
DistributedResult train_at_world_size(int world, const TrainConfig& cfg, const TrainData& data,
                                      const DistributedOptions& o = {});

}  // namespace lockstep::tools
