// bench_optim: does an optimizer step run at memory speed?
//
// One float32 parameter of 10M elements (40 MB per array), its gradient set once; each
// iteration is one opt.step() through the public API (optim::SGD / optim::Adam), with T
// threads. Bytes counted per parameter element, every array touched once per step:
//   BM_sgd_momentum   SGD(momentum 0.9): reads p, g, buf; writes p, buf   = 5 x 4 = 20 B
//   BM_adam           Adam:              reads p, g, m, v; writes p, m, v = 7 x 4 = 28 B
//   BM_adam_portable  Adam with the AVX2 path off (set_simd_enabled(false)), 1 thread: what
//                     the portable build, which calls libm fma, costs (same 28 B).
//   BM_triad          a[i] = b[i] + s * c[i] over three 10M-float arrays: 3 x 4 = 12 B, the
//                     STREAM count; the write-allocate read of a is real traffic but not
//                     counted. The optimizer arrays are updated in place (read, then written
//                     back), so they have no write-allocate traffic: the ratios below are,
//                     if anything, unfavourable to the optimizer.
// GBps = counted bytes / wall time / 1e9. 5 repetitions each, interleaved at random with the
// others; the summary prints the best repetition of each and its ratio to the best triad
// with the same thread count.
//
//   ./build/bench/bench_optim
#include <benchmark/benchmark.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "base/parallel.h"
#include "base/simd.h"
#include "optim/adam.h"
#include "optim/sgd.h"

namespace {

using namespace lockstep;

constexpr int64_t kN = 10'000'000;

// A parameter of kN floats in [-1, 1) with a gradient of the same kind, fixed patterns.
Tensor make_param(uint32_t seed) {
  std::vector<float> v(kN), g(kN);
  uint32_t s = seed;
  auto next = [&s] {
    s = s * 1664525u + 1013904223u;
    return static_cast<float>(s >> 8) * (2.0f / 16777216.0f) - 1.0f;
  };
  for (int64_t i = 0; i < kN; ++i) v[i] = next(), g[i] = next();
  Tensor p = Tensor::from_vector(v, {kN});
  p.set_requires_grad(true);
  p.set_grad(Tensor::from_vector(g, {kN}));
  return p;
}

void report(benchmark::State& state, double bytes_per_element) {
  const double bytes = bytes_per_element * kN * static_cast<double>(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
  state.counters["GBps"] = benchmark::Counter(bytes / 1e9, benchmark::Counter::kIsRate);
}

void BM_triad(benchmark::State& state) {
  ThreadsGuard tg(static_cast<int>(state.range(0)));
  static std::vector<float> a(kN, 0.f), b(kN, 1.f), c(kN, 2.f);
  float* pa = a.data();
  const float* pb = b.data();
  const float* pc = c.data();
  for (auto _ : state) {
    parallel_for(kN, 1 << 16, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) pa[i] = pb[i] + 3.0f * pc[i];
    });
    benchmark::ClobberMemory();
  }
  report(state, 12);
}

void BM_sgd_momentum(benchmark::State& state) {
  ThreadsGuard tg(static_cast<int>(state.range(0)));
  static Tensor p = make_param(1);
  optim::SGD opt({p}, optim::SGDOptions(1e-4).momentum(0.9));
  opt.step();  // the first step only copies the gradient into the buffer
  for (auto _ : state) {
    opt.step();
    benchmark::ClobberMemory();
  }
  report(state, 20);
}

void adam(benchmark::State& state, bool simd) {
  ThreadsGuard tg(static_cast<int>(state.range(0)));
  SimdGuard sg(simd);
  static Tensor p = make_param(2);
  optim::Adam opt({p}, optim::AdamOptions(1e-4));
  opt.step();  // allocates the state
  for (auto _ : state) {
    opt.step();
    benchmark::ClobberMemory();
  }
  report(state, 28);
}

void BM_adam(benchmark::State& state) { adam(state, true); }
void BM_adam_portable(benchmark::State& state) { adam(state, false); }

BENCHMARK(BM_triad)->Arg(1)->Arg(2)->UseRealTime()->Repetitions(5)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_sgd_momentum)->Arg(1)->Arg(2)->UseRealTime()->Repetitions(5)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_adam)->Arg(1)->Arg(2)->UseRealTime()->Repetitions(5)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_adam_portable)->Arg(1)->UseRealTime()->Repetitions(5)->Unit(benchmark::kMillisecond);

// Console output, then per (benchmark, threads) the best GB/s over the repetitions and its
// ratio to the best triad at the same thread count.
class BestOfReporter : public benchmark::ConsoleReporter {
 public:
  BestOfReporter() : ConsoleReporter(OO_Tabular) {}

  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& r : runs) {
      const auto it = r.counters.find("GBps");
      if (r.run_type != Run::RT_Iteration || r.error_occurred || it == r.counters.end()) continue;
      Best& b = best_[{r.run_name.function_name, r.run_name.args}];
      if (it->second.value > b.gbps) b = {it->second.value, r.GetAdjustedRealTime()};
    }
  }

  void Finalize() override {
    ConsoleReporter::Finalize();
    std::printf("\nbest of 5 repetitions (ratio = GB/s / triad GB/s at the same thread count)\n");
    std::printf("%-18s %8s %10s %8s %8s\n", "benchmark", "threads", "ms/step", "GB/s", "ratio");
    for (const auto& [key, b] : best_) {
      const auto triad = best_.find({"BM_triad", key.second});
      const double ratio = triad == best_.end() ? 0.0 : b.gbps / triad->second.gbps;
      std::printf("%-18s %8s %10.2f %8.2f %8.2f\n", key.first.c_str(), key.second.c_str(), b.ms, b.gbps, ratio);
    }
  }

 private:
  struct Best {
    double gbps = 0, ms = 0;
  };
  std::map<std::pair<std::string, std::string>, Best> best_;
};

}  // namespace

int main(int argc, char** argv) {
  // Random interleaving of the repetitions spreads drifting load from other processes
  // over all benchmarks alike.
  std::vector<char*> args(argv, argv + argc);
  std::string interleave = "--benchmark_enable_random_interleaving=true";
  args.insert(args.begin() + 1, interleave.data());
  int n = static_cast<int>(args.size());
  benchmark::Initialize(&n, args.data());
  if (benchmark::ReportUnrecognizedArguments(n, args.data())) return 1;
  BestOfReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
