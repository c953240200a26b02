// maxpool-ties: max pooling's backward written as a scatter (each window adds its gradient
// into the input element it chose, threads racing, float atomics) against lockstep's gather
// (each input element sums the windows that chose it, in window order; kernels/pool2d.h).
#include <atomic>
#include <cmath>
#include <set>
#include <thread>

#include "base/parallel.h"
#include "core/autograd.h"
#include "core/ops.h"
#include "core/random.h"
#include "harness.h"
#include "scenarios.h"

namespace lockstep_cli::lab {

using namespace lockstep;

namespace {

// After a ReLU: many exact ties (zeros, and multiples of 1/4), and 3x3 windows with stride 1
// overlap, so one element is often the choice of several windows.
constexpr int64_t kN = 32, kC = 16, kH = 28, kW = 28;

Tensor tied_input() {
  Tensor x = Tensor::empty({kN, kC, kH, kW});
  fill_normal(x, 0.0, 1.0, 7, stream_id("lab:maxpool-ties:x"));
  std::vector<float> v = x.to_vector<float>();
  for (float& e : v) e = std::max(0.0f, std::round(e * 4.0f) / 4.0f);
  return Tensor::from_vector(v, x.shape());
}

Tensor upstream_grad(const Shape& s) {
  Tensor g = Tensor::empty(s);
  fill_normal(g, 0.0, 1.0, 7, stream_id("lab:maxpool-ties:dy"));
  std::vector<float> v = g.to_vector<float>();
  for (size_t i = 0; i < v.size(); i += 5) v[i] *= 1000.0f;  // mixed magnitudes: rounding shows
  return Tensor::from_vector(v, s);
}

// The scatter backward: threads claim output rows from a shared counter and add each window's
// dy into dx[its index] with a compare-and-swap loop (a float atomicAdd).
std::vector<float> scatter_backward(const std::vector<float>& dy, const std::vector<int64_t>& idx, int64_t OH,
                                    int64_t OW, int threads) {
  const int64_t planes = kN * kC, rows = planes * OH;
  std::vector<std::atomic<float>> dx(static_cast<size_t>(planes * kH * kW));
  for (auto& a : dx) a.store(0.0f);
  std::atomic<int64_t> next{0};
  auto work = [&] {
    for (int64_t r; (r = next.fetch_add(1)) < rows;) {
      const int64_t p = r / OH;
      for (int64_t o = r * OW; o < (r + 1) * OW; ++o) {
        std::atomic<float>& t = dx[static_cast<size_t>(p * kH * kW + idx[static_cast<size_t>(o)])];
        float old = t.load();
        while (!t.compare_exchange_weak(old, old + dy[static_cast<size_t>(o)])) {
        }
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  std::vector<float> out(dx.size());
  for (size_t i = 0; i < out.size(); ++i) out[i] = dx[i].load();
  return out;
}

// lockstep's backward (the gather) with `threads` threads.
std::vector<float> gather_backward(const Tensor& x_in, const Tensor& dy, int threads) {
  ThreadsGuard tg(threads);
  Tensor x = x_in.clone();
  x.set_requires_grad();
  Tensor y = max_pool2d(x, {3, 3}, {1, 1}, {1, 1});
  sum(mul(y, dy)).backward();
  return x.grad().to_vector<float>();
}

// The indices a "last maximum wins" rule (>= instead of >) would pick.
std::vector<int64_t> last_max_indices(const std::vector<float>& x, int64_t OH, int64_t OW) {
  std::vector<int64_t> idx;
  for (int64_t p = 0; p < kN * kC; ++p)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        float best = -INFINITY;
        int64_t bi = 0;
        for (int64_t h = std::max<int64_t>(0, oh - 1); h < std::min(kH, oh + 2); ++h)
          for (int64_t w = std::max<int64_t>(0, ow - 1); w < std::min(kW, ow + 2); ++w) {
            const float v = x[static_cast<size_t>((p * kH + h) * kW + w)];
            if (v >= best) best = v, bi = h * kW + w;
          }
        idx.push_back(bi);
      }
  return idx;
}

ScenarioResult run_maxpool_ties(const LabOptions& o) {
  ModeGuard mode(Mode::deterministic);
  const Tensor x = tied_input();
  auto [y, idx_t] = max_pool2d_with_indices(x, {3, 3}, {1, 1}, {1, 1});
  const int64_t OH = y.size(2), OW = y.size(3);
  const Tensor dy = upstream_grad(y.shape());
  const std::vector<float> g = dy.to_vector<float>();
  const std::vector<int64_t> idx = idx_t.to_vector<int64_t>();
  const int threads = std::max(4, o.threads);

  ScenarioResult r;
  r.compared = "the input gradient of a 3x3 stride-1 max pool over 32x16x28x28 post-ReLU values";
  const std::vector<float> s1 = scatter_backward(g, idx, OH, OW, threads);
  const std::vector<float> s2 = scatter_backward(g, idx, OH, OW, threads);
  r.problem = compare(s1, s2);
  const std::vector<float> f1 = gather_backward(x, dy, 1), f2 = gather_backward(x, dy, std::max(2, o.threads));
  r.fix = compare(f1, f2);
  // More repeats of the race: how many distinct gradients, and how far from the gather's.
  const int repeats = o.quick ? 6 : 12;
  std::set<std::vector<float>> distinct{s1, s2};
  std::vector<double> scatter_curve, gather_curve;
  for (int k = 0; k < repeats; ++k) {
    std::vector<float> s = k < 2 ? (k ? s2 : s1) : scatter_backward(g, idx, OH, OW, threads);
    distinct.insert(s);
    scatter_curve.push_back(compare(s, f1).max_abs_delta);
    gather_curve.push_back(compare(gather_backward(x, dy, k % 2 ? 1 : 2), f1).max_abs_delta);
  }
  r.curves = {{"scatter with atomics, " + std::to_string(threads) + " threads racing", true, scatter_curve},
              {"lockstep's gather, 1 or 2 threads", false, gather_curve}};
  r.x_label = "repeat";
  r.y_label = "max |dx - gather's dx|";
  // Ties: a "last maximum" rule routes the gradient to other elements (a different, also
  // deterministic, answer: not PyTorch's).
  int64_t ties = 0;
  const std::vector<float> xv = x.to_vector<float>();
  const std::vector<int64_t> last = last_max_indices(xv, OH, OW);
  for (size_t i = 0; i < idx.size(); ++i) ties += last[i] != idx[i];
  const PairResult tie_rule = compare(f1, scatter_backward(g, last, OH, OW, 1));
  r.note = strf("%s: the racing scatter gave %zu distinct gradients in %d runs (%d threads; it depends on timing); "
                "the gather is identical for 1 and 2 threads. %lld of %zu windows hold a tie that a last-maximum "
                "rule resolves differently (max |d| %.3g in dx)",
                r.problem.identical && distinct.size() == 1 ? "not seen" : "seen", distinct.size(), repeats, threads,
                static_cast<long long>(ties), idx.size(), tie_rule.max_abs_delta);
  r.extra["scatter_distinct_results"] = distinct.size();
  r.extra["scatter_runs"] = repeats;
  r.extra["windows_with_other_last_max"] = ties;
  r.extra["last_max_rule_max_abs_delta"] = tie_rule.max_abs_delta;
  return r;
}

}  // namespace

Scenario maxpool_ties_scenario() {
  return {"maxpool-ties",
          "max pooling's backward as a racing scatter (atomics) vs a gather; ties go to the first maximum",
          "the order racing threads add overlapping windows' gradients", false, run_maxpool_ties};
}

}  // namespace lockstep_cli::lab
