// bench_gemm: the deterministic lockstep GEMM against Eigen and OpenBLAS, 1 and 2 threads.
//
// C (M x N) = op(A) (M x K) * op(B) (K x N), row-major, float. "op:nn" is the plain product
// (the squares); the MLP's own shapes (784-256 layer, batch 128) come with their transposes:
// forward x * W^T (op:nt), grad-input dy * W (op:nn, M 128 N 784 K 256) and grad-weight
// dy^T * x (op:tn, batch-chunked order for lockstep). Reported per run:
//   GFLOPS    2*M*N*K / wall time of a call (manual timing, mean over the iterations)
//   pct_peak  GFLOPS as a percentage of this machine's FMA peak for that thread count at
//             the SIMD level the variant runs (AVX-512 for lockstep and eigen on an AVX-512
//             CPU and for OpenBLAS's SkylakeX/Cooperlake kernels, AVX2 for the *_avx2
//             variants and OpenBLAS's Haswell kernels), measured at start-up by fma_peak()
//             below and printed in the context header (fma_peak_{avx2,avx512}_gflops_*t).
// "lockstep" is gemm_cpu at the highest SIMD level of this CPU (AVX-512 group kernel where
// available), "lockstep_avx2" the same call capped at AVX2. "eigen" is lockstep's fast-mode
// Eigen variant (gemm_fast_cpu_with(GemmAlgo::eigen)): Eigen 3.4 compiled inside the
// library for AVX-512 where available, "eigen_avx2" its AVX2+FMA build; threaded by
// OpenMP. OpenBLAS is the system libopenblas (pthreads build), threads set by
// openblas_set_num_threads. Its run-time CPU detection does not know every CPU (Debian's
// 0.3.21 falls back to its generic Prescott kernels on some AVX-512 Xeons, ~6x slower), so
// unless OPENBLAS_CORETYPE is set, main() sets it to the best core type of 0.3.21 that this
// CPU's features allow (Cooperlake with AVX512-BF16, SkylakeX with AVX-512, Haswell with
// AVX2) and re-executes itself; the context header prints the core OpenBLAS runs
// (openblas_core) and where the choice came from (openblas_coretype_from).
// Each library's idle threads spin for a while after a call; for clean numbers run one
// library per process, e.g. --benchmark_filter=^lockstep/ (docs/benchmarks.md).
//
// "paired" interleaves the libraries instead: each iteration calls all five once, back to
// back in an order drawn afresh, and times each call. Its
// counters are the medians of those times (<lib>_GFLOPS) and their ratios
// (lockstep_vs_eigen, lockstep_vs_openblas, lockstep_avx2_vs_eigen_avx2; > 1: lockstep
// faster). A slow spell of a shared machine then falls on all of them alike instead of on
// whichever library was running. On 2 threads it needs OMP_WAIT_POLICY=passive and
// OPENBLAS_THREAD_TIMEOUT=4 in the environment, so that the idle threads of one library
// sleep instead of holding the cores the next one needs (it refuses to run otherwise);
// lockstep's pool yields while it spins, for at most 100 us. (A pause between the calls
// was worse: on the 2-vCPU VM a vCPU left idle for 0.3-2 ms takes long enough to wake
// that every library lost 20-50% on 2 threads.)
#include <benchmark/benchmark.h>
#include <cblas.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <immintrin.h>

#include "base/parallel.h"
#include "base/simd.h"
#include "kernels/gemm.h"

extern "C" char* openblas_get_corename(void);

namespace {

// op: "nn", "nt" (B stored N x K), "tn" (A stored K x M, batch-chunked order for lockstep).
struct Shape {
  int64_t M, N, K;
  const char* op;
};
// The MLP's products at batch 128 (forward, grad-input, grad-weight), its grad-weight at
// batch 512 (the largest product of that step), a small layer, then squares.
const Shape kShapes[] = {{128, 256, 784, "nt"},  {128, 784, 256, "nn"},    {256, 784, 128, "tn"},
                         {256, 784, 512, "tn"},  {128, 128, 256, "nn"},    {512, 512, 512, "nn"},
                         {1024, 1024, 1024, "nn"}, {2048, 2048, 2048, "nn"}};
bool trans_a(Shape s) { return s.op[0] == 't'; }
bool trans_b(Shape s) { return s.op[1] == 't'; }

// ---- FMA peak ------------------------------------------------------------------------

// One thread's FMA throughput: CHAINS independent accumulator chains (the fma latency of 4
// cycles times 2 fma pipes needs at least 8 in flight), `iters` rounds of CHAINS fmas on ymm
// (AVX2) or zmm (AVX-512) registers. Returns flops per second. Every chain and the two
// operands must fit in the register file, or the compiler keeps some chains on the stack and
// each of their fmas waits for a store and a load: 16 chains on AVX2's 16 ymm registers did
// (3 chains spilled; 57 GFLOP/s on a Zen 3 core whose GEMM reaches 81). So AVX2 runs 12
// chains (14 registers) and AVX-512 16 (18 of its 32).
#define LS_FMA_LOOP(V, SET1, FMA, LANES, CHAINS)                                           \
  V acc[CHAINS];                                                                          \
  for (int i = 0; i < CHAINS; ++i) acc[i] = SET1(0.001f * i);                             \
  const V x = SET1(0.999999f), y = SET1(1e-7f);                                           \
  auto t0 = std::chrono::steady_clock::now();                                             \
  for (int64_t it = 0; it < iters; ++it)                                                  \
    for (int i = 0; i < CHAINS; ++i) acc[i] = FMA(acc[i], x, y);                          \
  double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); \
  alignas(64) float lanes[LANES];                                                         \
  float sink = 0;                                                                         \
  for (int i = 0; i < CHAINS; ++i) {                                                      \
    std::memcpy(lanes, &acc[i], sizeof lanes);                                            \
    sink += lanes[0];                                                                     \
  }                                                                                       \
  benchmark::DoNotOptimize(sink);                                                         \
  return iters * double(CHAINS) * LANES * 2 / dt;
__attribute__((target("avx2,fma"))) double fma_loop_avx2(int64_t iters) {
  LS_FMA_LOOP(__m256, _mm256_set1_ps, _mm256_fmadd_ps, 8, 12)
}
__attribute__((target("avx512f"))) double fma_loop_avx512(int64_t iters) {
  LS_FMA_LOOP(__m512, _mm512_set1_ps, _mm512_fmadd_ps, 16, 16)
}
#undef LS_FMA_LOOP

enum Level { kAvx2 = 0, kAvx512 = 1 };

// Peak of `threads` threads running the loop at once (best of 5 rounds of ~0.1-0.2 s).
double fma_peak(Level level, int threads) {
  const int64_t iters = level == kAvx512 ? 15'000'000 : 30'000'000;
  double best = 0;
  for (int round = 0; round < 5; ++round) {
    std::vector<double> flops(threads);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] { flops[t] = level == kAvx512 ? fma_loop_avx512(iters) : fma_loop_avx2(iters); });
    for (auto& th : pool) th.join();
    // The slowest thread bounds what all of them sustained together.
    best = std::max(best, threads * *std::min_element(flops.begin(), flops.end()));
  }
  return best;
}

double g_peak[2][3];  // [level][threads]: flops per second for 1 and 2 threads
Level g_lockstep_level = kAvx2;  // the level of "lockstep" and "eigen"
Level g_openblas_level = kAvx2;  // the level of OpenBLAS's kernels (Haswell and older: AVX2 at most)

// ---- OpenBLAS core type -------------------------------------------------------------------

// The best core type of OpenBLAS 0.3.21's DYNAMIC_ARCH list this CPU can run.
const char* best_openblas_core() {
  if (__builtin_cpu_supports("avx512bf16")) return "Cooperlake";
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
  return nullptr;
}

// OpenBLAS reads OPENBLAS_CORETYPE when the library is loaded, before main(): set it and
// start this program again. Returns only when it was already set (or cannot be).
void ensure_openblas_coretype(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE")) return;
  const char* core = best_openblas_core();
  if (!core) return;
  setenv("OPENBLAS_CORETYPE", core, 1);
  setenv("LOCKSTEP_BENCH_CORETYPE_SET", "1", 1);
  execv("/proc/self/exe", argv);
  std::perror("bench_gemm: re-exec with OPENBLAS_CORETYPE set failed; OpenBLAS keeps its own detection");
}

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
    g.trans_a = trans_a(s), g.trans_b = trans_b(s);
    g.A = A.data(), g.lda = g.trans_a ? s.M : s.K;
    g.B = B.data(), g.ldb = g.trans_b ? s.K : s.N;
    g.C = C.data(), g.ldc = s.N;
    // The grad-weight product sums over the batch: lockstep runs it in batch order.
    g.order = g.trans_a ? lockstep::KOrder::batch_chunked : lockstep::KOrder::sequential;
  }
};

enum class Lib { lockstep, eigen, openblas, lockstep_avx2, eigen_avx2 };
constexpr int kLibs = 5;
const Lib kAllLibs[kLibs] = {Lib::lockstep, Lib::eigen, Lib::openblas, Lib::lockstep_avx2, Lib::eigen_avx2};
const char* const kLibNames[kLibs] = {"lockstep", "eigen", "openblas", "lockstep_avx2", "eigen_avx2"};

Level lib_level(Lib lib) {
  switch (lib) {
    case Lib::lockstep:
    case Lib::eigen: return g_lockstep_level;
    case Lib::openblas: return g_openblas_level;
    default: return kAvx2;
  }
}

// One call of lib on op; returns its wall time in seconds.
double call_gemm(Lib lib, Operands& op, Shape s) {
  using lockstep::SimdLevel;
  bool avx2 = lib == Lib::lockstep_avx2 || lib == Lib::eigen_avx2;
  const lockstep::Exec ex{lockstep::Mode::deterministic, avx2 ? SimdLevel::avx2 : lockstep::simd_level_available()};
  auto t0 = std::chrono::steady_clock::now();
  switch (lib) {
    case Lib::lockstep:
    case Lib::lockstep_avx2: lockstep::gemm_cpu(ex, op.g); break;
    case Lib::eigen:
    case Lib::eigen_avx2: lockstep::gemm_fast_cpu_with(ex, lockstep::GemmAlgo::eigen, op.g); break;
    case Lib::openblas:
      cblas_sgemm(CblasRowMajor, op.g.trans_a ? CblasTrans : CblasNoTrans, op.g.trans_b ? CblasTrans : CblasNoTrans,
                  s.M, s.N, s.K, 1.0f, op.A.data(), op.g.lda, op.B.data(), op.g.ldb, 0.0f, op.C.data(), s.N);
      break;
  }
  benchmark::DoNotOptimize(op.C.data());
  benchmark::ClobberMemory();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void run_gemm(benchmark::State& state, Lib lib, Shape s, int threads) {
  Operands op(s);
  lockstep::ThreadsGuard guard(threads);
  openblas_set_num_threads(threads);
  double seconds = 0;  // wall time of the GEMM calls alone (manual timing)
  for (auto _ : state) {
    double dt = call_gemm(lib, op, s);
    state.SetIterationTime(dt);
    seconds += dt;
  }
  double flops_per_s = 2.0 * s.M * s.N * s.K * state.iterations() / seconds;
  state.counters["GFLOPS"] = flops_per_s * 1e-9;
  state.counters["pct_peak"] = flops_per_s / g_peak[lib_level(lib)][threads] * 100.0;
}
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void run_paired(benchmark::State& state, Shape s, int threads) {
  Operands op(s);
  lockstep::ThreadsGuard guard(threads);
  openblas_set_num_threads(threads);
  // Idle threads of the previous library, spinning or yielding, would hold the cores the
  // next library's threads need (OpenBLAS yields for ~2^28 cycles by default).
  const char* omp = std::getenv("OMP_WAIT_POLICY");
  const char* blas = std::getenv("OPENBLAS_THREAD_TIMEOUT");
  if (threads > 1 && (!omp || std::string(omp) != "passive" || !blas || std::string(blas) != "4")) {
    state.SkipWithError("paired runs on several threads need OMP_WAIT_POLICY=passive OPENBLAS_THREAD_TIMEOUT=4");
    for (auto _ : state) {
    }
    return;
  }
  Lib libs[kLibs];
  std::copy(kAllLibs, kAllLibs + kLibs, libs);
  std::vector<double> times[kLibs];
  uint32_t x = 2463534242u;  // xorshift for the call order
  for (auto _ : state) {
    for (int i = kLibs - 1; i > 0; --i) {  // Fisher-Yates
      x ^= x << 13, x ^= x >> 17, x ^= x << 5;
      std::swap(libs[i], libs[x % (i + 1)]);
    }
    double total = 0;
    for (Lib lib : libs) {
      double dt = call_gemm(lib, op, s);
      times[int(lib)].push_back(dt);
      total += dt;
    }
    state.SetIterationTime(total);
  }
  double flop = 2.0 * s.M * s.N * s.K;
  double med[kLibs];
  for (int l = 0; l < kLibs; ++l) {
    med[l] = median(times[l]);
    state.counters[std::string(kLibNames[l]) + "_GFLOPS"] = flop / med[l] * 1e-9;
  }
  state.counters["lockstep_vs_eigen"] = med[1] / med[0];
  state.counters["lockstep_vs_openblas"] = med[2] / med[0];
  state.counters["lockstep_avx2_vs_eigen_avx2"] = med[4] / med[3];
}

}  // namespace

int main(int argc, char** argv) {
  ensure_openblas_coretype(argv);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
    std::fprintf(stderr, "bench_gemm: the FMA peak loop needs AVX2+FMA\n");
    return 1;
  }
  bool avx512 = __builtin_cpu_supports("avx512f");
  for (Level level : {kAvx2, kAvx512})
    for (int t : {1, 2}) {
      if (level == kAvx512 && !avx512) continue;
      g_peak[level][t] = fma_peak(level, t);
      char value[64];
      std::snprintf(value, sizeof value, "%.1f", g_peak[level][t] * 1e-9);
      benchmark::AddCustomContext(std::string("fma_peak_") + (level == kAvx512 ? "avx512" : "avx2") + "_gflops_" +
                                      std::to_string(t) + "t",
                                  value);
    }
  lockstep::SimdLevel simd = lockstep::simd_level_available();
  g_lockstep_level = simd == lockstep::SimdLevel::avx512 ? kAvx512 : kAvx2;
  std::string core = openblas_get_corename();
  bool openblas_avx512 = core == "SkylakeX" || core == "Cooperlake" || core == "SapphireRapids";
  g_openblas_level = avx512 && openblas_avx512 ? kAvx512 : kAvx2;
  benchmark::AddCustomContext("simd_level", lockstep::simd_level_name(simd));
  benchmark::AddCustomContext("openblas_core", core);
  benchmark::AddCustomContext("openblas_coretype_from",
                              std::getenv("LOCKSTEP_BENCH_CORETYPE_SET") ? "bench_gemm (CPU features)"
                              : std::getenv("OPENBLAS_CORETYPE")          ? "the environment"
                                                                          : "OpenBLAS's own detection");
  for (Shape s : kShapes)
    for (int threads : {1, 2}) {
      std::string shape = "/M:" + std::to_string(s.M) + "/N:" + std::to_string(s.N) + "/K:" + std::to_string(s.K) +
                          "/op:" + s.op + "/threads:" + std::to_string(threads);
      for (Lib lib : kAllLibs)
        benchmark::RegisterBenchmark((kLibNames[int(lib)] + shape).c_str(), run_gemm, lib, s, threads)
            ->UseManualTime()
            ->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark(("paired" + shape).c_str(), run_paired, s, threads)
          ->UseManualTime()
          ->Unit(benchmark::kMillisecond);
    }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
