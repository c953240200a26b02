// Fast-mode CPU GEMM: three variants and an autotuner that picks one per shape by timing
// them, like cuDNN's benchmark mode. None of this promises bits (gemm.h).
//
//   canonical  the deterministic gemm_cpu.
//   eigen      Eigen's GEMM, OpenMP-threaded with num_threads() threads (at most the core
//              count). Built with AVX-512 in gemm_fast_avx512.cpp and with AVX2 in
//              gemm_fast_avx2.cpp, run at the matching ex.simd;
//              at the scalar level it runs canonical instead, because a second,
//              baseline build of Eigen next to the AVX2 one could be mixed up by the linker.
//              Builds without AVX2 compile Eigen here instead.
//   split_k    K cut into one range per thread; each thread sums its range into a private
//              M x N buffer with the canonical kernel, and the buffers are added into the
//              total in the order the threads finish. With three or more ranges that order,
//              and so the rounding, changes from run to run on purpose.
//
// Autotuner: the key is (trans_a, trans_b, M, N, K, num_threads(), ex.simd). The first
// call with a key times every variant on a scratch copy of C (seeded from C when
// accumulating, so the caller's C is only read) and caches the fastest. Tuning runs are
// serialised so that two tunings do not compete for the cores; lookups take a short lock.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <thread>
#include <tuple>
#include <type_traits>
#include <vector>

#include "lockstep/config.h"
#if !LOCKSTEP_HAVE_AVX2
#define LOCKSTEP_GEMM_EIGEN
#include <Eigen/Core>
#endif

#include "base/parallel.h"
#include "kernels/gemm.h"
#include "kernels/gemm_internal.h"

namespace lockstep {
namespace {

constexpr int64_t kMinSplitK = 128;  // smallest K range worth a thread in split_k

void gemm_eigen(const Exec& ex, const GemmArgs& g) {
  // Eigen's GEMM threads busy-wait on each other's packed blocks, so each needs a core of
  // its own (measured: a 128x128x256 product took ~20 ms instead of ~0.2 ms when its
  // second thread found no free core); never ask for more threads than cores.
  int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  int threads = std::min(num_threads(), cores);
#if LOCKSTEP_HAVE_AVX512
  if (ex.avx512()) return gemm_detail::gemm_eigen_avx512(g, threads);
#endif
#if LOCKSTEP_HAVE_AVX2
  if (ex.avx2()) return gemm_detail::gemm_eigen_avx2(g, threads);
  gemm_cpu(ex, g);
#else
  (void)ex;
  gemm_detail::eigen_gemm(g, threads);
#endif
}

void gemm_split_k(const Exec& ex, const GemmArgs& g) {
  int64_t parts = std::min<int64_t>(num_threads(), g.K / kMinSplitK);
  if (parts <= 1) return gemm_cpu(ex, g);
  // total: the sum of the partials that have finished so far, M x N, row stride N.
  std::vector<float> total(g.M * g.N);
  std::mutex mu;
  int64_t finished = 0;
  parallel_run(static_cast<int>(parts), [&](int t) {
    // This thread's k range, summed by the canonical kernel (serial inside the region).
    int64_t k0 = t * g.K / parts, k1 = (t + 1) * g.K / parts;
    std::vector<float> part(g.M * g.N);
    GemmArgs s = g;
    s.K = k1 - k0;
    s.A = g.trans_a ? g.A + k0 * g.lda : g.A + k0;
    s.B = g.trans_b ? g.B + k0 : g.B + k0 * g.ldb;
    s.C = part.data();
    s.ldc = g.N;
    s.bias = nullptr;
    s.accumulate = false;
    s.order = KOrder::sequential;
    gemm_cpu(ex, s);
    // Completion order: whoever finishes first starts the total.
    std::lock_guard<std::mutex> lock(mu);
    if (finished++ == 0)
      total.swap(part);
    else
      for (int64_t i = 0; i < g.M * g.N; ++i) total[i] += part[i];
  });
  // Epilogue on one thread: out = total (+ bias), then (C +) out.
  for (int64_t i = 0; i < g.M; ++i)
    for (int64_t j = 0; j < g.N; ++j) {
      float out = total[i * g.N + j];
      if (g.bias) out += g.bias[j];
      float& c = g.C[i * g.ldc + j];
      c = g.accumulate ? c + out : out;
    }
}

// (trans_a, trans_b, M, N, K, threads, simd): what the timings depend on. Leading dimensions,
// bias and accumulate change little and are left out, as in cuDNN's benchmark cache.
using Key = std::tuple<bool, bool, int64_t, int64_t, int64_t, int, int>;

std::mutex g_cache_mu;             // guards g_cache (short lookups and inserts)
std::map<Key, GemmAlgo> g_cache;
std::mutex g_tune_mu;              // one tuning at a time

Key key_of(const Exec& ex, const GemmArgs& g) {
  return Key(g.trans_a, g.trans_b, g.M, g.N, g.K, num_threads(), static_cast<int>(ex.simd));
}

bool cached(const Key& k, GemmAlgo* out) {
  std::lock_guard<std::mutex> lock(g_cache_mu);
  auto it = g_cache.find(k);
  if (it == g_cache.end()) return false;
  *out = it->second;
  return true;
}

// Best of a few timed runs of one variant on the scratch C (the first run is a warm-up;
// a run over 50 ms is timed once).
double time_variant(const Exec& ex, GemmAlgo algo, const GemmArgs& g, const std::vector<float>& c0) {
  using clock = std::chrono::steady_clock;
  std::vector<float> scratch(c0.size());
  GemmArgs s = g;
  s.C = scratch.data();
  s.ldc = g.N;
  double best = std::numeric_limits<double>::infinity();
  for (int rep = 0; rep < 4; ++rep) {
    std::copy(c0.begin(), c0.end(), scratch.begin());
    auto t0 = clock::now();
    gemm_fast_cpu_with(ex, algo, s);
    double dt = std::chrono::duration<double>(clock::now() - t0).count();
    if (rep > 0) best = std::min(best, dt);
    if (dt > 0.05 && rep > 0) break;
  }
  return best;
}

GemmAlgo tune(const Exec& ex, const GemmArgs& g) {
  // The scratch C starts as the caller's C when accumulating, so each variant does the
  // same work; the caller's C is never written.
  std::vector<float> c0(g.M * g.N, 0.0f);
  if (g.accumulate)
    for (int64_t i = 0; i < g.M; ++i) std::copy(g.C + i * g.ldc, g.C + i * g.ldc + g.N, c0.begin() + i * g.N);
  GemmAlgo best = GemmAlgo::canonical;
  double best_time = std::numeric_limits<double>::infinity();
  // Ties go to the earlier variant, canonical first.
  for (GemmAlgo a : {GemmAlgo::canonical, GemmAlgo::eigen, GemmAlgo::split_k}) {
    double t = time_variant(ex, a, g, c0);
    if (t < best_time) {
      best_time = t;
      best = a;
    }
  }
  return best;
}

}  // namespace

const char* gemm_algo_name(GemmAlgo a) {
  switch (a) {
    case GemmAlgo::canonical: return "canonical";
    case GemmAlgo::eigen: return "eigen";
    case GemmAlgo::split_k: return "split_k";
  }
  return "unknown";
}

void gemm_fast_cpu_with(const Exec& ex, GemmAlgo algo, const GemmArgs& g) {
  if (g.M == 0 || g.N == 0) return;
  switch (algo) {
    case GemmAlgo::canonical: return gemm_cpu(ex, g);
    case GemmAlgo::eigen: return gemm_eigen(ex, g);
    case GemmAlgo::split_k: return gemm_split_k(ex, g);
  }
}

GemmAlgo gemm_autotune_choice(const Exec& ex, const GemmArgs& g) {
  Key k = key_of(ex, g);
  GemmAlgo algo;
  if (cached(k, &algo)) return algo;
  // One tuning at a time; a thread that waited here may find its answer ready.
  std::lock_guard<std::mutex> tune_lock(g_tune_mu);
  if (cached(k, &algo)) return algo;
  algo = tune(ex, g);
  std::lock_guard<std::mutex> lock(g_cache_mu);
  g_cache.emplace(k, algo);
  return algo;
}

void gemm_autotune_reset() {
  std::lock_guard<std::mutex> lock(g_cache_mu);
  g_cache.clear();
}

template <typename T>
void gemm_fast_cpu(const Exec& ex, const GemmArgsT<T>& g) {
  if constexpr (std::is_same_v<T, float>)
    gemm_fast_cpu_with(ex, gemm_autotune_choice(ex, g), g);
  else
    gemm_cpu(ex, g);  // no tuned float64 variant
}
template void gemm_fast_cpu<float>(const Exec&, const GemmArgs&);
template void gemm_fast_cpu<double>(const Exec&, const GemmArgsF64&);

}  // namespace lockstep
