// `lockstep train --distributed`: the Trainer driven data-parallel, one MPI process per rank.
//
//   auto comm = open_mpi_world();                       // MPI_COMM_WORLD, or a clear error
//   auto sync = std::make_shared<nn::BatchSync>();
//   Trainer t(cfg, sync);                               // SyncBatchNorm layers
//   DistributedTraining d(*comm, t, sync);              // rank 0's weights on every rank
//   t.run();                                            // each step through dist::DataParallel
//
// Every rank builds the same Trainer (same data, loader order, optimizer, schedule) and
// reads the same checkpoint when resuming; the Trainer's forward_backward seam becomes the
// data-parallel step of dist/data_parallel.h: this rank's rows of the global batch
// (--batch-size is the global batch), SyncBatchNorm statistics, Dropout rows keyed by the
// global row, the loss as the global sum / N, gradients combined in the batch order.
// Promise (deterministic mode): the weights after every step are, bit for bit, those of the
// plain `lockstep train` with the same flags, for any world size, and a checkpoint written
// at one world size (or by the plain trainer) resumes at any other.
#pragma once
#include <memory>

#include "dist/communicator.h"
#include "dist/data_parallel.h"
#include "train/trainer.h"

namespace lockstep::tools {

// The MPI world this process belongs to (a world of 1 outside mpirun). Throws
// std::runtime_error "[train] --distributed: ... built without MPI" in a build without it.
std::unique_ptr<dist::Communicator> open_mpi_world();

class DistributedTraining {
 public:
  // Checks that every batch of an epoch (the last one may be short) leaves each rank at
  // least one 32-row chunk (std::invalid_argument naming --batch-size otherwise), sends
  // rank 0's model to every rank and installs the data-parallel step in `trainer`.
  // fail_rank/fail_step: that rank throws before that (1-based) step (the failure tests).
  DistributedTraining(dist::Communicator& comm, Trainer& trainer, std::shared_ptr<nn::BatchSync> sync,
                      int fail_rank = -1, int64_t fail_step = -1);

  // Throws naming the first rank whose model state differs from rank 0's (debug check).
  void check_replicas() { dp_.check_replicas(); }
  dist::Communicator& comm() { return comm_; }

 private:
  dist::Communicator& comm_;
  Trainer& trainer_;
  dist::DataParallel dp_;
  int fail_rank_;
  int64_t fail_step_;
};

}  // namespace lockstep::tools
