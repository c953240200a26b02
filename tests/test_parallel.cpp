// Thread pool: static partitions, every index exactly once, exceptions, nesting, modes.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>
#include <vector>

#include "base/exec.h"
#include "base/mode.h"
#include "base/parallel.h"
#include "base/simd.h"

using namespace lockstep;

TEST_CASE("parallel_for: covers every index once with the static partition", "[parallel]") {
  for (int threads : {1, 2, 3, 8}) {
    ThreadsGuard tg(threads);
    REQUIRE(num_threads() == threads);
    for (int64_t n : {0, 1, 5, 7, 100, 1001}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      std::mutex mu;
      std::set<std::pair<int64_t, int64_t>> ranges;
      parallel_for(n, 1, [&](int64_t b, int64_t e) {
        {
          std::lock_guard<std::mutex> lk(mu);
          ranges.insert({b, e});
        }
        for (int64_t i = b; i < e; ++i) hits[i]++;
      });
      for (auto& h : hits) REQUIRE(h.load() == 1);
      // the ranges are exactly t*n/T .. (t+1)*n/T
      int64_t T = std::min<int64_t>(threads, n);
      std::set<std::pair<int64_t, int64_t>> expected;
      for (int64_t t = 0; t < T; ++t)
        if (t * n / T < (t + 1) * n / T) expected.insert({t * n / T, (t + 1) * n / T});
      REQUIRE(ranges == expected);
    }
  }
}

TEST_CASE("parallel_for: grain limits the number of tasks", "[parallel]") {
  ThreadsGuard tg(8);
  std::atomic<int> calls{0};
  parallel_for(100, 60, [&](int64_t, int64_t) { calls++; });
  REQUIRE(calls.load() == 2);
}

TEST_CASE("parallel_for: exceptions reach the caller, the pool survives", "[parallel]") {
  ThreadsGuard tg(4);
  REQUIRE_THROWS_WITH(parallel_for(100, 1,
                                   [&](int64_t b, int64_t) {
                                     if (b > 0) throw std::runtime_error("boom");
                                   }),
                      "boom");
  std::atomic<int64_t> total{0};
  parallel_for(100, 1, [&](int64_t b, int64_t e) { total += e - b; });
  REQUIRE(total.load() == 100);
}

TEST_CASE("parallel_for: nested calls run serially instead of deadlocking", "[parallel]") {
  ThreadsGuard tg(3);
  std::atomic<int64_t> total{0};
  parallel_for(9, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) parallel_for(10, 1, [&](int64_t b2, int64_t e2) { total += e2 - b2; });
  });
  REQUIRE(total.load() == 90);
}

TEST_CASE("set_num_threads rejects nonsense", "[parallel][errors]") {
  REQUIRE_THROWS_WITH(set_num_threads(0), Catch::Contains("[set_num_threads]"));
}

TEST_CASE("mode: default deterministic, guard restores", "[mode]") {
  REQUIRE(mode() == Mode::deterministic);
  {
    ModeGuard g(Mode::fast);
    REQUIRE(mode() == Mode::fast);
    REQUIRE(std::string(mode_name(mode())) == "fast");
  }
  REQUIRE(mode() == Mode::deterministic);
}

TEST_CASE("simd: guard switches the path and restores it", "[simd]") {
  bool before = simd_enabled();
  {
    SimdGuard g(false);
    REQUIRE_FALSE(simd_enabled());
  }
  REQUIRE(simd_enabled() == before);
  {
    SimdGuard g(true);
    REQUIRE(simd_enabled() == simd_available());
  }
}

TEST_CASE("simd: levels of another architecture clamp to scalar, never to a neighbour", "[simd]") {
  const std::vector<SimdLevel> have = simd_levels_available();
  REQUIRE(have.front() == SimdLevel::scalar);
  REQUIRE(have.back() == simd_level_available());
  const bool x86 = simd_level_available() == SimdLevel::avx2 || simd_level_available() == SimdLevel::avx512;
  for (SimdLevel l : {SimdLevel::scalar, SimdLevel::avx2, SimdLevel::avx512, SimdLevel::neon}) {
    SimdLevelGuard g(l);
    INFO("asked " << simd_level_name(l) << ", got " << simd_level_name(simd_level()));
    if (std::find(have.begin(), have.end(), l) != have.end())
      REQUIRE(simd_level() == l);
    else if (l == SimdLevel::avx512 && x86)
      REQUIRE(simd_level() == SimdLevel::avx2);
    else
      REQUIRE(simd_level() == SimdLevel::scalar);
  }
  // What each level selects: neon is not "above" the x86 levels.
  const Exec neon{Mode::deterministic, SimdLevel::neon}, avx512{Mode::deterministic, SimdLevel::avx512};
  REQUIRE((neon.neon() && !neon.avx2() && !neon.avx512()));
  REQUIRE((avx512.avx2() && avx512.avx512() && !avx512.neon()));
}

// A worker must run the task of the job it woke for, once: jobs of 2 and 3 tasks on a
// 3-thread pool, back to back, each task counted. (A worker that read the task count apart
// from the job's sequence number could run task 2 of a later job twice; TSan saw the race.)
TEST_CASE("parallel_run: every task of every job runs exactly once, jobs back to back", "[parallel]") {
  ThreadsGuard tg(3);
  constexpr int kJobs = 20000;
  std::vector<std::atomic<int>> ran(static_cast<size_t>(kJobs) * 3);
  for (int j = 0; j < kJobs; ++j) {
    const int ntasks = 2 + (j % 2);
    parallel_run(ntasks, [&](int t) { ran[static_cast<size_t>(j) * 3 + t].fetch_add(1); });
  }
  int wrong = 0;
  for (int j = 0; j < kJobs; ++j)
    for (int t = 0; t < 3; ++t) wrong += ran[static_cast<size_t>(j) * 3 + t].load() != (t < 2 + (j % 2) ? 1 : 0);
  REQUIRE(wrong == 0);
}

TEST_CASE("set_num_threads: counts beyond the pool's limit are rejected", "[parallel][errors]") {
  REQUIRE_THROWS_WITH(set_num_threads(kMaxThreads + 1), Catch::Contains("[set_num_threads]"));
}
