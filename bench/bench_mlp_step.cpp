// Forward + backward of the 784-256-128-10 MLP (BatchNorm, ReLU, Dropout) in train mode,
// deterministic vs fast mode, 1 and 2 threads, batch 128 and 512. Reports samples/s.
// BM_mlp_train_step adds the AdamW update (lr 1e-3, weight decay 0.05): the whole step of
// `lockstep train` without the data loader.
#include <benchmark/benchmark.h>

#include "core/autograd.h"
#include "base/mode.h"
#include "base/parallel.h"
#include "core/random.h"
#include "nn/models.h"
#include "optim/adam.h"

using namespace lockstep;

// One benchmark run: the model in train mode on a fixed batch; with_optimizer adds AdamW.
static void run_mlp(benchmark::State& state, bool with_optimizer) {
  const int64_t batch = state.range(0);
  const int threads = static_cast<int>(state.range(1));
  const Mode m = state.range(2) ? Mode::fast : Mode::deterministic;
  ThreadsGuard tg(threads);
  ModeGuard mg(m);
  auto model = nn::make_mlp(1);
  model->train();
  optim::AdamW opt(model->parameters(), optim::AdamWOptions(1e-3).weight_decay(0.05));
  Tensor x = Tensor::empty({batch, 784});
  fill_uniform(x, 0.0, 1.0, 2, 0);
  std::vector<int64_t> labels(static_cast<size_t>(batch));
  for (int64_t i = 0; i < batch; ++i) labels[i] = (i * 7) % 10;
  Tensor y = Tensor::from_vector(labels, {batch});
  for (auto _ : state) {
    opt.zero_grad();
    Tensor loss = cross_entropy(model->forward(x), y);
    loss.backward();
    if (with_optimizer) opt.step();
    benchmark::DoNotOptimize(loss.item());
  }
  state.counters["samples/s"] = benchmark::Counter(static_cast<double>(batch) * state.iterations(),
                                                   benchmark::Counter::kIsRate);
  state.SetLabel(str_cat(mode_name(m), " threads=", threads));
}

static void BM_mlp_step(benchmark::State& state) { run_mlp(state, false); }
static void BM_mlp_train_step(benchmark::State& state) { run_mlp(state, true); }

BENCHMARK(BM_mlp_step)
    ->ArgNames({"batch", "threads", "fast"})
    ->ArgsProduct({{128, 512}, {1, 2}, {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_mlp_train_step)
    ->ArgNames({"batch", "threads", "fast"})
    ->ArgsProduct({{128, 512}, {1, 2}, {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

BENCHMARK_MAIN();
