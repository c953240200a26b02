// bench_gemm: the deterministic lockstep GEMM against Eigen and OpenBLAS, 1 and 2 threads.
//
// C (M x N) = A (M x K) * B (K x N), row-major, no transposes, float. Reported per run:
//   GFLOPS    2*M*N*K / wall time of a call (manual timing, mean over the iterations)
//   pct_peak  GFLOPS as a percentage of this machine's FMA peak for that thread count,
//             measured at start-up by fma_peak() below and printed in the context header.
// "eigen" is lockstep's fast-mode Eigen variant (gemm_fast_cpu_with(GemmAlgo::eigen)): Eigen
// 3.4 compiled with -mavx2 -mfma inside the library, threaded by OpenMP. OpenBLAS is the
// system libopenblas (pthreads build), threads set by openblas_set_num_threads.
// Each library's idle threads spin for a while after a call; for clean numbers run one
// library per process, e.g. --benchmark_filter=lockstep (docs/benchmarks.md).
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <immintrin.h>

#include "core/parallel.h"
#include "kernels/gemm.h"


namespace {

struct Shape {
  int64_t M, N, K;
};
const Shape kShapes[] = {{128, 256, 784}, {128, 128, 256}, {512, 512, 512}, {1024, 1024, 1024}, {2048, 2048, 2048}};

// ---- FMA peak ------------------------------------------------------------------------

// One thread's FMA throughput: 12 independent accumulator chains (the fma latency of 4
// cycles times 2 fma pipes needs at least 8 in flight), `iters` rounds of 12 vfmadd231ps.
// Returns flops per second.
__attribute__((target("avx2,fma"))) double fma_loop_flops(int64_t iters) {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(0.001f * i);
  const __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
  auto t0 = std::chrono::steady_clock::now();
  for (int64_t it = 0; it < iters; ++it) {
    // Twelve chains, each acc = acc * x + y (GCC unrolls this and keeps acc in registers).
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], x, y);
  }
  double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  float sink = 0;
  for (int i = 0; i < 12; ++i) sink += _mm256_cvtss_f32(acc[i]);
  benchmark::DoNotOptimize(sink);
  return iters * 12.0 * 8 * 2 / dt;
}

// Peak of `threads` threads running the loop at once (best of 5 rounds of ~0.2 s).
double fma_peak(int threads) {
  const int64_t iters = 40'000'000;
  double best = 0;
  for (int round = 0; round < 5; ++round) {
    std::vector<double> flops(threads);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) pool.emplace_back([&, t] { flops[t] = fma_loop_flops(iters); });
    for (auto& th : pool) th.join();
    // The slowest thread bounds what all of them sustained together.
    best = std::max(best, threads * *std::min_element(flops.begin(), flops.end()));
  }
  return best;
}

double g_peak[3];  // flops per second for 1 and 2 threads

// ---- benchmarks -------------------------------------------------------------------------

struct Operands {
  std::vector<float> A, B, C;
  lockstep::GemmArgs g;
  explicit Operands(Shape s) : A(s.M * s.K), B(s.K * s.N), C(s.M * s.N) {
    uint32_t x = 12345;  // fixed-seed xorshift: values in [-1, 1)
    for (auto* v : {&A, &B})
      for (auto& f : *v) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        f = static_cast<float>(x) * (2.0f / 4294967296.0f) - 1.0f;
      }
    g.M = s.M, g.N = s.N, g.K = s.K;
    g.A = A.data(), g.lda = s.K;
    g.B = B.data(), g.ldb = s.N;
    g.C = C.data(), g.ldc = s.N;
  }
};

enum class Lib { lockstep, eigen, openblas };

void run_gemm(benchmark::State& state, Lib lib, Shape s, int threads) {
  Operands op(s);
  lockstep::ThreadsGuard guard(threads);
  openblas_set_num_threads(threads);
  double seconds = 0;  // wall time of the GEMM calls alone (manual timing)
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    switch (lib) {
      case Lib::lockstep: lockstep::gemm_cpu(op.g); break;
      case Lib::eigen: lockstep::gemm_fast_cpu_with(lockstep::GemmAlgo::eigen, op.g); break;
      case Lib::openblas:
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s.M, s.N, s.K, 1.0f, op.A.data(), s.K,
                    op.B.data(), s.N, 0.0f, op.C.data(), s.N);
        break;
    }
    benchmark::DoNotOptimize(op.C.data());
    benchmark::ClobberMemory();
    double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    state.SetIterationTime(dt);
    seconds += dt;
  }
  double flops_per_s = 2.0 * s.M * s.N * s.K * state.iterations() / seconds;
  state.counters["GFLOPS"] = flops_per_s * 1e-9;
  state.counters["pct_peak"] = flops_per_s / g_peak[threads] * 100.0;
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
    std::fprintf(stderr, "bench_gemm: the FMA peak loop needs AVX2+FMA\n");
    return 1;
  }
  for (int t : {1, 2}) {
    g_peak[t] = fma_peak(t);
    char value[64];
    std::snprintf(value, sizeof value, "%.1f", g_peak[t] * 1e-9);
    benchmark::AddCustomContext("fma_peak_gflops_" + std::to_string(t) + "t", value);
  }
  const char* names[] = {"lockstep", "eigen", "openblas"};
  for (Shape s : kShapes)
    for (int threads : {1, 2})
      for (Lib lib : {Lib::lockstep, Lib::eigen, Lib::openblas}) {
        std::string name = std::string(names[int(lib)]) + "/M:" + std::to_string(s.M) + "/N:" +
                           std::to_string(s.N) + "/K:" + std::to_string(s.K) + "/threads:" + std::to_string(threads);
        benchmark::RegisterBenchmark(name.c_str(), run_gemm, lib, s, threads)->UseManualTime()->Unit(benchmark::kMillisecond);
      }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
