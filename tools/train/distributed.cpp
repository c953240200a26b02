#include "train/distributed.h"

#include <stdexcept>

#include "base/error.h"
#include "core/ops.h"
#include "distributed/batch_tree.h"
#include "distributed/local_group.h"
#include "kernels/reduce_order.h"

namespace lockstep::tools {

DistributedTraining::DistributedTraining(distributed::Communicator& comm, Trainer& trainer,
                                         std::shared_ptr<nn::BatchSync> sync, int fail_rank, int64_t fail_step)
    : comm_(comm), trainer_(trainer), dp_(comm, trainer.module(), std::move(sync)), fail_rank_(fail_rank),
      fail_step_(fail_step) {
  // The initial weights (or the loaded checkpoint's) are rank 0's on every rank.
  dp_.broadcast_state(0);
  // Sharded work: this rank's loader makes only its rows of each global batch (the samples,
  // pixels and augmentation of those rows in the whole batch), and it evaluates only its
  // share of the test set; the correct counts are summed exactly.
  const int world = comm.size(), rank = comm.rank();
  if (trainer.gpt()) {
    install_gpt_step();
    return;
  }
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

// The GPT's batch sums run over token rows in the batch order (chunks of 32 tokens, then
// tree_sum); a rank must own whole sequences (attention couples a sequence's tokens). With
// T = context: when T divides 32, the token tree's nodes (multiples of 32 tokens) are whole
// sequences; when T = 32 * 2^k, the token tree's first k + log2(1) levels sum within a
// sequence and the tree above them is tree_sum over sequences: a BatchTree with one 32-row
// chunk per sequence (B * 32 pseudo-rows) cuts and combines exactly as the token tree does.
// Other contexts cannot be cut at sequence boundaries with the single-process bits: refused.
static distributed::BatchTree gpt_batch_tree(int64_t sequences, int64_t T, int world, int64_t* rows_per_sequence) {
  const int64_t chunk = kBatchChunk;
  if (chunk % T == 0) {
    *rows_per_sequence = T;
    return distributed::BatchTree(sequences * T, world);
  }
  const int64_t k = T / chunk;
  if (T % chunk == 0 && (k & (k - 1)) == 0) {
    *rows_per_sequence = chunk;
    return distributed::BatchTree(sequences * chunk, world);
  }
  throw std::invalid_argument(str_cat("[train] --distributed --model gpt: expected --context a power of two (the ",
                                      "batch order's ", chunk, "-token chunks must tile whole sequences), got ", T));
}

void DistributedTraining::install_gpt_step() {
  const int world = comm_.size(), rank = comm_.rank();
  const int64_t T = trainer_.config().context;
  int64_t unit = 0;
  gpt_batch_tree(1, T, world, &unit);  // refuses a context it cannot cut, before the first step
  trainer_.loader().set_shard([world, rank, T](int64_t rows) {
    int64_t u = 0;
    const auto r = gpt_batch_tree(rows, T, world, &u).rows_of(rank);
    return std::make_pair(r.first / u, r.second / u);
  });
  trainer_.set_forward_backward([this, T](const data::Batch& b, std::vector<std::pair<std::string, Tensor>>*) {
    const int64_t step = trainer_.global_step() + 1;
    if (comm_.rank() == fail_rank_ && step == fail_step_)
      throw std::runtime_error(str_cat("injected failure before step ", step));
    nn::Gpt& gpt = *trainer_.gpt();
    const int64_t B = b.total_rows();
    int64_t u = 0;
    const distributed::BatchTree tree = gpt_batch_tree(B, T, comm_.size(), &u);
    const auto [r0, r1] = tree.rows_of(comm_.rank());
    const int64_t first = r0 / u, last = r1 / u;  // this rank's sequences
    dp_.begin_step(tree, B * T, first * T);
    Tensor windows = b.global_rows < 0 ? distributed::take_rows(b.images, first, last) : b.images;
    LS_CHECK_ARG(windows.size(0) == last - first, "train", "--distributed: the loader made ", windows.size(0),
                 " sequences of batch ", b.index, ", this rank owns [", first, ", ", last, ")");
    float loss;
    if (first == last) {  // no sequences: zero gradients, still in every collective
      loss = dp_.idle_backward_mean();
      gpt.head_weight() = gpt.wte().weight().detach();
      gpt.head_weight().set_requires_grad(true);
      gpt.head_weight().set_grad(Tensor::zeros(gpt.wte().weight().shape()));
    } else {
      Tensor ids, targets;
      split_windows(windows, &ids, &targets);
      loss = dp_.backward_mean(cross_entropy(gpt.forward(ids), targets, Reduction::sum));
    }
    dp_.combine_gradients({gpt.head_weight()});
    gpt.fold_tied_gradient();
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
