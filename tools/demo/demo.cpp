// `lockstep demo`: the first demonstration. The same matrix product and the same long sum
// are computed with several thread counts, in deterministic mode and in fast mode, and the
// bits are compared. Deterministic mode gives one hash for every thread count and run;
// fast mode (library GEMM, autotuning, completion-order reductions) usually does not.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "commands.h"
#include "base/mode.h"
#include "base/parallel.h"
#include "core/tensor.h"

namespace lockstep_cli {
namespace {

struct DemoOptions {
  std::vector<int> threads{1, 2, 3, 4, 8};
  int64_t size = 512;
  int64_t sum_length = 1 << 22;
  int repeats = 3;
  uint32_t seed = 1234;
};

// Fixed-seed values in [-1, 1) from a 32-bit LCG: enough for a demonstration input.
lockstep::Tensor demo_input(int64_t rows, int64_t cols, uint32_t seed) {
  std::vector<float> v(static_cast<size_t>(rows * cols));
  uint32_t s = seed;
  for (auto& x : v) {
    s = s * 1664525u + 1013904223u;
    x = static_cast<float>(s >> 8) * (2.0f / 16777216.0f) - 1.0f;
  }
  return lockstep::Tensor::from_vector(v, {rows, cols});
}

// One row of the report: the distinct hashes seen for an op over thread counts and repeats.
int report(const char* mode, const char* what, const std::map<int, std::set<std::string>>& hashes) {
  std::set<std::string> all;
  for (auto& [t, hs] : hashes) all.insert(hs.begin(), hs.end());
  std::printf("  %-13s %-28s", mode, what);
  for (auto& [t, hs] : hashes) std::printf("  t=%d:%s%s", t, hs.begin()->substr(0, 8).c_str(), hs.size() > 1 ? "*" : "");
  std::printf("  -> %zu distinct\n", all.size());
  return static_cast<int>(all.size());
}

int run_demo(const DemoOptions& o) {
  using namespace lockstep;
  Tensor a = demo_input(o.size, o.size, o.seed), b = demo_input(o.size, o.size, o.seed + 1);
  Tensor v = demo_input(1, o.sum_length, o.seed + 2);
  std::printf("lockstep demo: %lldx%lld matmul and a sum of %lld floats, threads", (long long)o.size,
              (long long)o.size, (long long)o.sum_length);
  for (int t : o.threads) std::printf(" %d", t);
  std::printf(", %d repeats each (hash prefix; * = changed between repeats)\n", o.repeats);
  int det_distinct = 0;
  for (Mode m : {Mode::deterministic, Mode::fast}) {
    ModeGuard mg(m);
    std::map<int, std::set<std::string>> mm, ss;
    for (int t : o.threads) {
      ThreadsGuard tg(t);
      for (int r = 0; r < o.repeats; ++r) {
        mm[t].insert(hash_hex(matmul(a, b)));
        ss[t].insert(hash_hex(sum(v)));
      }
    }
    int d1 = report(mode_name(m), "matmul", mm), d2 = report(mode_name(m), "sum", ss);
    if (m == Mode::deterministic) det_distinct = std::max(d1, d2);
  }
  if (det_distinct != 1) {
    std::printf("FAIL: deterministic mode gave %d distinct results\n", det_distinct);
    return 1;
  }
  std::printf("deterministic mode: one result for every thread count and repeat.\n");
  return 0;
}

}  // namespace

void add_demo(CLI::App& app, int* rc) {
  auto opts = std::make_shared<DemoOptions>();
  CLI::App* sub = app.add_subcommand("demo", "same bits for any thread count (deterministic) vs fast mode");
  sub->add_option("--threads", opts->threads, "thread counts to compare")->check(CLI::Range(1, 1024));
  sub->add_option("--size", opts->size, "matrix size")->check(CLI::Range(1, 8192));
  sub->add_option("--sum-length", opts->sum_length, "length of the summed vector")->check(CLI::Range(1, 1 << 28));
  sub->add_option("--repeats", opts->repeats, "runs per thread count")->check(CLI::Range(1, 1000));
  sub->add_option("--seed", opts->seed, "input seed");
  sub->callback([opts, rc] { *rc = run_demo(*opts); });
}

}  // namespace lockstep_cli
