// The promise of issue 7 end to end: two epochs of the 784-256-128-10 MLP (BatchNorm,
// ReLU, Dropout) with AdamW (weight decay) on a shuffled Fashion-MNIST subset give the same
// weights hash after every epoch on the CPU (1, 2 and 3 threads) and on the GPU in
// deterministic mode. In fast mode the test reports how far the GPU run drifts.
//
// Data: LOCKSTEP_FASHION_MNIST_DIR if set (scripts/gpu_check.sh carries a subset there),
// else Debian's /usr/share/datasets/fashion-mnist.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>

#include "base/mode.h"
#include "base/parallel.h"
#include "cuda_test_util.h"
#include "data/loader.h"
#include "data/mnist.h"
#include "nn/models.h"
#include "optim/adam.h"

using namespace lockstep;

namespace {

constexpr int64_t kSubset = 2048;
constexpr int kEpochs = 2;

std::string data_dir() {
  const char* env = std::getenv("LOCKSTEP_FASHION_MNIST_DIR");
  return env && *env ? env : data::kFashionMnistDir;
}

std::shared_ptr<const data::Dataset> subset() {
  auto full = data::load_mnist(data_dir(), data::MnistSplit::train, data::kFashionMnistNormalize);
  std::vector<int64_t> idx(kSubset);
  for (int64_t i = 0; i < kSubset; ++i) idx[i] = i;
  return std::make_shared<data::Subset>(full, idx);
}

struct RunResult {
  std::vector<std::string> hashes;  // state-dict SHA-256 after each epoch
  std::vector<Tensor> weights;      // final parameters, on the CPU
};

RunResult train(std::shared_ptr<const data::Dataset> ds, Device device, int threads) {
  ThreadsGuard tg(threads);
  auto model = nn::make_mlp(42);
  model->to(device);
  optim::AdamW opt(model->parameters(), optim::AdamWOptions(1e-3));
  data::LoaderOptions lo;
  lo.batch_size = 128, lo.shuffle = true, lo.num_workers = 2, lo.seed = 7;
  data::DataLoader loader(ds, lo);
  model->train();
  RunResult r;
  for (int epoch = 0; epoch < kEpochs; ++epoch) {
    loader.begin_epoch(epoch);
    while (auto b = loader.next()) {
      Tensor x = b->images.reshape({-1, 784}).to(device), y = b->labels.to(device);
      Tensor loss = cross_entropy(model->forward(x), y);
      opt.zero_grad();
      loss.backward();
      opt.step();
    }
    r.hashes.push_back(nn::state_dict_sha256(model->state_dict()));
  }
  for (auto& p : model->parameters()) r.weights.push_back(p.detach().to(Device::cpu));
  return r;
}

}  // namespace

TEST_CASE("cuda training: 2 epochs give the CPU's weights hash after every epoch", "[cuda][training][deterministic]") {
  if (!data::mnist_available(data_dir())) {
    WARN("Fashion-MNIST not found in " << data_dir() << ": set LOCKSTEP_FASHION_MNIST_DIR");
    REQUIRE(std::getenv("LOCKSTEP_REQUIRE_DATA") == nullptr);  // gpu_check.sh insists on the data
    return;
  }
  auto ds = subset();
  const RunResult gpu = train(ds, Device::cuda, 1);
  REQUIRE(gpu.hashes.size() == kEpochs);
  for (int threads : {1, 2, 3}) {
    const RunResult cpu = train(ds, Device::cpu, threads);
    for (int e = 0; e < kEpochs; ++e) {
      INFO("threads " << threads << ", epoch " << e);
      REQUIRE(cpu.hashes[e] == gpu.hashes[e]);
    }
  }
  WARN("epoch hashes (CPU = GPU): " << gpu.hashes[0] << " " << gpu.hashes[1]);
  // a second GPU run repeats them
  REQUIRE(train(ds, Device::cuda, 1).hashes == gpu.hashes);

  // Fast mode: cuBLAS, atomics, autotuning. Reported, not required.
  ModeGuard fast(Mode::fast);
  const RunResult f = train(ds, Device::cuda, 1);
  double max_diff = 0;
  for (size_t i = 0; i < f.weights.size(); ++i) {
    auto a = f.weights[i].to_vector<float>(), b = gpu.weights[i].to_vector<float>();
    for (size_t k = 0; k < a.size(); ++k) max_diff = std::max(max_diff, std::fabs(double(a[k]) - double(b[k])));
  }
  WARN("fast mode on the GPU: epoch hashes " << f.hashes[0] << " " << f.hashes[1] << " ("
       << (f.hashes == gpu.hashes ? "same as" : "differ from") << " deterministic); max |weight difference| "
       << max_diff);
}
