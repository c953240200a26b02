// Resume equivalence, the checkpoint's promise: training N steps straight and training k
// steps, saving, loading into fresh objects (a model built from another seed, a new AdamW,
// a new cosine schedule, a new shuffled and augmented loader with workers) and training
// N - k steps give the same final weights, optimizer state and loss trace, bit for bit --
// in this process and in a fresh one. Saving less (weights only; weights and optimizer
// without the RNG and loader state) diverges, which shows what each part is for.
//
// The fresh process is this test binary itself, re-executed through /proc/self/exe with the
// hidden test case "[resume_child]" selected; the paths travel in environment variables.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "core/autograd.h"
#include "core/random.h"
#include "data/loader.h"
#include "data/mnist.h"
#include "data/transforms.h"
#include "nn/models.h"
#include "optim/adam.h"
#include "optim/scheduler.h"
#include "serialize/checkpoint.h"
#include "test_util.h"

using namespace lockstep;
using namespace lockstep::serialize;

namespace {

constexpr int64_t kSteps = 24;      // N: 1.5 epochs of 16 batches
constexpr int64_t kBatch = 64;
constexpr int64_t kSamples = 1024;

// ~1024 Fashion-MNIST training images when the dataset is installed, else synthetic ones.
std::shared_ptr<const data::Dataset> dataset() {
  static std::shared_ptr<const data::Dataset> ds = [] {
    std::shared_ptr<const data::Dataset> d;
    if (data::mnist_available()) {
      auto full = data::load_mnist(data::kFashionMnistDir, data::MnistSplit::train, data::kFashionMnistNormalize);
      std::vector<int64_t> idx(kSamples);
      for (int64_t i = 0; i < kSamples; ++i) idx[i] = i;
      d = std::make_shared<data::Subset>(full, idx);
    } else {
      Tensor images = Tensor::empty({kSamples, 1, 28, 28});
      fill_uniform(images, 0.0, 1.0, 11, 0);
      std::vector<int64_t> labels(kSamples);
      for (int64_t i = 0; i < kSamples; ++i) labels[i] = (i * 7 + 3) % 10;
      d = std::make_shared<data::TensorDataset>(images, Tensor::from_vector(labels, {kSamples}), 10);
    }
    return d;
  }();
  return ds;
}

// One training run's objects, built fresh from `model_seed`.
struct Run {
  std::shared_ptr<nn::Sequential> model;
  std::unique_ptr<optim::AdamW> opt;
  std::unique_ptr<optim::CosineAnnealingLR> sched;
  std::unique_ptr<data::DataLoader> loader;
  Generator gen{77, 0};  // a stand-alone generator, advanced every step, restored by the checkpoint
  int64_t step = 0, epoch = 0;
  std::vector<float> losses;

  explicit Run(uint64_t model_seed) {
    model = nn::make_mlp(model_seed, 0.2);
    opt = std::make_unique<optim::AdamW>(model->parameters(), optim::AdamWOptions(2e-3).weight_decay(0.05));
    sched = std::make_unique<optim::CosineAnnealingLR>(*opt, kSteps, 1e-5);
    data::LoaderOptions lo;
    lo.batch_size = kBatch, lo.shuffle = true, lo.num_workers = 2, lo.seed = 2026;
    lo.transform = std::make_shared<data::Compose>(std::vector<std::shared_ptr<const data::Transform>>{
        std::make_shared<data::RandomCrop>(2), std::make_shared<data::RandomHorizontalFlip>(0.5f)});
    loader = std::make_unique<data::DataLoader>(dataset(), lo);
  }
  TrainingState state() {
    TrainingState s;
    s.model = model.get(), s.optimizer = opt.get(), s.scheduler = sched.get(), s.loader = loader.get();
    s.generators = {{"aux", &gen}};
    s.step = step, s.epoch = epoch;
    return s;
  }
  void load(const std::string& path) {
    TrainingState s = state();
    load_checkpoint(path, s);
    step = s.step, epoch = s.epoch;
  }
  void train_until(int64_t n) {
    model->train();
    for (; step < n; ++step) {
      std::optional<data::Batch> b = loader->next();
      if (!b) loader->begin_epoch(++epoch), b = loader->next();
      Tensor x = b->images.reshape({b->images.size(0), 784});
      opt->zero_grad();
      Tensor loss = cross_entropy(model->forward(x), b->labels);
      loss.backward();
      opt->step();
      sched->step();
      gen.draw(3);
      losses.push_back(static_cast<float>(loss.item()));
    }
  }
};

std::string temp_path(const char* name) {
  return std::string("/tmp/lockstep_resume_") + std::to_string(getpid()) + "_" + name + ".safetensors";
}

// Final weights and optimizer state, for comparisons and for the child's report.
NamedTensors final_state(Run& r) {
  NamedTensors out;
  const nn::StateDict model_sd = r.model->state_dict(), opt_sd = r.opt->state_dict();
  for (auto& kv : model_sd.items()) out.push_back({"model." + kv.first, kv.second.clone()});
  for (auto& kv : opt_sd.items()) out.push_back({"optimizer." + kv.first, kv.second});
  out.push_back({"losses", Tensor::from_vector(r.losses, {static_cast<int64_t>(r.losses.size())})});
  out.push_back({"aux", Tensor::from_vector(std::vector<int64_t>{static_cast<int64_t>(r.gen.offset())}, {1})});
  return out;
}

// True when `got` equals `want` in every tensor (the losses compared on their common tail).
bool same_final_state(const NamedTensors& got, const NamedTensors& want, std::string* first_diff) {
  if (got.size() != want.size()) return *first_diff = "different tensor counts", false;
  for (size_t i = 0; i < got.size(); ++i) {
    Tensor a = got[i].second, b = want[i].second;
    if (got[i].first == "losses" && a.numel() != b.numel()) {  // resumed trace: the last N - k
      auto va = a.to_vector<float>(), vb = b.to_vector<float>();
      if (va.size() > vb.size()) std::swap(va, vb);
      vb.erase(vb.begin(), vb.end() - static_cast<long>(va.size()));
      a = Tensor::from_vector(va, {static_cast<int64_t>(va.size())});
      b = Tensor::from_vector(vb, {static_cast<int64_t>(vb.size())});
    }
    if (got[i].first != want[i].first || !equal_bits(a, b)) return *first_diff = got[i].first, false;
  }
  return true;
}

}  // namespace

TEST_CASE("resume: save mid-epoch, load into fresh objects, continue: bitwise identical", "[checkpoint][resume][deterministic]") {
  Run straight(42);
  straight.train_until(kSteps);
  const NamedTensors want = final_state(straight);

  for (int64_t k : {10, 21}) {  // mid-epoch 0, and mid-epoch 1 after a rollover
    INFO("checkpoint at step " << k);
    const std::string path = temp_path("mid");
    {
      Run first(42);
      first.train_until(k);
      save_checkpoint(path, first.state());
    }
    Run resumed(1234);  // another init seed: every weight and the Dropout seeds differ
    resumed.load(path);
    REQUIRE(resumed.step == k);
    resumed.train_until(kSteps);
    REQUIRE(resumed.losses.size() == static_cast<size_t>(kSteps - k));
    std::string diff;
    const bool same = same_final_state(final_state(resumed), want, &diff);
    INFO("first difference: " << diff);
    REQUIRE(same);
    std::remove(path.c_str());
  }
}

TEST_CASE("resume: saving less than the full state diverges", "[checkpoint][resume][deterministic]") {
  const int64_t k = 10;
  Run straight(42);
  straight.train_until(kSteps);
  const NamedTensors want = final_state(straight);
  const std::string path = temp_path("partial");
  {
    Run first(42);
    first.train_until(k);
    save_checkpoint(path, first.state());
  }
  std::string diff;
  SECTION("weights only: Adam's moments and the schedule restart") {
    Run r(1234);
    nn::StateDict sd;
    const SafetensorsContents c = load_safetensors(path);
    for (auto& kv : c.tensors.items())
      if (kv.first.rfind("model.", 0) == 0) sd.insert(kv.first.substr(6), kv.second);
    r.model->load_state_dict(sd);
    r.step = k;
    r.train_until(kSteps);
    REQUIRE(!same_final_state(final_state(r), want, &diff));
  }
  SECTION("weights and optimizer, no RNG or loader state: other batches, other Dropout masks") {
    Run r(1234);
    nn::StateDict model_sd, opt_sd, sched_sd;
    const SafetensorsContents c = load_safetensors(path);
    for (auto& kv : c.tensors.items()) {
      const std::string& key = kv.first;
      if (key.rfind("model.", 0) == 0) model_sd.insert(key.substr(6), kv.second);
      if (key.rfind("optimizer.", 0) == 0) opt_sd.insert(key.substr(10), kv.second);
      if (key.rfind("scheduler.", 0) == 0) sched_sd.insert(key.substr(10), kv.second);
    }
    r.model->load_state_dict(model_sd);
    r.opt->load_state_dict(opt_sd);
    r.sched->load_state_dict(sched_sd);
    r.step = k;
    r.train_until(kSteps);
    REQUIRE(!same_final_state(final_state(r), want, &diff));
    // The schedule and the optimizer agree with the straight run; the weights do not.
    REQUIRE(r.opt->lr(0) == straight.opt->lr(0));
  }
  std::remove(path.c_str());
}

TEST_CASE("resume: in a fresh process, bitwise identical", "[checkpoint][resume][deterministic]") {
  const int64_t k = 13;
  Run straight(42);
  straight.train_until(kSteps);
  const std::string ckpt = temp_path("proc"), out = temp_path("proc_out");
  {
    Run first(42);
    first.train_until(k);
    save_checkpoint(ckpt, first.state());
  }
  char exe[4096];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  REQUIRE(n > 0);
  exe[n] = '\0';
  setenv("LOCKSTEP_RESUME_CKPT", ckpt.c_str(), 1);
  setenv("LOCKSTEP_RESUME_OUT", out.c_str(), 1);
  const int rc = std::system((std::string("'") + exe + "' '[resume_child]' > /dev/null 2>&1").c_str());
  unsetenv("LOCKSTEP_RESUME_CKPT");
  unsetenv("LOCKSTEP_RESUME_OUT");
  REQUIRE(rc == 0);
  SafetensorsContents got = load_safetensors(out);
  NamedTensors got_t(got.tensors.items().begin(), got.tensors.items().end());
  REQUIRE(got_t.back().first == "aux");
  std::string diff;
  const bool same = same_final_state(got_t, final_state(straight), &diff);
  INFO("first difference: " << diff);
  REQUIRE(same);
  REQUIRE(got.tensors.at("losses").numel() == kSteps - k);
  std::remove(ckpt.c_str());
  std::remove(out.c_str());
}

// Run only by the test above, in a child process (hidden: "[.]").
TEST_CASE("resume child: load the checkpoint named by the environment, finish, report", "[.][resume_child]") {
  const char* ckpt = std::getenv("LOCKSTEP_RESUME_CKPT");
  const char* out = std::getenv("LOCKSTEP_RESUME_OUT");
  if (ckpt == nullptr || out == nullptr) return;  // run by hand without the parent: nothing to do
  Run r(999);
  r.load(ckpt);
  r.train_until(kSteps);
  save_safetensors(out, final_state(r));
}
