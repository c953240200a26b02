// autotune, reduction-order, thread-count and simd-level: the kernel-level shortcuts of
// fast mode.
#include <cstring>
#include <set>

#include "broken.h"
#include "base/mode.h"
#include "base/parallel.h"
#include "core/random.h"
#include "base/simd.h"
#include "harness.h"
#include "kernels/gemm.h"
#include "scenarios.h"

namespace lockstep_cli::lab {

using namespace lockstep;

namespace {

// The algorithm the autotuner holds for the lab model's three forward products
// (x W^T: M = batch, N = out, K = in), e.g. "eigen/canonical/canonical".
std::string autotune_choices() {
  const int64_t shapes[3][2] = {{784, 128}, {128, 64}, {64, 10}};
  std::string out;
  for (auto& s : shapes) {
    std::vector<float> a(kBatch * s[0], 0.5f), b(s[0] * s[1], 0.25f), c(kBatch * s[1]);
    GemmArgs g;
    g.trans_b = true, g.M = kBatch, g.N = s[1], g.K = s[0];
    g.A = a.data(), g.lda = s[0], g.B = b.data(), g.ldb = s[0], g.C = c.data(), g.ldc = s[1];
    if (!out.empty()) out += "/";
    out += gemm_algo_name(gemm_autotune_choice(Exec::current(), g));
  }
  return out;
}

// One run with a fresh autotuner (as a new process has), in `mode` with one thread: with
// one thread fast mode's reductions repeat, so only the autotuner's choice can differ.
std::vector<float> train_tuned(const LabOptions& o, Mode mode, std::vector<double>* losses, std::string* choices) {
  gemm_autotune_reset();
  TrainSpec spec = default_spec(o);
  spec.mode = mode, spec.threads = 1;
  Session s(spec, o);
  s.train_steps(lab_steps(o));
  *losses = s.losses;
  {
    ThreadsGuard tg(1);
    *choices = autotune_choices();
  }
  return final_values(s, o);
}

// Layer 1's forward product (x W^T, fixed random operands) by one fast-mode algorithm at
// the current SIMD level, on one thread.
std::vector<float> layer1_product(GemmAlgo algo) {
  Tensor a = Tensor::empty({kBatch, 784}), b = Tensor::empty({128, 784});
  fill_uniform(a, -1, 1, 7, stream_id("lab:autotune:a"));
  fill_uniform(b, -1, 1, 7, stream_id("lab:autotune:b"));
  std::vector<float> c(kBatch * 128);
  GemmArgs g;
  g.trans_b = true, g.M = kBatch, g.N = 128, g.K = 784;
  g.A = a.data<float>(), g.lda = 784, g.B = b.data<float>(), g.ldb = 784, g.C = c.data(), g.ldc = 128;
  ThreadsGuard tg(1);
  gemm_fast_cpu_with(Exec::current(), algo, g);
  return c;
}

// max |d| between two fast-mode candidates on the first layer's shape: what a flipped
// choice costs.
double candidates_differ_by() {
  return compare(layer1_product(GemmAlgo::canonical), layer1_product(GemmAlgo::eigen)).max_abs_delta;
}

ScenarioResult run_autotune(const LabOptions& o) {
  ScenarioResult r;
  r.compared = "final weights and test logits";
  std::vector<double> lp1, lp2, lf1, lf2;
  std::string c1, c2, c3, c4;
  std::vector<float> p1 = train_tuned(o, Mode::fast, &lp1, &c1), p2 = train_tuned(o, Mode::fast, &lp2, &c2);
  r.problem = compare(p1, p2);
  r.fix = compare(train_tuned(o, Mode::deterministic, &lf1, &c3), train_tuned(o, Mode::deterministic, &lf2, &c4));
  r.curves = four_curves(lp1, lp2, lf1, lf2);
  const double cost = candidates_differ_by();
  r.note = strf("for the forward products the autotuner picked %s in run 1 and %s in run 2 (layers 1/2/3; the "
                "backward products are tuned too; with one thread split_k runs the canonical kernel); canonical and eigen differ by up to %.3g on layer 1's product; the fix pins the "
                "canonical algorithm (deterministic mode)",
                c1.c_str(), c2.c_str(), cost);
  TrainSpec t = default_spec(o);
  t.mode = Mode::fast, t.threads = 1;
  add_culprit(r, trace_run(t, o, kCulpritSteps, gemm_autotune_reset),
              trace_run(t, o, kCulpritSteps, gemm_autotune_reset));
  r.extra["choices_run1"] = c1;
  r.extra["choices_run2"] = c2;
  r.extra["canonical_vs_eigen_max_abs_delta"] = cost;
  return r;
}

// The reduction scenario: 2^20 numbers of mixed magnitude, summed in several ways.
ScenarioResult run_reduction_order(const LabOptions& o) {
  const int64_t n = int64_t(1) << 20;
  Tensor x = Tensor::empty({n});
  fill_normal(x, 0.0, 1.0, 42, stream_id("lab:reduction"));
  std::vector<float> v = x.to_vector<float>();
  for (size_t i = 0; i < v.size(); i += 3) v[i] *= 1000.0f;  // mixed magnitudes make rounding visible
  std::vector<float> rev(v.rbegin(), v.rend());
  auto sum_of = [](const std::vector<float>& d, int threads) {
    ThreadsGuard tg(threads);
    return sum(Tensor::from_vector(d, {static_cast<int64_t>(d.size())})).item();
  };
  double exact = 0;
  for (float f : v) exact += f;
  ScenarioResult r;
  r.compared = "the sum of 2^20 floats";
  r.problem = compare(std::vector<double>{sum_of(v, 1)}, std::vector<double>{sum_of(rev, 1)});
  const int threads = std::max(2, o.threads);
  r.fix = compare(std::vector<double>{sum_of(v, 1)}, std::vector<double>{sum_of(v, threads)});
  // Completion order with threads racing: 20 repeats of an atomics-style sum.
  std::set<float> seen;
  std::vector<double> atomics, canonical;
  const double canon = sum_of(v, threads);
  for (int rep = 0; rep < 20; ++rep) {
    float s = atomic_order_sum(v, threads, 4096);
    seen.insert(s);
    atomics.push_back(double(s) - exact);
    canonical.push_back(sum_of(v, rep % 2 ? 1 : threads) - exact);
  }
  r.curves = {{"atomics-style sum, " + std::to_string(threads) + " threads racing", true, atomics},
              {"canonical order, 1 or " + std::to_string(threads) + " threads", false, canonical}};
  r.x_label = "repeat";
  r.y_label = "sum minus the float64 sum";
  double worst = 0;
  for (double a : atomics) worst = std::max(worst, std::fabs(a + exact - canon));
  r.note = strf("reversed order differs; an atomics-style sum with %d threads racing gave %zu distinct results "
                "in 20 repeats (max |d| %.3g from the canonical sum)",
                threads, seen.size(), worst);
  r.extra["atomics_distinct_results"] = seen.size();
  r.extra["atomics_max_abs_delta"] = worst;
  return r;
}

std::vector<float> train_threads(const LabOptions& o, Mode mode, int threads, std::vector<double>* losses) {
  gemm_autotune_reset();
  TrainSpec spec = default_spec(o);
  spec.mode = mode, spec.threads = threads;
  Session s(spec, o);
  s.train_steps(lab_steps(o));
  *losses = s.losses;
  return final_values(s, o);
}

ScenarioResult run_thread_count(const LabOptions& o) {
  ScenarioResult r;
  r.compared = "final weights and test logits";
  const int t2 = std::max(2, o.threads);
  std::vector<double> lp1, lp2, lf1, lf2;
  r.problem = compare(train_threads(o, Mode::fast, 1, &lp1), train_threads(o, Mode::fast, t2, &lp2));
  r.fix = compare(train_threads(o, Mode::deterministic, 1, &lf1), train_threads(o, Mode::deterministic, t2, &lf2));
  r.curves = four_curves(lp1, lp2, lf1, lf2);
  r.note = r.problem.identical
               ? "seen: fast mode happened to give the same bits with both thread counts this time"
               : strf("seen: fast mode's bits changed between 1 and %d threads (Eigen blocking, autotuning, "
                      "completion-order reductions)",
                      t2);
  TrainSpec s1 = default_spec(o), s2 = default_spec(o);
  s1.mode = s2.mode = Mode::fast, s1.threads = 1, s2.threads = t2;
  add_culprit(r, trace_run(s1, o, kCulpritSteps, gemm_autotune_reset),
              trace_run(s2, o, kCulpritSteps, gemm_autotune_reset));
  return r;
}

// The same training at another SIMD level: what moving to a machine with (or without)
// AVX-512 does. Only the level changes; the autotuner starts afresh in both runs.
std::vector<float> train_level(const LabOptions& o, Mode mode, SimdLevel level, std::vector<double>* losses) {
  SimdLevelGuard sg(level);
  gemm_autotune_reset();
  TrainSpec spec = default_spec(o);
  spec.mode = mode;
  Session s(spec, o);
  s.train_steps(lab_steps(o));
  *losses = s.losses;
  return final_values(s, o);
}

// max |d| between fast mode's Eigen product at two SIMD levels, on layer 1's shape.
double eigen_levels_differ_by(SimdLevel lo, SimdLevel hi) {
  std::vector<float> c1, c2;
  {
    SimdLevelGuard sg(lo);
    c1 = layer1_product(GemmAlgo::eigen);
  }
  {
    SimdLevelGuard sg(hi);
    c2 = layer1_product(GemmAlgo::eigen);
  }
  return compare(c1, c2).max_abs_delta;
}

ScenarioResult run_simd_level(const LabOptions& o) {
  ScenarioResult r;
  const SimdLevel hi = simd_level_available();
  if (hi == SimdLevel::scalar) {
    r.skipped = true;
    r.skip_reason = "skipped: no SIMD kernels in this build or CPU";
    return r;
  }
  // The two highest levels here: AVX2 vs AVX-512 on a CPU with AVX-512, else scalar vs AVX2
  // (with SIMD off, fast mode runs the canonical kernel where it would run Eigen).
  const SimdLevel lo = hi == SimdLevel::avx512 ? SimdLevel::avx2 : SimdLevel::scalar;
  r.compared = strf("final weights and test logits, %s vs %s kernels", simd_level_name(lo), simd_level_name(hi));
  std::vector<double> lp1, lp2, lf1, lf2;
  r.problem = compare(train_level(o, Mode::fast, lo, &lp1), train_level(o, Mode::fast, hi, &lp2));
  r.fix = compare(train_level(o, Mode::deterministic, lo, &lf1), train_level(o, Mode::deterministic, hi, &lf2));
  r.curves = four_curves(lp1, lp2, lf1, lf2);
  const double cost = eigen_levels_differ_by(lo, hi);
  r.note = strf("%s: fast mode's Eigen builds (or Eigen vs the canonical kernel) differ by up to %.3g on "
                "layer 1's product, and the autotuner may choose differently; deterministic mode runs the "
                "same fma chains at every level",
                r.problem.identical ? "not seen in training this time" : "seen", cost);
  TrainSpec t = default_spec(o);
  t.mode = Mode::fast;
  auto traced_at = [&](SimdLevel level) {
    SimdLevelGuard sg(level);
    return trace_run(t, o, kCulpritSteps, gemm_autotune_reset);
  };
  add_culprit(r, traced_at(lo), traced_at(hi));
  r.extra["levels"] = {simd_level_name(lo), simd_level_name(hi)};
  r.extra["eigen_product_max_abs_delta"] = cost;
  return r;
}

}  // namespace

Scenario autotune_scenario() {
  return {"autotune", "GEMM algorithm chosen by timing (benchmark mode) vs a pinned algorithm",
          "the autotuner's timings (fresh tuning per run, 1 thread)", false, run_autotune};
}

Scenario reduction_order_scenario() {
  return {"reduction-order", "the same numbers summed in another order, or by racing threads, vs the canonical order",
          "summation order: index order vs reversed", true, run_reduction_order};
}

Scenario thread_count_scenario() {
  return {"thread-count", "the same training with 1 and 2 threads: fast mode vs deterministic mode",
          "thread count 1 vs 2", false, run_thread_count};
}

Scenario simd_level_scenario() {
  return {"simd-level", "the same training on a CPU with and one without AVX-512 (or AVX2): fast vs deterministic",
          "the SIMD level of the kernels (the two highest this CPU has)", false, run_simd_level};
}

}  // namespace lockstep_cli::lab
