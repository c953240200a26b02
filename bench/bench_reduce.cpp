// bench_reduce: how close the deterministic sum gets to the memory bandwidth.
//
//   BM_triad/T        a[i] = b[i] + s * c[i] over 16M floats per array, T threads
//                     (parallel_for, static split). Bytes counted: 3 arrays * 16M * 4 B =
//                     192 MiB per iteration (read b and c, write a), the STREAM convention;
//                     the write-allocate read of a is real traffic but not counted.
//   BM_sum_det/T      sum_cpu over 16M floats, T threads: 64 MiB read per iteration.
//   BM_sum_fast/T     sum_fast_cpu, the same data: 64 MiB.
// GBps = counted bytes / wall time / 1e9. Each benchmark runs 5 repetitions, interleaved in
// random order with the others; at the end the best repetition of each is printed with its
// ratio to the best triad at the same thread count.
//
//   ./build/bench/bench_reduce
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "base/parallel.h"
#include "kernels/reduce.h"

namespace {

using namespace lockstep;

constexpr int64_t kN = int64_t(1) << 24;  // 16M floats = 64 MiB per array

std::vector<float>& triad_array(int which) {
  static std::vector<float> arrays[3] = {std::vector<float>(kN, 0.0f), std::vector<float>(kN, 1.0f),
                                         std::vector<float>(kN, 2.0f)};
  return arrays[which];
}

// Values in [-1, 1) with a fixed pattern, so the sum is not trivially exact.
const std::vector<float>& sum_input() {
  static const std::vector<float> x = [] {
    std::vector<float> v(kN);
    uint32_t s = 12345;
    for (auto& f : v) {
      s = s * 1664525u + 1013904223u;
      f = static_cast<float>(s >> 8) * (2.0f / 16777216.0f) - 1.0f;
    }
    return v;
  }();
  return x;
}

void set_rate(benchmark::State& state, double bytes_per_iter) {
  state.SetBytesProcessed(static_cast<int64_t>(bytes_per_iter) * state.iterations());
  state.counters["GBps"] = benchmark::Counter(bytes_per_iter * state.iterations() / 1e9,
                                              benchmark::Counter::kIsRate);
}

void BM_triad(benchmark::State& state) {
  ThreadsGuard tg(static_cast<int>(state.range(0)));
  float* a = triad_array(0).data();
  const float* b = triad_array(1).data();
  const float* c = triad_array(2).data();
  const float s = 3.0f;
  for (auto _ : state) {
    parallel_for(kN, 1 << 20, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) a[i] = b[i] + s * c[i];
    });
    benchmark::DoNotOptimize(a);
    benchmark::ClobberMemory();
  }
  set_rate(state, 3.0 * kN * sizeof(float));
}

void BM_sum_det(benchmark::State& state) {
  ThreadsGuard tg(static_cast<int>(state.range(0)));
  const float* x = sum_input().data();
  float out = 0;
  for (auto _ : state) {
    sum_cpu(Exec::current(), &out, x, kN);
    benchmark::DoNotOptimize(out);
  }
  set_rate(state, 1.0 * kN * sizeof(float));
}

void BM_sum_fast(benchmark::State& state) {
  ThreadsGuard tg(static_cast<int>(state.range(0)));
  const float* x = sum_input().data();
  float out = 0;
  for (auto _ : state) {
    sum_fast_cpu(Exec::current(), &out, x, kN);
    benchmark::DoNotOptimize(out);
  }
  set_rate(state, 1.0 * kN * sizeof(float));
}

BENCHMARK(BM_triad)->Arg(1)->Arg(2)->UseRealTime()->Repetitions(5)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_sum_det)->Arg(1)->Arg(2)->UseRealTime()->Repetitions(5)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_sum_fast)->Arg(1)->Arg(2)->UseRealTime()->Repetitions(5)->Unit(benchmark::kMillisecond);

// The console output plus, at the end, the best GBps of each benchmark and its ratio to
// the triad with the same thread count.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  RatioReporter() : ConsoleReporter(OO_Tabular) {}  // no colour codes, so the output pastes cleanly

  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& r : runs) {
      if (r.run_type != Run::RT_Iteration || r.error_occurred) continue;
      auto it = r.counters.find("GBps");
      if (it == r.counters.end()) continue;
      double& best = best_[{r.run_name.function_name, r.run_name.args}];
      best = std::max(best, it->second.value);
    }
  }

  void Finalize() override {
    ConsoleReporter::Finalize();
    std::printf("\nbest of 5 repetitions (GB/s; ratio = GB/s / triad GB/s, same threads)\n");
    std::printf("%-14s %8s %10s %8s\n", "benchmark", "threads", "GB/s", "ratio");
    for (const auto& kv : best_) {
      const auto triad = best_.find({"BM_triad", kv.first.second});
      const double ratio = triad != best_.end() ? kv.second / triad->second : 0.0;
      std::printf("%-14s %8s %10.2f %8.2f\n", kv.first.first.c_str(), kv.first.second.c_str(), kv.second, ratio);
    }
  }

 private:
  std::map<std::pair<std::string, std::string>, double> best_;
};

}  // namespace

int main(int argc, char** argv) {
  // Repetitions of the six benchmarks are interleaved in random order by default, so that
  // load from other processes drifting during the run hits all of them alike.
  std::vector<char*> args(argv, argv + argc);
  std::string interleave = "--benchmark_enable_random_interleaving=true";
  args.insert(args.begin() + 1, interleave.data());
  argc = static_cast<int>(args.size());
  argv = args.data();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
