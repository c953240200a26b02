#include "train/distributed.h"

#include <stdexcept>

#include "base/error.h"
#include "core/ops.h"
#include "distributed/batch_tree.h"
#include "distributed/local_group.h"

namespace lockstep::tools {

namespace {

// Every batch size an epoch makes (the last batch may be short) must give every rank a
// non-empty node of the batch tree; BatchTree says why not, the flags say what to change.
void check_batches(const Trainer& t, int world) {
  const int64_t n = t.train_size(), bs = t.config().batch_size;
  for (int64_t rows : {bs < n ? bs : n, n % bs}) {
    if (rows == 0) continue;
    try {
      distributed::BatchTree tree(rows, world);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(str_cat("[train] --distributed: a batch of ", rows, " rows (--batch-size ", bs,
                                          " over ", n, " images) cannot be shared by ", world,
                                          " ranks: every rank needs at least one 32-row chunk (", e.what(), ")"));
    }
  }
}

}  // namespace

DistributedTraining::DistributedTraining(distributed::Communicator& comm, Trainer& trainer,
                                         std::shared_ptr<nn::BatchSync> sync, int fail_rank, int64_t fail_step)
    : comm_(comm), trainer_(trainer), dp_(comm, trainer.model(), std::move(sync)), fail_rank_(fail_rank),
      fail_step_(fail_step) {
  check_batches(trainer, comm.size());
  // The initial weights (or the loaded checkpoint's) are rank 0's on every rank.
  dp_.broadcast_state(0);
  // The data-parallel step replaces the Trainer's forward/backward; the layer outputs a
  // trace would want are this rank's rows only, so none are reported.
  trainer.set_forward_backward([this](const data::Batch& b, std::vector<std::pair<std::string, Tensor>>*) {
    const int64_t step = trainer_.global_step() + 1;
    if (comm_.rank() == fail_rank_ && step == fail_step_)
      throw std::runtime_error(str_cat("injected failure before step ", step));
    const int64_t rows = b.images.size(0);
    const auto [first, last] = dp_.begin_step(rows);
    Tensor x = distributed::take_rows(b.images.reshape({rows, 784}), first, last);
    Tensor y = distributed::take_rows(b.labels, first, last);
    Tensor local_sum = cross_entropy(trainer_.model().forward(x), y, Reduction::sum);
    const float loss = dp_.backward_mean(local_sum);  // the global mean, the same on every rank
    dp_.combine_gradients();
    return Tensor::scalar(static_cast<double>(loss));
  });
}

DistributedResult train_distributed(distributed::Communicator& comm, TrainConfig cfg, const TrainData& data,
                                    const DistributedOptions& o) {
  DistributedResult res;
  res.world = comm.size();
  try {
    if (comm.rank() != 0) cfg.save_dir.clear(), cfg.save_every = 0;
    auto sync = std::make_shared<nn::BatchSync>();
    Trainer trainer(cfg, o.sync_batchnorm ? sync : nullptr, data);
    DistributedTraining dt(comm, trainer, o.sync_batchnorm ? sync : nullptr, o.fail_rank, o.fail_step);
    if (o.check_replicas) trainer.set_observer([&](const StepRecord&) { dt.check_replicas(); });
    res.gradient_floats = dt.gradient_floats();
    res.train = trainer.run();
    comm.barrier();
    res.bytes_moved = comm.bytes_moved();
  } catch (const std::exception& e) {
    comm.abort(e.what());
  }
  return res;
}

DistributedResult train_at_world_size(int world, const TrainConfig& cfg, const TrainData& data,
                                      const DistributedOptions& o) {
  DistributedResult out;
  distributed::run_local_group(world, [&](distributed::Communicator& comm) {
    DistributedResult r = train_distributed(comm, cfg, data, o);
    if (comm.rank() == 0) out = std::move(r);
  });
  return out;
}

}  // namespace lockstep::tools
