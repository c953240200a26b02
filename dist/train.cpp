#include "dist/train.h"

#include <chrono>
#include <stdexcept>

#include "base/error.h"
#include "core/random.h"
#include "data/loader.h"
#include "data/mnist.h"
#include "dist/data_parallel.h"
#include "dist/local_group.h"
#include "nn/models.h"
#include "optim/adam.h"
#include "optim/scheduler.h"
#include "serialize/checkpoint.h"

namespace lockstep::dist {
namespace {

using Clock = std::chrono::steady_clock;

// The objects of one run, built the same way by the reference and by every rank.
struct Run {
  std::shared_ptr<nn::Sequential> model;
  std::unique_ptr<optim::AdamW> opt;
  std::unique_ptr<optim::CosineAnnealingLR> sched;
  std::unique_ptr<data::DataLoader> loader;
  int64_t step = 0, epoch = 0;

  Run(const TrainConfig& cfg, std::shared_ptr<const data::Dataset> set, std::shared_ptr<nn::Sequential> m)
      : model(std::move(m)) {
    LS_CHECK_ARG(cfg.steps >= 1 && cfg.batch_size >= 2, "train", "expected steps >= 1 and batch_size >= 2, got ",
                 cfg.steps, " and ", cfg.batch_size);
    opt = std::make_unique<optim::AdamW>(
        model->parameters(), optim::AdamWOptions().lr(1e-3).betas(0.9, 0.999).eps(1e-8).weight_decay(0.05));
    sched = std::make_unique<optim::CosineAnnealingLR>(*opt, cfg.steps, 0.0);
    data::LoaderOptions lo;
    lo.batch_size = cfg.batch_size;
    lo.shuffle = true;
    lo.seed = cfg.seed;
    loader = std::make_unique<data::DataLoader>(std::move(set), lo);
  }
  serialize::TrainingState state() {
    serialize::TrainingState st;
    st.model = model.get(), st.optimizer = opt.get(), st.scheduler = sched.get(), st.loader = loader.get();
    st.step = step, st.epoch = epoch;
    return st;
  }
  void resume(const std::string& path) {
    serialize::TrainingState st = state();
    serialize::load_checkpoint(path, st);
    step = st.step, epoch = st.epoch;
  }
  // The next global batch, moving to the next epoch when one ends.
  data::Batch next_batch() {
    for (;;) {
      if (auto b = loader->next()) return std::move(*b);
      loader->begin_epoch(++epoch);
    }
  }
  void step_optimizer() {
    opt->step();
    sched->step();
    ++step;
  }
};

Tensor flat_images(const Tensor& images) { return images.reshape({images.size(0), -1}); }

}  // namespace

std::shared_ptr<const data::Dataset> make_train_set(const TrainConfig& cfg, std::string* source) {
  const std::string dir = cfg.data_dir.empty() ? data::kFashionMnistDir : cfg.data_dir;
  LS_CHECK_ARG(cfg.subset >= 1, "train", "expected subset >= 1, got ", cfg.subset);
  if (data::mnist_available(dir)) {
    auto full = data::load_mnist(dir, data::MnistSplit::train, data::kFashionMnistNormalize);
    LS_CHECK_ARG(cfg.subset <= full->size(), "train", "subset ", cfg.subset, " exceeds the ", full->size(),
                 " training images in ", dir);
    std::vector<int64_t> first(static_cast<size_t>(cfg.subset));
    for (int64_t i = 0; i < cfg.subset; ++i) first[static_cast<size_t>(i)] = i;
    if (source) *source = "fashion-mnist";
    return std::make_shared<data::Subset>(full, std::move(first));
  }
  // Synthetic: standard-normal images, labels i mod 10, all keyed by the seed.
  Tensor images = Tensor::empty({cfg.subset, 1, 28, 28});
  fill_normal(images, 0.0, 1.0, cfg.seed, stream_id("dist:synthetic"));
  std::vector<int64_t> labels(static_cast<size_t>(cfg.subset));
  for (int64_t i = 0; i < cfg.subset; ++i) labels[static_cast<size_t>(i)] = i % 10;
  if (source) *source = "synthetic";
  return std::make_shared<data::TensorDataset>(images, Tensor::from_vector(labels, {cfg.subset}), 10);
}

TrainResult train_reference(const TrainConfig& cfg, std::shared_ptr<const data::Dataset> set) {
  TrainResult res;
  if (!set) set = make_train_set(cfg, &res.data);
  Run run(cfg, set, nn::make_mlp(cfg.seed, cfg.dropout));
  if (!cfg.resume_path.empty()) run.resume(cfg.resume_path);
  const auto t0 = Clock::now();
  while (run.step < cfg.steps) {
    data::Batch b = run.next_batch();
    run.opt->zero_grad();
    Tensor loss = cross_entropy(run.model->forward(flat_images(b.images)), b.labels, Reduction::mean);
    loss.backward();
    res.losses.push_back(loss.data<float>()[0]);
    run.step_optimizer();
    if (cfg.checkpoint_every > 0 && run.step % cfg.checkpoint_every == 0)
      serialize::save_checkpoint(cfg.checkpoint_path, run.state());
  }
  res.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  res.steps = run.step;
  res.weights_sha256 = nn::state_dict_sha256(run.model->state_dict());
  return res;
}

TrainResult train_data_parallel(Communicator& comm, const TrainConfig& cfg, std::shared_ptr<const data::Dataset> set) {
  TrainResult res;
  res.world = comm.size();
  try {
    if (!set) set = make_train_set(cfg, &res.data);
    auto sync = std::make_shared<nn::BatchSync>();
    auto model = cfg.sync_batchnorm ? make_sync_mlp(cfg.seed, cfg.dropout, sync) : nn::make_mlp(cfg.seed, cfg.dropout);
    Run run(cfg, set, model);
    DataParallel dp(comm, *run.model, cfg.sync_batchnorm ? sync : nullptr);
    // Every rank reads a checkpoint it resumes from; rank 0's weights are then sent to all,
    // so the replicas start from the same bits even if the files differed.
    if (!cfg.resume_path.empty()) run.resume(cfg.resume_path);
    dp.broadcast_state(0);
    res.gradient_floats = dp.gradient_floats();
    const auto t0 = Clock::now();
    while (run.step < cfg.steps) {
      if (comm.rank() == cfg.fail_rank && run.step + 1 == cfg.fail_step)
        throw std::runtime_error("injected failure before step " + std::to_string(cfg.fail_step));
      data::Batch b = run.next_batch();
      const auto [first, last] = dp.begin_step(b.images.size(0));
      run.opt->zero_grad();
      Tensor x = take_rows(flat_images(b.images), first, last), y = take_rows(b.labels, first, last);
      Tensor local_sum = cross_entropy(run.model->forward(x), y, Reduction::sum);
      res.losses.push_back(dp.backward_mean(local_sum));
      dp.combine_gradients();
      run.step_optimizer();
      if (cfg.check_replicas) dp.check_replicas();
      if (cfg.checkpoint_every > 0 && run.step % cfg.checkpoint_every == 0 && comm.rank() == 0)
        serialize::save_checkpoint(cfg.checkpoint_path, run.state());
    }
    comm.barrier();
    res.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    res.steps = run.step;
    res.weights_sha256 = nn::state_dict_sha256(run.model->state_dict());
    res.bytes_moved = comm.bytes_moved();
  } catch (const std::exception& e) {
    comm.abort(e.what());
  }
  return res;
}

TrainResult train_at_world_size(int world, const TrainConfig& cfg, std::shared_ptr<const data::Dataset> set) {
  std::string source;
  if (!set) set = make_train_set(cfg, &source);
  TrainResult out;
  run_local_group(world, [&](Communicator& comm) {
    TrainResult r = train_data_parallel(comm, cfg, set);
    if (comm.rank() == 0) out = std::move(r);
  });
  out.data = source;
  return out;
}

}  // namespace lockstep::dist
