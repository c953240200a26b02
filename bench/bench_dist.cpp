// One data-parallel training step (distributed/data_parallel.h) of the 784-256-128-10 MLP with
// SyncBatchNorm and Dropout, AdamW, deterministic mode, under mpirun: each process is a rank
// and the world size is mpirun's -np. Reports steps/s and samples/s (wall clock, rank 0) and
// the bytes each rank moves per step (sent + received through the collectives).
//   mpirun -np 1 bench/bench_dist        mpirun -np 2 bench/bench_dist
// BM_dist_step/batch:B is strong scaling (the global batch B whatever the world size),
// BM_dist_step_weak/rows_per_rank:R weak scaling (a global batch of R x world rows).
// BM_tree_combine/world:W: the local half of the gradient all-reduce alone, BatchTree::combine
// of W gathered gradient nodes (the default MLP's 235,914 floats), for the on-paper model of
// 8-64 hosts in docs/distributed.md (no communication: every rank times it by itself).
// Every rank must run the same number of steps (each is a collective), so the iteration
// count is fixed rather than chosen by Google Benchmark's timing; rank 0 alone reports.
#include <benchmark/benchmark.h>

#include <memory>
#include <vector>

#include "core/autograd.h"
#include "base/mode.h"
#include "core/random.h"
#include "distributed/data_parallel.h"
#include "distributed/mpi_communicator.h"
#include "nn/models.h"
#include "optim/adam.h"

using namespace lockstep;

namespace {

distributed::Communicator* g_comm = nullptr;

void run_steps(benchmark::State& state, int64_t batch) {  // batch: the global batch
  distributed::Communicator& comm = *g_comm;
  ModeGuard mg(Mode::deterministic);
  auto sync = std::make_shared<nn::BatchSync>();
  nn::MlpOptions mo;  // 784-256-128-10, Dropout 0.2, SyncBatchNorm
  mo.sync = sync;
  auto model = nn::make_mlp(1, mo);
  model->train();
  optim::AdamW opt(model->parameters(), optim::AdamWOptions().lr(1e-3).weight_decay(0.05));
  distributed::DataParallel dp(comm, *model, sync);
  dp.broadcast_state(0);
  Tensor x = Tensor::empty({batch, 784});
  fill_uniform(x, 0.0, 1.0, 2, 0);
  std::vector<int64_t> labels(static_cast<size_t>(batch));
  for (int64_t i = 0; i < batch; ++i) labels[static_cast<size_t>(i)] = (i * 7) % 10;
  const Tensor y = Tensor::from_vector(labels, {batch});
  const auto [first, last] = dp.begin_step(batch);
  const Tensor x_local = distributed::take_rows(x, first, last), y_local = distributed::take_rows(y, first, last);
  comm.barrier();
  const uint64_t bytes0 = comm.bytes_moved();
  for (auto _ : state) {
    dp.begin_step(batch);
    opt.zero_grad();
    const float loss = dp.backward_mean(cross_entropy(model->forward(x_local), y_local, Reduction::sum));
    dp.combine_gradients();
    opt.step();
    benchmark::DoNotOptimize(loss);
  }
  const double steps = static_cast<double>(state.iterations());
  state.counters["world"] = comm.size();
  state.counters["steps/s"] = benchmark::Counter(steps, benchmark::Counter::kIsRate);
  state.counters["samples/s"] = benchmark::Counter(steps * static_cast<double>(batch), benchmark::Counter::kIsRate);
  state.counters["bytes/step"] = static_cast<double>(comm.bytes_moved() - bytes0) / steps;
  state.counters["grad_floats"] = static_cast<double>(dp.gradient_floats());
}

void BM_dist_step(benchmark::State& state) { run_steps(state, state.range(0)); }
void BM_dist_step_weak(benchmark::State& state) { run_steps(state, state.range(0) * g_comm->size()); }

void BM_tree_combine(benchmark::State& state) {
  const int world = static_cast<int>(state.range(0));
  const int64_t width = 235914;
  const distributed::BatchTree tree(int64_t{world} * 32, world);  // one chunk per rank
  std::vector<float> gathered(static_cast<size_t>(width) * static_cast<size_t>(world)), out(static_cast<size_t>(width));
  for (size_t i = 0; i < gathered.size(); ++i) gathered[i] = static_cast<float>(i % 1000) * 1e-3f;
  for (auto _ : state) {
    tree.combine(gathered.data(), width, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(gathered.size()) * 4.0 * 1e-9 *
                                              static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

BENCHMARK(BM_tree_combine)->ArgName("world")->Arg(8)->Arg(16)->Arg(32)->Arg(64)->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_dist_step_weak)->ArgName("rows_per_rank")->Arg(128)->Iterations(60)->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_dist_step)->ArgName("batch")->Arg(128)->Arg(512)->Iterations(60)->Unit(benchmark::kMillisecond)->UseRealTime();

// Ranks other than 0 run the same benchmarks and print nothing.
class SilentReporter : public benchmark::BenchmarkReporter {
 public:
  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>&) override {}
};

}  // namespace

int main(int argc, char** argv) {
  distributed::MpiCommunicator comm;
  g_comm = &comm;
  benchmark::Initialize(&argc, argv);
  if (comm.rank() == 0) {
    benchmark::RunSpecifiedBenchmarks();
  } else {
    SilentReporter silent;
    benchmark::RunSpecifiedBenchmarks(&silent);
  }
  benchmark::Shutdown();
  return 0;
}
