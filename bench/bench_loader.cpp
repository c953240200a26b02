// DataLoader throughput over the Fashion-MNIST training set (60000 images, batch 128,
// shuffled): samples/s with 0, 1 and 2 workers, without and with augmentation
// (RandomCrop(2) + RandomHorizontalFlip). One iteration is one whole epoch, consumed by a
// loop that does nothing else, so the number is the loader's ceiling. Also the time to
// inflate and parse the gzipped training images, and to load the whole split
// (images + labels + normalisation). Compare with bench_mlp_step's samples/s at batch 128.
#include <benchmark/benchmark.h>

#include "data/idx.h"
#include "data/loader.h"
#include "data/mnist.h"

using namespace lockstep;
using namespace lockstep::data;

namespace {

std::shared_ptr<const Dataset> train_set() {
  static std::shared_ptr<const Dataset> ds = mnist_available() ? load_mnist() : nullptr;
  return ds;
}

}  // namespace

static void BM_decode_train_images(benchmark::State& state) {
  if (!mnist_available()) return state.SkipWithError("Fashion-MNIST not installed");
  const std::string path = mnist_file(kFashionMnistDir, MnistSplit::train, false);
  for (auto _ : state) {
    Tensor t = read_idx_images(path);
    benchmark::DoNotOptimize(t.data<uint8_t>());
  }
  state.counters["samples/s"] = benchmark::Counter(60000.0 * state.iterations(), benchmark::Counter::kIsRate);
}

static void BM_load_mnist_train(benchmark::State& state) {
  if (!mnist_available()) return state.SkipWithError("Fashion-MNIST not installed");
  for (auto _ : state) {
    auto ds = load_mnist(kFashionMnistDir, MnistSplit::train, kFashionMnistNormalize);
    benchmark::DoNotOptimize(ds->labels().data<int64_t>());  // the images stay bytes (normalised per sample)
  }
  state.counters["samples/s"] = benchmark::Counter(60000.0 * state.iterations(), benchmark::Counter::kIsRate);
}

static void BM_loader_epoch(benchmark::State& state) {
  auto ds = train_set();
  if (!ds) return state.SkipWithError("Fashion-MNIST not installed");
  LoaderOptions o;
  o.batch_size = 128;
  o.shuffle = true;
  o.seed = 1;
  o.num_workers = static_cast<int>(state.range(0));
  o.prefetch_depth = 4;
  if (state.range(1))
    o.transform = std::make_shared<Compose>(std::vector<std::shared_ptr<const Transform>>{
        std::make_shared<RandomCrop>(2), std::make_shared<RandomHorizontalFlip>()});
  DataLoader loader(ds, o);
  int64_t epoch = 0, samples = 0;
  for (auto _ : state) {
    loader.begin_epoch(epoch++);
    while (auto b = loader.next()) {
      samples += b->labels.numel();
      benchmark::DoNotOptimize(b->images.data<float>());
    }
  }
  state.counters["samples/s"] = benchmark::Counter(static_cast<double>(samples), benchmark::Counter::kIsRate);
}

BENCHMARK(BM_decode_train_images)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_load_mnist_train)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_loader_epoch)
    ->ArgNames({"workers", "augment"})
    ->ArgsProduct({{0, 1, 2}, {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

BENCHMARK_MAIN();
