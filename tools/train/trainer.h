// The one training loop of the tools: `lockstep train`, the lab's runs (tools/lab/harness.h)
// and data-parallel training (tools/train/distributed.h) all step through it.
//
//   TrainConfig cfg;  cfg.subset = 1024;  cfg.max_steps = 30;
//   Trainer t(cfg);                 // loads the data, builds model/optimizer/schedule/loader
//   t.set_observer([](const StepRecord& r) { ... });   // optional, once per optimizer step
//   TrainResult r = t.run();        // resumes, trains, saves, evaluates
// or, step by step (the lab): Trainer t(cfg, nullptr, data); t.step(); t.step(); ...
//
// The recipe (what the PyTorch twin reproduces): nn::make_mlp, 784-h1-...-10 with
// BatchNorm1d (optional) + ReLU + Dropout after each hidden Linear (or, with cfg.model,
// nn::make_cnn / nn::make_lenet5, which take the same N x 784 batches); one parameter group
// holding all parameters; AdamW (default), Adam or SGD; CosineAnnealingLR(T_max = planned
// steps, eta_min 0) stepped after every optimizer step, or a constant lr; cross_entropy
// (mean); the loader shuffles with permutation(seed, epoch), drop_last as configured. One
// step is:
//   opt.zero_grad(); loss = forward_backward(batch); opt.step(); sched.step();
// where forward_backward is a replaceable seam (set_forward_backward): a data-parallel mode
// swaps in its own "loss and gradients of this batch" and keeps everything else.
// The Trainer leaves the process-wide mode and thread count alone: its callers set them.
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
#include "data/text.h"
#include "nn/gpt.h"
#include "nn/sequential.h"
#include "optim/optimizer.h"
#include "optim/scheduler.h"
#include "serialize/checkpoint.h"
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
  std::string model = "mlp";        // mlp | cnn | lenet5 (nn/models.h, nn/models_cnn.h)
  std::vector<int64_t> channels{32, 64};  // --model cnn: one 3x3 conv block per entry
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
  // Knobs the lab turns (no `lockstep train` flag):
  std::optional<uint64_t> init_seed;  // model init and Dropout only, when set
  bool batchnorm = true;            // BatchNorm1d after each hidden Linear
  bool drop_last = false;           // the loader leaves out a short last batch
  std::string schedule = "cosine";  // cosine | constant
  // --model gpt (nn/gpt.h; the text pipeline of data/text.h). ApplyGptDefaults() sets the
  // GPT recipe's values of the shared flags (batch, lr, weight decay, epochs) where unset.
  std::string text = "/usr/share/games/fortunes/fortunes";  // a file or a directory of files
  int64_t context = 128, n_layer = 4, n_head = 4, n_embd = 128;
  int64_t warmup = 0;               // linear warm-up steps, then cosine (0: cosine only)
  double clip = 0.0;                // clip_grad_norm_ max norm (0: none)
  double val_fraction = 0.1;        // the text's last share is the validation set
};

// The GPT recipe's values of the flags it shares with the MLP's (called by `lockstep train
// --model gpt` for every flag the command line left unset): batch 16, lr 1e-3, weight decay
// 0.1, 8 epochs, warm-up 10 steps, clip 1.0, dropout 0.
void apply_gpt_defaults(TrainConfig& cfg, const std::vector<std::string>& set_flags);

// A batch of text windows (float32 [B, T + 1], data/text.h) as the model's int64 inputs
// [B, T] (tokens 0..T-1 of each window) and targets [B T] (tokens 1..T).
void split_windows(const Tensor& windows, Tensor* ids, Tensor* targets);

// The data a Trainer trains and evaluates on, when the caller has it already; test may be
// null (no evaluation: test_accuracy stays 0).
struct TrainData {
  std::shared_ptr<const data::Dataset> train, test;
};

// The first n training images of the Fashion-MNIST files in `dir` (normalised as the recipe
// does), or, where those files are absent, n standard-normal images keyed by `seed` with
// labels i mod 10. *source: "fashion-mnist" or "synthetic".
std::shared_ptr<const data::Dataset> train_images_or_synthetic(const std::string& dir, int64_t n, uint64_t seed,
                                                               std::string* source = nullptr);

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
  double val_loss = 0.0;     // --model gpt: mean validation token loss (test_accuracy unused)
};

struct TrainResult {
  int64_t steps = 0;               // global step reached
  int64_t epoch = 0;               // epoch of the last step (0-based)
  int64_t steps_this_run = 0;      // steps run by this process
  double train_loss = 0.0;         // mean loss of the last epoch's steps (partial epoch too)
  double last_loss = 0.0;
  double test_accuracy = 0.0;      // on the test set after the last step
  double val_loss = 0.0;           // --model gpt: validation loss after the last step
  std::string weights_sha256;      // nn::state_dict_sha256(model->state_dict())
  double samples_per_sec = 0.0;    // forward+backward+update time only
  double train_seconds = 0.0;
  int64_t samples = 0;
  std::vector<float> losses;       // the loss of every step run by this process
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

  // Validates cfg, loads the data unless `data` has it (std::runtime_error naming a
  // missing/malformed file) and builds everything. With cfg.resume_dir set the checkpoint is
  // loaded here. With `sync` the model's BatchNorm layers are SyncBatchNorm sharing it.
  explicit Trainer(TrainConfig cfg, std::shared_ptr<nn::BatchSync> sync = nullptr, TrainData data = {});
  ~Trainer();

  // capture: fill StepRecord outputs/grads/params (costly; for tracing).
  void set_observer(Observer obs, bool capture = false) { observer_ = std::move(obs), capture_ = capture; }
  void set_epoch_observer(EpochObserver obs) { epoch_observer_ = std::move(obs); }
  void set_forward_backward(ForwardBackward fb) { forward_backward_ = std::move(fb); }
  // Called before each step with the planned step count: for a progress bar.
  void set_progress(std::function<void(int64_t step, int64_t planned, float loss)> p) { progress_ = std::move(p); }

  // Trains until max_steps or the end of the last epoch; saves at save_every and at the end.
  TrainResult run();
  // One step on the next batch (a new epoch begins when the loader runs dry), for callers
  // that drive the loop themselves; no evaluation, checkpoint or observer. Returns the loss.
  float step();

  // Replaces the DataLoader as step()'s source of batches (the lab's deliberately broken
  // loaders): next() gives the epoch's next batch or nullopt at its end, begin_epoch(e)
  // starts epoch e. run() refuses a Trainer with a batch source.
  struct BatchSource {
    std::function<std::optional<data::Batch>()> next;
    std::function<void(int64_t)> begin_epoch;
  };
  void set_batch_source(BatchSource source) { source_ = std::move(source); }

  // Model, optimizer, scheduler, loader and position, for serialize::save_checkpoint and
  // load_checkpoint; after a load, set_position(st.step, st.epoch) continues from there.
  serialize::TrainingState training_state();
  void set_position(int64_t step, int64_t epoch) { step_ = step, epoch_ = epoch; }

  // The default seam: forward through the model, cross_entropy mean, backward.
  Tensor local_forward_backward(const data::Batch& batch, std::vector<std::pair<std::string, Tensor>>* outputs);
  // Test-set accuracy in eval mode (the model is put back in train mode).
  double evaluate();
  // Data parallelism: evaluate() tests only the rows rows(n) of the n test images and
  // total(count) returns the sum of every process's correct count (an exact integer sum; the
  // eval-mode forward is batch-invariant, so any split gives the same predictions).
  struct EvalShard {
    std::function<std::pair<int64_t, int64_t>(int64_t n)> rows;
    std::function<int64_t(int64_t count)> total;
  };
  void shard_evaluation(EvalShard shard) { eval_shard_ = std::move(shard); }

  const TrainConfig& config() const { return cfg_; }
  // The MLP/CNN (throws for --model gpt: use module() or gpt()).
  nn::Sequential& model();
  nn::Module& module();                     // whichever model this is
  nn::Gpt* gpt() { return gpt_.get(); }     // null unless --model gpt
  const data::CharVocab& vocab() const { return vocab_; }
  const std::shared_ptr<nn::Sequential>& model_ptr() const { return model_; }
  optim::Optimizer& optimizer() { return *opt_; }
  data::DataLoader& loader() { return *loader_; }
  int64_t global_step() const { return step_; }
  int64_t epoch() const { return epoch_; }
  const std::vector<float>& losses() const { return losses_; }  // every step of this process
  int64_t planned_steps() const { return t_max_; }
  int64_t batches_per_epoch() const { return loader_->num_batches(); }
  int64_t train_size() const { return train_set_->size(); }  // training images used

 private:
  void build();
  void build_gpt(uint64_t init);
  void load_text();
  Tensor gpt_forward_backward(const data::Batch& b);
  double evaluate_gpt();
  void resume();
  std::string save();
  float train_step(const data::Batch& b, StepRecord* rec);  // the step both run() and step() take

  TrainConfig cfg_;
  std::shared_ptr<const data::Dataset> train_set_, test_set_;
  std::shared_ptr<nn::BatchSync> sync_;
  std::shared_ptr<nn::Sequential> model_;
  std::shared_ptr<nn::Gpt> gpt_;
  data::CharVocab vocab_;
  double val_loss_ = 0.0;
  std::unique_ptr<optim::Optimizer> opt_;
  std::shared_ptr<optim::LRScheduler> sched_;
  std::unique_ptr<data::DataLoader> loader_;
  int64_t step_ = 0, epoch_ = 0, t_max_ = 0;
  double epoch_loss_sum_ = 0.0;    // the current epoch's losses, restored on resume
  int64_t epoch_loss_count_ = 0;
  std::optional<int64_t> resumed_from_;
  std::vector<float> losses_;
  BatchSource source_;
  Observer observer_;
  bool capture_ = false;
  EpochObserver epoch_observer_;
  ForwardBackward forward_backward_;
  EvalShard eval_shard_;
  std::function<void(int64_t, int64_t, float)> progress_;
};

}  // namespace lockstep::tools
