#include "train/distributed.h"

#include <stdexcept>

#include "base/error.h"
#include "core/ops.h"
#include "distributed/batch_tree.h"
#include "distributed/local_group.h"

namespace lockstep::tools {

DistributedTraining::DistributedTraining(distributed::Communicator& comm, Trainer& trainer,
                                         std::shared_ptr<nn::BatchSync> sync, int fail_rank, int64_t fail_step)
    : comm_(comm), trainer_(trainer), dp_(comm, trainer.model(), std::move(sync)), fail_rank_(fail_rank),
      fail_step_(fail_step) {
  // The initial weights (or the loaded checkpoint's) are rank 0's on every rank.
  dp_.broadcast_state(0);
  // Sharded work: this rank's loader makes only its rows of each global batch (the samples,
  // pixels and augmentation of those rows in the whole batch), and it evaluates only its
  // share of the test set; the correct counts are summed exactly.
  const int world = comm.size(), rank = comm.rank();
  trainer.loader().set_shard([world, rank](int64_t rows) { return distributed::BatchTree(rows, world).rows_of(rank); });
  trainer.shard_evaluation(Trainer::EvalShard{
      [world, rank](int64_t n) { return std::make_pair(n * rank / world, n * (rank + 1) / world); },
      [this](int64_t count) { return distributed::all_sum_int64(comm_, count); }});
  // The data-parallel step replaces the Trainer's forward/backward.
  trainer.set_forward_backward([this](const data::Batch& b, std::vector<std::pair<std::string, Tensor>>* outputs) {
    const int64_t step = trainer_.global_step() + 1;
    if (comm_.rank() == fail_rank_ && step == fail_step_)
      throw std::runtime_error(str_cat("injected failure before step ", step));
    const int64_t rows = b.total_rows();
    const auto [first, last] = dp_.begin_step(rows);
    Tensor x, y;
    if (b.global_rows < 0) {  // a whole batch (whole_batches()): keep this rank's rows
      x = distributed::take_rows(b.images.reshape({rows, 784}), first, last);
      y = distributed::take_rows(b.labels, first, last);
    } else {
      LS_CHECK_ARG(b.first_row == first && b.images.size(0) == last - first, "train",
                   "--distributed: the loader made rows [", b.first_row, ", ", b.first_row + b.images.size(0),
                   ") of batch ", b.index, ", this rank owns [", first, ", ", last, ")");
      x = b.images.reshape({last - first, 784}), y = b.labels;
    }
    if (first == last && !dp_.synced()) {  // per-rank BatchNorm on no rows: sit the step out
      const float loss = dp_.idle_backward_mean();
      dp_.combine_gradients();
      return Tensor::scalar(static_cast<double>(loss));
    }
    // Layer by layer; with gather_outputs() every layer's output is put back together from
    // all ranks' rows (one all-gather each) and handed to the trace, as one process has it.
    Tensor h = x;
    nn::Sequential& model = trainer_.model();
    for (size_t i = 0; i < model.size(); ++i) {
      h = model[i]->forward(h);
      if (!gather_outputs_) continue;
      Tensor whole = distributed::all_gather_rows(comm_, distributed::BatchTree(rows, comm_.size()), h.detach());
      if (outputs) outputs->push_back({"output." + std::to_string(i), whole});
    }
    const float loss = dp_.backward_mean(cross_entropy(h, y, Reduction::sum));  // the global mean, on every rank
    dp_.combine_gradients();
    return Tensor::scalar(static_cast<double>(loss));
  });
}

void DistributedTraining::whole_batches() { trainer_.loader().set_shard(nullptr); }

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
