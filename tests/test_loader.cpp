// DataLoader: the same batches bit for bit for any worker count, prefetch depth and resume
// point; order = f(seed, epoch); bounded prefetch; clean shutdown. (The lab's broken loaders
// that show the bugs this avoids are tested in tests/tools/test_lab_loader_bugs.cpp.)
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <set>
#include <thread>

#include "base/parallel.h"
#include "data/loader.h"
#include "data/mnist.h"
#include "test_util.h"
#include "watched_dataset.h"

using namespace lockstep;
using namespace lockstep::data;

namespace {

// 1000 Fashion-MNIST test images when installed (loaded once), else random pixels.
std::shared_ptr<const Dataset> small_dataset() {
  static std::shared_ptr<const Dataset> ds = [] {
    std::shared_ptr<const Dataset> base;
    if (mnist_available()) {
      base = load_mnist(kFashionMnistDir, MnistSplit::test);
    } else {
      WARN("Fashion-MNIST not installed: loader tests use random images");
      std::vector<float> px = lockstep_test::random_floats(1000 * 784, 1, 0.f, 1.f);
      std::vector<int64_t> labels(1000);
      for (int i = 0; i < 1000; ++i) labels[i] = i % 10;
      base = std::make_shared<TensorDataset>(Tensor::from_vector(px, {1000, 1, 28, 28}),
                                             Tensor::from_vector(labels, {1000}), 10);
    }
    std::vector<int64_t> idx(1000);
    for (int i = 0; i < 1000; ++i) idx[i] = i * (base->size() / 1000);
    return std::make_shared<Subset>(base, idx);
  }();
  return ds;
}

std::shared_ptr<const Transform> augmentation() {
  return std::make_shared<Compose>(std::vector<std::shared_ptr<const Transform>>{
      std::make_shared<RandomCrop>(2), std::make_shared<RandomHorizontalFlip>(), std::make_shared<GaussianNoise>(0.1f)});
}

LoaderOptions shuffled(int workers, int depth = 2) {
  LoaderOptions o;
  o.batch_size = 64;
  o.shuffle = true;
  o.seed = 42;
  o.num_workers = workers;
  o.prefetch_depth = depth;
  o.transform = augmentation();
  return o;
}

std::vector<Batch> run_epoch(DataLoader& loader) {
  std::vector<Batch> out;
  while (auto b = loader.next()) out.push_back(std::move(*b));
  return out;
}

std::vector<Batch> epoch_of(const LoaderOptions& o, int64_t epoch) {
  DataLoader loader(small_dataset(), o);
  loader.begin_epoch(epoch);
  return run_epoch(loader);
}

void require_same_batches(const std::vector<Batch>& a, const std::vector<Batch>& b) {
  REQUIRE(a.size() == b.size());
  for (size_t k = 0; k < a.size(); ++k) {
    INFO("batch " << k);
    REQUIRE(a[k].index == b[k].index);
    REQUIRE(a[k].images.shape() == b[k].images.shape());
    REQUIRE_BITWISE_EQUAL(a[k].images.to_vector<float>(), b[k].images.to_vector<float>());
    REQUIRE((a[k].labels.to_vector<int64_t>() == b[k].labels.to_vector<int64_t>()));
    REQUIRE((a[k].indices.to_vector<int64_t>() == b[k].indices.to_vector<int64_t>()));
  }
}

std::vector<int64_t> indices_of(const std::vector<Batch>& batches) {
  std::vector<int64_t> all;
  for (const auto& b : batches)
    for (int64_t i : b.indices.to_vector<int64_t>()) all.push_back(i);
  return all;
}

}  // namespace

TEST_CASE("loader: same bits for any worker count and prefetch depth", "[data][deterministic]") {
  for (int64_t epoch : {0, 3}) {
    const std::vector<Batch> ref = epoch_of(shuffled(0), epoch);
    REQUIRE(ref.size() == 16);
    REQUIRE(ref[0].images.shape() == Shape{64, 1, 28, 28});
    REQUIRE(ref.back().images.shape() == Shape{1000 - 15 * 64, 1, 28, 28});
    for (int workers : {1, 2, 8})
      for (int depth : {1, 2, 5}) {
        INFO("epoch " << epoch << ", workers " << workers << ", prefetch_depth " << depth);
        require_same_batches(ref, epoch_of(shuffled(workers, depth), epoch));
      }
    // With no workers the consumer splits each batch's samples over the thread pool.
    for (int threads : {1, 3}) {
      INFO("epoch " << epoch << ", workers 0, threads " << threads);
      ThreadsGuard tg(threads);
      require_same_batches(ref, epoch_of(shuffled(0), epoch));
    }
  }
}

TEST_CASE("loader: a shard makes exactly its rows of every whole batch", "[data][deterministic]") {
  // Three uneven shards (the last batch, 40 rows, leaves the third empty), with workers.
  const std::vector<Batch> whole = epoch_of(shuffled(0), 2);
  for (int part = 0; part < 3; ++part) {
    DataLoader loader(small_dataset(), shuffled(2));
    loader.set_shard([part](int64_t rows) {
      const int64_t cut[4] = {0, std::min<int64_t>(rows, 10), std::min<int64_t>(rows, 45), rows};
      return std::make_pair(cut[part], cut[part + 1]);
    });
    loader.begin_epoch(2);
    const std::vector<Batch> mine = run_epoch(loader);
    REQUIRE(mine.size() == whole.size());
    for (size_t k = 0; k < mine.size(); ++k) {
      INFO("shard " << part << ", batch " << k);
      const int64_t rows = whole[k].images.size(0), b = mine[k].first_row, n = mine[k].images.size(0);
      REQUIRE(mine[k].global_rows == rows);
      REQUIRE(mine[k].total_rows() == rows);
      REQUIRE(b == (part == 0 ? 0 : part == 1 ? std::min<int64_t>(rows, 10) : std::min<int64_t>(rows, 45)));
      const std::vector<float> px = whole[k].images.to_vector<float>();
      const std::vector<int64_t> idx = whole[k].indices.to_vector<int64_t>();
      REQUIRE_BITWISE_EQUAL(mine[k].images.to_vector<float>(),
                            std::vector<float>(px.begin() + b * 784, px.begin() + (b + n) * 784));
      REQUIRE((mine[k].indices.to_vector<int64_t>() == std::vector<int64_t>(idx.begin() + b, idx.begin() + b + n)));
    }
  }
  DataLoader bad(small_dataset(), shuffled(0));
  bad.set_shard([](int64_t rows) { return std::make_pair(int64_t{0}, rows + 1); });
  REQUIRE_THROWS_WITH(bad.next(), Catch::Contains("outside a batch of 64 rows"));
}

TEST_CASE("loader: a loader restored mid-epoch continues with the same batches", "[data][deterministic]") {
  const std::vector<Batch> full = epoch_of(shuffled(2), 5);
  DataLoader first(small_dataset(), shuffled(2));
  first.begin_epoch(5);
  for (int k = 0; k < 6; ++k) REQUIRE(first.next());
  const LoaderState saved = first.state();
  REQUIRE(saved.epoch == 5);
  REQUIRE(saved.next_batch == 6);
  for (int workers : {0, 1, 8}) {
    DataLoader resumed(small_dataset(), shuffled(workers, 3));
    resumed.load_state(saved);
    std::vector<Batch> rest = run_epoch(resumed);
    require_same_batches(std::vector<Batch>(full.begin() + 6, full.end()), rest);
    REQUIRE(resumed.state().next_batch == resumed.num_batches());
    resumed.begin_epoch(6);  // and the next epoch is the next epoch
    require_same_batches(epoch_of(shuffled(0), 6), run_epoch(resumed));
  }
  // load_state() on a running loader rewinds it too.
  first.load_state(LoaderState{5, 14});
  std::vector<Batch> tail = run_epoch(first);
  require_same_batches(std::vector<Batch>(full.begin() + 14, full.end()), tail);
  REQUIRE_THROWS_AS(first.load_state(LoaderState{5, 17}), std::invalid_argument);
  REQUIRE_THROWS_AS(first.load_state(LoaderState{-1, 0}), std::invalid_argument);
}

TEST_CASE("loader: orders are f(seed, epoch), each sample once per epoch, drop_last", "[data][deterministic]") {
  LoaderOptions o = shuffled(2);
  o.transform = nullptr;
  DataLoader loader(small_dataset(), o);
  REQUIRE(loader.num_batches() == 16);
  std::vector<int64_t> e0 = indices_of(run_epoch(loader));
  loader.begin_epoch(1);
  std::vector<int64_t> e1 = indices_of(run_epoch(loader));
  REQUIRE(e0.size() == 1000);
  REQUIRE((e0 == loader.epoch_order(0)));
  REQUIRE((e1 == loader.epoch_order(1)));
  REQUIRE((e0 != e1));
  REQUIRE(std::set<int64_t>(e0.begin(), e0.end()).size() == 1000);
  REQUIRE(std::set<int64_t>(e1.begin(), e1.end()).size() == 1000);
  o.seed = 43;
  REQUIRE((DataLoader(small_dataset(), o).epoch_order(0) != e0));

  o.seed = 42;
  o.drop_last = true;
  DataLoader dropping(small_dataset(), o);
  REQUIRE(dropping.num_batches() == 15);
  std::vector<Batch> batches = run_epoch(dropping);
  REQUIRE(batches.size() == 15);
  for (const auto& b : batches) REQUIRE(b.labels.numel() == 64);
  std::vector<int64_t> kept = indices_of(batches);
  REQUIRE((kept == std::vector<int64_t>(e0.begin(), e0.begin() + 960)));  // the order's first 960

  LoaderOptions plain;
  plain.batch_size = 300;
  plain.num_workers = 1;
  DataLoader in_order(small_dataset(), plain);
  std::vector<int64_t> seq = indices_of(run_epoch(in_order));
  for (int64_t i = 0; i < 1000; ++i) REQUIRE(seq[i] == i);
  REQUIRE_FALSE(in_order.next());  // stays done until the next begin_epoch
}

TEST_CASE("loader: a sample's augmentation depends only on (seed, epoch, index)", "[data][deterministic]") {
  auto ds = small_dataset();
  LoaderOptions o = shuffled(8, 3);
  DataLoader loader(ds, o);
  loader.begin_epoch(2);
  std::vector<Batch> batches = run_epoch(loader);
  for (int k : {0, 7, 15}) {
    const Batch& b = batches[k];
    auto idx = b.indices.to_vector<int64_t>();
    for (int j : {0, 5, static_cast<int>(idx.size()) - 1}) {
      Tensor expect = augment(*o.transform, ds->get(idx[j]).image, SampleKey{42, 2, static_cast<uint64_t>(idx[j])});
      std::vector<float> got(b.images.data<float>() + j * 784, b.images.data<float>() + (j + 1) * 784);
      REQUIRE_BITWISE_EQUAL(got, expect.to_vector<float>());
    }
  }
}

using Watched = lockstep_test::WatchedDataset;

TEST_CASE("loader: at most prefetch_depth batches ahead of a slow consumer", "[data]") {
  for (int depth : {1, 3}) {
    std::atomic<int64_t> requested{0}, worst{-100};
    LoaderOptions o = shuffled(4, depth);
    o.transform = nullptr;
    // `requested` counts the batches asked for so far, including the one being handed
    // over; the loader may then have started batches k < requested + depth at most. Batch k
    // starts with the read of its first example, order[k B].
    auto watched = std::make_shared<Watched>();
    watched->base = small_dataset();
    const std::vector<int64_t> order = DataLoader(small_dataset(), o).epoch_order(0);
    std::vector<int64_t> starts_batch(order.size(), -1);
    for (size_t p = 0; p < order.size(); p += static_cast<size_t>(o.batch_size))
      starts_batch[static_cast<size_t>(order[p])] = static_cast<int64_t>(p) / o.batch_size;
    watched->on_read = [&](int64_t i) {
      const int64_t k = starts_batch[static_cast<size_t>(i)];
      if (k < 0) return;
      int64_t ahead = k - requested.load() - depth;
      int64_t w = worst.load();
      while (ahead > w && !worst.compare_exchange_weak(w, ahead)) {}
    };
    DataLoader loader(watched, o);
    for (;;) {
      requested.fetch_add(1);
      auto b = loader.next();
      if (!b) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));  // a slow training step
    }
    INFO("depth " << depth);
    REQUIRE(worst.load() < 0);
  }
}

TEST_CASE("loader: errors while making a batch reach the consumer", "[data]") {
  struct Faulty : Dataset {
    int64_t size() const override { return 100; }
    Shape sample_shape() const override { return {2}; }
    Example get(int64_t i) const override {
      if (i == 37) throw std::runtime_error("[Faulty] sample 37 is unreadable");
      return Example{Tensor::full({2}, static_cast<double>(i)), i % 3};
    }
  };
  for (int workers : {0, 2}) {
    LoaderOptions o;
    o.batch_size = 10;
    o.num_workers = workers;
    DataLoader loader(std::make_shared<Faulty>(), o);
    for (int k = 0; k < 3; ++k) REQUIRE(loader.next()->images.data<float>()[0] == 10.0f * k);
    REQUIRE_THROWS_WITH(loader.next(), Catch::Contains("sample 37"));
    REQUIRE(loader.state().next_batch == 3);  // stays at the failing batch
    REQUIRE_THROWS_WITH(loader.next(), Catch::Contains("sample 37"));
  }
  LoaderOptions bad;
  bad.batch_size = 0;
  REQUIRE_THROWS_AS(DataLoader(small_dataset(), bad), std::invalid_argument);
  bad.batch_size = 1;
  bad.prefetch_depth = 0;
  REQUIRE_THROWS_AS(DataLoader(small_dataset(), bad), std::invalid_argument);
}

TEST_CASE("loader: destroying a loader mid-epoch joins its workers", "[data]") {
  for (int depth : {1, 4}) {
    // Workers blocked on a full window, workers mid-batch, and workers never waited on.
    for (int taken : {0, 2}) {
      LoaderOptions o = shuffled(8, depth);
      auto loader = std::make_unique<DataLoader>(small_dataset(), o);
      for (int k = 0; k < taken; ++k) REQUIRE(loader->next());
      loader.reset();
    }
  }
  // A loader that never started, and one whose epoch ended, destroy cleanly too.
  DataLoader idle(small_dataset(), shuffled(2));
  DataLoader done(small_dataset(), shuffled(2));
  run_epoch(done);
  SUCCEED();
}

TEST_CASE("loader: each batch hints the dataset two samples ahead, and the hint changes no bit", "[data][deterministic]") {
  // Records every Dataset::prefetch call and forwards it.
  struct Hinted : Dataset {
    std::shared_ptr<const Dataset> base;
    mutable std::vector<int64_t> hints;
    int64_t size() const override { return base->size(); }
    Shape sample_shape() const override { return base->sample_shape(); }
    Example get(int64_t i) const override { return base->get(i); }
    int64_t read_into(int64_t i, float* dst) const override { return base->read_into(i, dst); }
    void prefetch(int64_t i) const override {
      hints.push_back(i);
      base->prefetch(i);
    }
  };
  auto hinted = std::make_shared<Hinted>();
  hinted->base = small_dataset();
  ThreadsGuard tg(1);  // one task a batch: the hints are the batch's samples 2.. in order
  DataLoader loader(hinted, shuffled(0));
  loader.begin_epoch(3);
  const std::vector<Batch> got = run_epoch(loader);
  require_same_batches(epoch_of(shuffled(0), 3), got);
  std::vector<int64_t> expected;
  for (const Batch& b : got) {
    const std::vector<int64_t> idx = b.indices.to_vector<int64_t>();
    expected.insert(expected.end(), idx.begin() + std::min<size_t>(2, idx.size()), idx.end());
  }
  REQUIRE(hinted->hints == expected);
  // Out-of-range hints are ignored (a Subset and the TensorDataset under it).
  const auto& subset = static_cast<const Subset&>(*small_dataset());
  for (int64_t i : {int64_t{-1}, subset.size(), int64_t{1} << 40}) subset.prefetch(i);
}
