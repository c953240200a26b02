// The training loop behind `lockstep train`, reusable by other subcommands.
//
//   TrainConfig cfg;  cfg.subset = 1024;  cfg.max_steps = 30;
//   Trainer t(cfg);                 // loads the data, builds model/optimizer/schedule/loader
//   t.set_observer([](const StepRecord& r) { ... });   // optional, once per optimizer step
//   TrainResult r = t.run();        // resumes, trains, saves, evaluates
//
// The recipe (what the PyTorch twin reproduces): nn::make_mlp-shaped MLP 784-h1-...-10 with
// BatchNorm1d + ReLU + Dropout after each hidden Linear; one parameter group holding all
// parameters; AdamW (default), Adam or SGD; CosineAnnealingLR(T_max = planned steps,
// eta_min 0) stepped after every optimizer step; cross_entropy (mean); the loader shuffles
// with permutation(seed, epoch), drop_last = false. One step is:
//   opt.zero_grad(); loss = forward_backward(batch); opt.step(); sched.step();
// where forward_backward is a replaceable seam (set_forward_backward): a data-parallel mode
// swaps in its own "loss and gradients of this batch" and keeps everything else.
//
// Promise (deterministic mode): the same config gives the same weights, bit for bit, for any
// `threads` and `workers`, for a run resumed from any checkpoint it saved, and on either
// device (cfg.device: the model is initialised on the CPU and moved before the optimizer is
// built; batches are copied over per step; only the loss scalar and the predicted classes
// come back; checkpoints and weights_sha256 read CPU copies, so a CUDA run can resume on the
// CPU and vice versa). Built with a
// BatchSync, the BatchNorm layers are SyncBatchNorm (the same bits until a data-parallel
// step attaches the sync: `lockstep train --distributed`, tools/train/distributed.h).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/mode.h"
#include "core/tensor.h"
#include "data/loader.h"
#include "nn/sequential.h"
#include "optim/optimizer.h"
#include "optim/scheduler.h"
#include "serialize/safetensors.h"

namespace lockstep::nn {
struct BatchSync;
}

namespace lockstep::tools {

// Every flag of `lockstep train`. Defaults are the reference recipe.
struct TrainConfig {
  int64_t epochs = 10;
  int64_t max_steps = 0;            // stop at this global step (0: no limit); counted from step 0
  uint64_t seed = 0;                // model init, Dropout, shuffle, augmentation
  int threads = 0;                  // 0: the library default
  int workers = 0;                  // DataLoader worker threads
  Mode mode = Mode::deterministic;
  Device device = Device::cpu;      // model, optimizer state, batches and evaluation live here
  int64_t batch_size = 128;
  double lr = 1e-3;
  double weight_decay = 0.05;
  double momentum = 0.0;            // SGD only
  double dropout = 0.2;
  std::vector<int64_t> hidden{256, 128};
  std::string optimizer = "adamw";  // sgd | adam | adamw
  bool augment = false;             // RandomCrop(2) then RandomHorizontalFlip(0.5)
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  int64_t subset = 0;               // first N training images (0: all)
  int64_t test_subset = 0;          // first N test images (0: all)
  int64_t eval_batch_size = 1000;   // evaluation only; eval-mode outputs are batch-invariant
  std::string save_dir;             // rotating checkpoints "<dir>/ckpt-<step>.safetensors"
  int64_t save_every = 0;           // steps between checkpoints (0: only at the end)
  int keep_last = 3;                // checkpoints kept by the rotation (0: all)
  std::string resume_dir;           // resume from the latest checkpoint there
  bool fsync = true;                // durable checkpoint writes
};

// Checks ranges and choices; throws std::invalid_argument naming the flag ("--batch-size").
void validate(const TrainConfig& cfg);

// The flags that fix a run's meaning, as checkpoint metadata (user.<key>). A resume with a
// different value of any of them is refused; threads, workers, epochs, max_steps, saving and
// data_dir may differ.
serialize::Metadata meaning_flags(const TrainConfig& cfg);

// What the observer sees after each optimizer step. Tensors are aliases of live state: copy
// (or hash) them inside the callback.
struct StepRecord {
  int64_t step = 0;        // 1-based global step
  int64_t epoch = 0;       // 0-based
  int64_t batch = 0;       // batch index in the epoch
  float loss = 0.0f;
  double lr = 0.0;         // the lr this step used
  const data::Batch* batch_data = nullptr;
  // Layer outputs in forward order ("output.0" ... "output.8"), filled when the observer
  // asked for them (Trainer::set_observer's capture_outputs).
  std::vector<std::pair<std::string, Tensor>> outputs;
  // Gradients as left by forward_backward, in state-dict parameter order ("grad.0.weight").
  std::vector<std::pair<std::string, Tensor>> grads;
  // The model's state dict after the update ("param.0.weight", buffers included).
  std::vector<std::pair<std::string, Tensor>> params;
};

struct EpochRecord {
  int64_t epoch = 0;
  int64_t steps = 0;         // steps of this epoch run so far (counted across a resume)
  double train_loss = 0.0;   // mean step loss of the epoch (float32 losses summed in double)
  double test_accuracy = 0.0;
};

struct TrainResult {
  int64_t steps = 0;               // global step reached
  int64_t epoch = 0;               // epoch of the last step (0-based)
  int64_t steps_this_run = 0;      // steps run by this process
  double train_loss = 0.0;         // mean loss of the last epoch's steps (partial epoch too)
  double last_loss = 0.0;
  double test_accuracy = 0.0;      // on the test set after the last step
  std::string weights_sha256;      // nn::state_dict_sha256(model->state_dict())
  double samples_per_sec = 0.0;    // forward+backward+update time only
  double train_seconds = 0.0;
  int64_t samples = 0;
  std::string last_checkpoint;     // empty when nothing was saved
  std::optional<int64_t> resumed_from;  // the step of the checkpoint resumed from
};

class Trainer {
 public:
  // The loss of `batch` with the gradients of every parameter left in .grad (the caller has
  // zeroed them). `outputs`, when not null, receives each layer's output in forward order.
  using ForwardBackward =
      std::function<Tensor(const data::Batch& batch, std::vector<std::pair<std::string, Tensor>>* outputs)>;
  using Observer = std::function<void(const StepRecord&)>;
  using EpochObserver = std::function<void(const EpochRecord&)>;

  // Validates cfg, loads the data (std::runtime_error naming a missing/malformed file) and
  // builds everything. With cfg.resume_dir set the checkpoint is loaded here. With `sync`
  // the model's BatchNorm layers are SyncBatchNorm sharing it (make_train_mlp).
  explicit Trainer(TrainConfig cfg, std::shared_ptr<nn::BatchSync> sync = nullptr);
  ~Trainer();

  // capture: fill StepRecord outputs/grads/params (costly; for tracing).
  void set_observer(Observer obs, bool capture = false) { observer_ = std::move(obs), capture_ = capture; }
  void set_epoch_observer(EpochObserver obs) { epoch_observer_ = std::move(obs); }
  void set_forward_backward(ForwardBackward fb) { forward_backward_ = std::move(fb); }
  // Called before each step with the planned step count: for a progress bar.
  void set_progress(std::function<void(int64_t step, int64_t planned, float loss)> p) { progress_ = std::move(p); }

  // Trains until max_steps or the end of the last epoch; saves at save_every and at the end.
  TrainResult run();

  // The default seam: forward through the model, cross_entropy mean, backward.
  Tensor local_forward_backward(const data::Batch& batch, std::vector<std::pair<std::string, Tensor>>* outputs);
  // Test-set accuracy in eval mode (the model is put back in train mode).
  double evaluate();

  const TrainConfig& config() const { return cfg_; }
  nn::Sequential& model() { return *model_; }
  optim::Optimizer& optimizer() { return *opt_; }
  data::DataLoader& loader() { return *loader_; }
  int64_t step() const { return step_; }
  int64_t planned_steps() const { return t_max_; }
  int64_t batches_per_epoch() const { return loader_->num_batches(); }
  int64_t train_size() const { return train_set_->size(); }  // training images used

 private:
  void build();
  void resume();
  std::string save();

  TrainConfig cfg_;
  std::shared_ptr<const data::Dataset> train_set_, test_set_;
  std::shared_ptr<nn::BatchSync> sync_;
  std::shared_ptr<nn::Sequential> model_;
  std::unique_ptr<optim::Optimizer> opt_;
  std::unique_ptr<optim::LRScheduler> sched_;
  std::unique_ptr<data::DataLoader> loader_;
  int64_t step_ = 0, epoch_ = 0, t_max_ = 0;
  double epoch_loss_sum_ = 0.0;    // the current epoch's losses, restored on resume
  int64_t epoch_loss_count_ = 0;
  std::optional<int64_t> resumed_from_;
  Observer observer_;
  bool capture_ = false;
  EpochObserver epoch_observer_;
  ForwardBackward forward_backward_;
  std::function<void(int64_t, int64_t, float)> progress_;
};

// Builds the MLP 784-hidden...-10 with BatchNorm1d + ReLU + Dropout(p) after each hidden
// Linear (nn::make_mlp's layout and initialisation for hidden = {256, 128}). With `sync` the
// BatchNorm layers are nn::SyncBatchNorm sharing it: same keys, same initial bits.
std::shared_ptr<nn::Sequential> make_train_mlp(uint64_t seed, const std::vector<int64_t>& hidden, double dropout,
                                               std::shared_ptr<nn::BatchSync> sync = nullptr);

}  // namespace lockstep::tools
