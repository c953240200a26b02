// The lab's experiment harness: a small MLP trained on a Fashion-MNIST subset for a few
// dozen steps, with the knobs the scenarios turn. Everything not turned is fixed, so two
// runs of one configuration differ only by what a scenario changes on purpose.
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
#include "lab.h"
#include "nn/sequential.h"
#include "optim/adam.h"

namespace lockstep_cli::lab {

// The data, loaded once per process: a training subset, a validation subset and a test set
// as one tensor (images flattened to 784 features) for evaluation.
struct LabData {
  std::shared_ptr<const lockstep::data::Dataset> train, validation;
  lockstep::Tensor test_x, test_y;      // float32 [n, 784], int64 [n]
  lockstep::Tensor val_x, val_y;
};
const LabData& lab_data(const LabOptions& o);

// Sizes of one lab run; --quick makes them smaller.
int64_t lab_steps(const LabOptions& o);  // training steps of a standard run
inline constexpr int64_t kBatch = 64;

// The lab's model: 784-128-64-10 with BatchNorm (optional), ReLU and Dropout(p) after each
// hidden Linear. With global_rng_dropout the Dropout layers are the lab's broken one that
// draws from the stateful global generator (broken.h). Children are named as in Sequential.
struct ModelSpec {
  bool batchnorm = true;
  double dropout = 0.2;
  bool global_rng_dropout = false;
};
std::shared_ptr<lockstep::nn::Sequential> make_lab_model(uint64_t seed, const ModelSpec& spec = {});

// One training run's configuration.
struct TrainSpec {
  uint64_t seed = 42;  // model init, Dropout, shuffle and augmentation
  std::optional<uint64_t> init_seed;  // model initialisation and Dropout only, when set
  ModelSpec model;
  double lr = 2e-3, weight_decay = 0.0;  // AdamW
  lockstep::Mode mode = lockstep::Mode::deterministic;
  lockstep::Device device = lockstep::Device::cpu;  // the model is initialised on the CPU, then moved
  int threads = 2;
  lockstep::data::LoaderOptions loader;  // batch_size and seed are set from this spec; shuffle on
};
TrainSpec default_spec(const LabOptions& o);

// A training run in progress: the objects, and the loss of every step taken.
struct Session {
  explicit Session(const TrainSpec& spec, const LabOptions& o);
  // One step on the next batch (a new epoch starts when the loader runs dry); returns the loss.
  double step();
  void train_steps(int64_t n) {
    for (int64_t i = 0; i < n; ++i) step();
  }

  TrainSpec spec;
  std::shared_ptr<lockstep::nn::Sequential> model;
  std::unique_ptr<lockstep::optim::AdamW> opt;
  std::unique_ptr<lockstep::data::DataLoader> loader;
  int64_t steps_done = 0, epoch = 0;
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

// A fresh directory for a scenario's files (removed by the caller with remove_dir).
std::string make_scratch_dir(const std::string& tag);
void remove_dir(const std::string& dir);

// printf into a std::string.
std::string strf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace lockstep_cli::lab
