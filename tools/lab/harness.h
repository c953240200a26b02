// The lab's experiment harness: a small MLP trained on a Fashion-MNIST subset for a few
// dozen steps by the tools' one training loop (tools/train/trainer.h), with the knobs the
// scenarios turn. Everything not turned is fixed, so two runs of one configuration differ
// only by what a scenario changes on purpose.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/mode.h"
#include "core/tensor.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "broken.h"
#include "broken_loader.h"
#include "lab.h"
#include "nn/sequential.h"
#include "train/op_trace.h"
#include "train/trainer.h"

namespace lockstep_cli::lab {

// The data, loaded once per process: a training subset, a validation subset and a test set
// as one tensor (images flattened to 784 features) for evaluation.
struct LabData {
  std::shared_ptr<const lockstep::data::Dataset> train, validation;
  lockstep::Tensor test_x, test_y;      // float32 [n, 784], int64 [n]
  lockstep::Tensor val_x, val_y;
};
const LabData& lab_data(const LabOptions& o);
// Images [first, first + n) of ds as float32 [n, 784] and their labels.
void materialise(const lockstep::data::Dataset& ds, int64_t first, int64_t n, lockstep::Tensor* x,
                 lockstep::Tensor* y);

// Sizes of one lab run; --quick makes them smaller.
int64_t lab_steps(const LabOptions& o);  // training steps of a standard run
inline constexpr int64_t kBatch = 64;

// The lab's model: nn::make_mlp 784-128-64-10 with BatchNorm (optional), ReLU and
// Dropout(p) after each hidden Linear. With global_rng_dropout the training forward pass
// runs the lab's broken Dropout, which draws from the stateful global generator (broken.h),
// in place of each Dropout layer.
struct ModelSpec {
  bool batchnorm = true;
  double dropout = 0.2;
  bool global_rng_dropout = false;
};

// One training run's configuration.
struct TrainSpec {
  uint64_t seed = 42;  // model init, Dropout, shuffle and augmentation
  std::optional<uint64_t> init_seed;  // model initialisation and Dropout only, when set
  ModelSpec model;
  double lr = 2e-3, weight_decay = 0.0;  // AdamW
  lockstep::Mode mode = lockstep::Mode::deterministic;
  lockstep::Device device = lockstep::Device::cpu;  // the model is initialised on the CPU, then moved
  int threads = 2;
  int workers = 0;       // loader workers; batches of kBatch, shuffled by `seed`, drop_last
  bool augment = false;  // RandomCrop(2) then RandomHorizontalFlip(0.5)
  LoaderBugs loader_bugs;  // any set: the lab's BrokenLoader instead of the DataLoader
  std::shared_ptr<const lockstep::data::Dataset> train_set;  // null: lab_data(o).train
};
TrainSpec default_spec(const LabOptions& o);

// A training run in progress: the Trainer (AdamW, constant lr, no evaluation), and the
// loss of every step taken.
struct Session {
  explicit Session(const TrainSpec& spec, const LabOptions& o);
  // One step on the next batch (a new epoch starts when the loader runs dry); returns the loss.
  double step();
  void train_steps(int64_t n) {
    for (int64_t i = 0; i < n; ++i) step();
  }

  TrainSpec spec;
  std::unique_ptr<lockstep::tools::Trainer> trainer;
  std::shared_ptr<lockstep::nn::Sequential> model;  // the trainer's
  std::unique_ptr<BrokenLoader> broken_loader;      // the batch source when spec.loader_bugs.any()
  std::unique_ptr<GlobalRngDropout> global_dropout;  // with spec.model.global_rng_dropout
  std::vector<double> losses;
};

// ---- what the scenarios compare ----
// Every float32 value of the state dict, in order (parameters and BatchNorm buffers).
std::vector<float> flat_weights(const lockstep::nn::Module& m);
// The device of m's parameters (the CPU for a module without any).
lockstep::Device device_of(const lockstep::nn::Module& m);
// Logits of x (float32 [n, 784], on the CPU) in batches of `batch` run on m's device, the module left in whatever
// train/eval mode it is in (the caller chooses); flattened row-major.
std::vector<float> logits_of(lockstep::nn::Module& m, const lockstep::Tensor& x, int64_t batch);
// Fraction of rows of x whose argmax logit equals y, in eval mode (restores the mode).
double accuracy(lockstep::nn::Module& m, const lockstep::Tensor& x, const lockstep::Tensor& y);
// Mean cross-entropy of x against y, in eval mode (restores the mode).
double eval_loss(lockstep::nn::Module& m, const lockstep::Tensor& x, const lockstep::Tensor& y);

// What most scenarios compare: the final weights, then the test logits in eval mode.
std::vector<float> final_values(Session& s, const LabOptions& o);

// Compares two value lists: identical bits and max |a - b| (inf when the sizes differ or a
// NaN is on one side only).
PairResult compare(const std::vector<float>& a, const std::vector<float>& b);
PairResult compare(const std::vector<double>& a, const std::vector<double>& b);
// a followed by b (to compare weights and outputs together).
std::vector<float> concat(std::vector<float> a, const std::vector<float>& b);

// The usual four curves: problem runs 1 and 2, fix runs 1 and 2.
std::vector<Series> four_curves(const std::vector<double>& p1, const std::vector<double>& p2,
                                const std::vector<double>& f1, const std::vector<double>& f2);

// ---- the culprit op (culprit.cpp; tools/train/op_trace.h) ----
// The first `steps` steps of a run of `spec`, every autograd op traced in memory with values
// (under whatever process settings the caller holds, e.g. a SIMD level). before(), when
// given, runs first (e.g. a fresh autotuner).
std::vector<lockstep::tools::OpRecord> trace_run(const TrainSpec& spec, const LabOptions& o, int64_t steps,
                                                 const std::function<void()>& before = {});
// Steps the culprit traces cover: the first few, where these scenarios' differences start.
inline constexpr int64_t kCulpritSteps = 3;
// Names the op where traces a and b (the problem's two runs) first differ with matching
// inputs: appended to r.note, and r.extra["culprit"] / ["culprit_report"].
void add_culprit(ScenarioResult& r, const std::vector<lockstep::tools::OpRecord>& a,
                 const std::vector<lockstep::tools::OpRecord>& b);

// A fresh directory for a scenario's files (removed by the caller with remove_dir).
std::string make_scratch_dir(const std::string& tag);
void remove_dir(const std::string& dir);

// printf into a std::string.
std::string strf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace lockstep_cli::lab
