// The lab's broken loaders (tools/lab/broken_loader.h) really show the bugs they stand for,
// and lockstep's DataLoader, given the same options and the same timing, does not.
#include <catch2/catch.hpp>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <set>

#include "data/loader.h"
#include "data/transforms.h"
#include "lab/broken_loader.h"
#include "test_util.h"
#include "watched_dataset.h"

using namespace lockstep;
using namespace lockstep::data;
using lockstep_cli::lab::BrokenLoader;
using lockstep_cli::lab::LoaderBugs;

namespace {

// 1024 examples of 4 floats (example i is all i), label i mod 10.
std::shared_ptr<const Dataset> counting_dataset() {
  std::vector<float> px(1024 * 4);
  std::vector<int64_t> labels(1024);
  for (int i = 0; i < 1024; ++i) {
    for (int j = 0; j < 4; ++j) px[static_cast<size_t>(i * 4 + j)] = static_cast<float>(i);
    labels[static_cast<size_t>(i)] = i % 10;
  }
  return std::make_shared<TensorDataset>(Tensor::from_vector(px, {1024, 4}), Tensor::from_vector(labels, {1024}), 10);
}

using Watched = lockstep_test::WatchedDataset;

template <typename L>
std::vector<Batch> run_epoch(L& loader) {
  std::vector<Batch> out;
  while (auto b = loader.next()) out.push_back(std::move(*b));
  return out;
}

std::vector<int64_t> indices_of(const std::vector<Batch>& batches) {
  std::vector<int64_t> out;
  for (const auto& b : batches) {
    auto v = b.indices.to_vector<int64_t>();
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

}  // namespace

TEST_CASE("lab loader bugs: unseeded shuffle differs from run to run", "[data][lab]") {
  LoaderOptions o;
  o.batch_size = 64;
  o.shuffle = true;
  o.seed = 42;
  LoaderBugs bugs;
  bugs.unseeded_shuffle = true;
  BrokenLoader a(counting_dataset(), o, bugs), b(counting_dataset(), o, bugs);
  std::vector<int64_t> ia = indices_of(run_epoch(a)), ib = indices_of(run_epoch(b));
  REQUIRE((ia != ib));  // equal with probability 1/1024!
  // and a restored loader replays a different order than the one it was saved in
  a.begin_epoch(0);
  for (int k = 0; k < 4; ++k) a.next();
  std::vector<int64_t> rest_a = indices_of(run_epoch(a));
  a.load_state(LoaderState{0, 4});
  REQUIRE((indices_of(run_epoch(a)) != rest_a));
  // The DataLoader with the same options: one order, restored exactly.
  DataLoader c(counting_dataset(), o), d(counting_dataset(), o);
  REQUIRE((indices_of(run_epoch(c)) == indices_of(run_epoch(d))));
}

TEST_CASE("lab loader bugs: completion order hands out batches out of order", "[data][lab]") {
  // Batch 0 is held until batch 3 has started. Worker 1 starts batch 3 only after it has
  // finished batch 1, so batch 1 provably completes before batch 0. Without shuffle, batch k
  // starts with the read of example 64 k.
  auto run = [](bool broken) {
    std::mutex mu;
    std::condition_variable cv;
    bool batch3_started = false;
    auto watched = std::make_shared<Watched>();
    watched->base = counting_dataset();
    watched->on_read = [&](int64_t i) {
      std::unique_lock<std::mutex> lk(mu);
      if (i == 3 * 64) {
        batch3_started = true;
        cv.notify_all();
      } else if (i == 0) {
        cv.wait_for(lk, std::chrono::seconds(20), [&] { return batch3_started; });
      }
    };
    LoaderOptions o;
    o.batch_size = 64;
    o.num_workers = 2;
    o.prefetch_depth = 4;
    std::vector<int64_t> order;
    if (broken) {
      LoaderBugs bugs;
      bugs.completion_order = true;
      BrokenLoader loader(watched, o, bugs);
      for (const auto& b : run_epoch(loader)) order.push_back(b.index);
    } else {
      DataLoader loader(watched, o);
      for (const auto& b : run_epoch(loader)) order.push_back(b.index);
    }
    return order;
  };
  std::vector<int64_t> good = run(false), bad = run(true);
  REQUIRE(good.size() == 16);
  for (int64_t k = 0; k < 16; ++k) REQUIRE(good[static_cast<size_t>(k)] == k);
  REQUIRE(bad.size() == 16);
  REQUIRE(bad[0] == 1);  // batch 1 came first
  REQUIRE(std::set<int64_t>(bad.begin(), bad.end()).size() == 16);
}

TEST_CASE("lab loader bugs: workers sharing one copied RNG state duplicate augmentations", "[data][lab]") {
  // All-zero images + noise: each augmented image *is* its noise draw.
  auto zeros = std::make_shared<TensorDataset>(Tensor::zeros({64, 1, 4, 4}), Tensor::zeros({64}, DType::i64));
  auto images = [&](int workers, bool broken, int64_t epoch) {
    LoaderOptions o;
    o.batch_size = 8;
    o.num_workers = workers;
    o.seed = 1;
    o.transform = std::make_shared<GaussianNoise>(1.0f);
    std::vector<std::vector<float>> out;
    auto collect = [&](auto& loader) {
      loader.begin_epoch(epoch);
      for (const auto& b : run_epoch(loader)) out.push_back(b.images.template to_vector<float>());
    };
    if (broken) {
      LoaderBugs bugs;
      bugs.shared_worker_rng = true;
      BrokenLoader loader(zeros, o, bugs);
      collect(loader);
    } else {
      DataLoader loader(zeros, o);
      collect(loader);
    }
    return out;
  };
  auto good = images(2, false, 0), bad = images(2, true, 0);
  // Batch 0 (worker 0) and batch 1 (worker 1) got identical "random" noise.
  REQUIRE((bad[0] == bad[1]));
  REQUIRE((good[0] != good[1]));
  // The result depends on the worker count, and every epoch repeats the same noise.
  REQUIRE((images(4, true, 0) != bad));
  REQUIRE((images(2, true, 1) == bad));
  REQUIRE((images(4, false, 0) == good));
  REQUIRE((images(2, false, 1) != good));
}
