// dropout-eval, batchnorm-eval and batch-invariance: what evaluation depends on.
#include <algorithm>

#include "base/mode.h"
#include "base/parallel.h"
#include "harness.h"
#include "nn/batchnorm.h"
#include "scenarios.h"

namespace lockstep_cli::lab {

using namespace lockstep;

namespace {

// Trains for the standard number of steps and evaluates on the test set every 5 steps, in
// batches of eval_batch, with the model in eval mode (fix) or left in train mode (problem).
// Returns the final weights and final test logits; *curve gets the test loss of each
// evaluation (mean cross-entropy of the logits as evaluated).
std::vector<float> train_and_evaluate(const LabOptions& o, const ModelSpec& ms, bool use_eval, int64_t eval_batch,
                                      std::vector<double>* curve) {
  TrainSpec spec = default_spec(o);
  spec.model = ms;
  Session s(spec, o);
  const LabData& d = lab_data(o);
  auto evaluate = [&] {
    ThreadsGuard tg(spec.threads);
    if (use_eval) s.model->eval();
    std::vector<float> l = logits_of(*s.model, d.test_x, eval_batch);
    s.model->train();
    Tensor logits = Tensor::from_vector(l, {d.test_x.size(0), 10});
    curve->push_back(cross_entropy(logits, d.test_y).item());
    return l;
  };
  std::vector<float> last;
  for (int64_t i = 0; i < lab_steps(o); ++i) {
    s.step();
    if ((i + 1) % 5 == 0) last = evaluate();
  }
  return concat(flat_weights(*s.model), last);
}

ScenarioResult eval_scenario(const LabOptions& o, const ModelSpec& ms) {
  ScenarioResult r;
  r.compared = "final weights and buffers, and the last evaluation's test logits";
  r.x_label = "evaluation (every 5 training steps)";
  r.y_label = "test loss as evaluated";
  std::vector<double> cp1, cp2, cf1, cf2;
  r.problem = compare(train_and_evaluate(o, ms, false, 256, &cp1), train_and_evaluate(o, ms, false, 64, &cp2));
  r.fix = compare(train_and_evaluate(o, ms, true, 256, &cf1), train_and_evaluate(o, ms, true, 64, &cf2));
  r.curves = four_curves(cp1, cp2, cf1, cf2);
  return r;
}

ScenarioResult run_dropout_eval(const LabOptions& o) {
  ModelSpec ms;
  ms.batchnorm = false;  // Dropout alone, so BatchNorm's own effect stays out of this one
  ScenarioResult r = eval_scenario(o, ms);
  // The same trained model evaluated twice in train mode: two different answers.
  TrainSpec spec = default_spec(o);
  spec.model = ms;
  Session s(spec, o);
  s.train_steps(lab_steps(o));
  ThreadsGuard tg(spec.threads);
  const LabData& d = lab_data(o);
  PairResult twice = compare(logits_of(*s.model, d.test_x, 256), logits_of(*s.model, d.test_x, 256));
  r.note = strf("one model evaluated twice in train mode: %s (max |d| %.3g); each train-mode evaluation also "
                "advances the Dropout streams that later training steps draw from",
                twice.identical ? "identical" : "different logits", twice.max_abs_delta);
  r.extra["train_mode_twice_max_abs_delta"] = twice.max_abs_delta;
  return r;
}

ScenarioResult run_batchnorm_eval(const LabOptions& o) {
  ModelSpec ms;
  ms.dropout = 0.0;  // BatchNorm alone
  ScenarioResult r = eval_scenario(o, ms);
  // One evaluation pass in train mode, and what it does to the running statistics.
  TrainSpec spec = default_spec(o);
  spec.model = ms;
  Session s(spec, o);
  s.train_steps(lab_steps(o));
  ThreadsGuard tg(spec.threads);
  auto& bn = dynamic_cast<nn::BatchNorm1d&>(*(*s.model)[1]);
  std::vector<float> before = bn.running_mean().to_vector<float>();
  logits_of(*s.model, lab_data(o).test_x, 256);
  PairResult moved = compare(before, bn.running_mean().to_vector<float>());
  r.note = strf("one train-mode evaluation pass moved the first BatchNorm's running_mean by up to %.3g "
                "(silently: nothing was trained); in train mode a sample's output depends on its batch",
                moved.max_abs_delta);
  r.extra["running_mean_moved_by"] = moved.max_abs_delta;
  return r;
}

// Logits of the first `probe` test samples alone (batch 1), then inside batches of each
// size in `sizes` (batch b holds test samples 0 .. b-1, so the probes that fit come first);
// *curve gets max |d| against alone for each size. Returns the pair: alone vs inside, over
// all sizes.
PairResult batch_compare(const LabOptions& o, nn::Module& m, Mode mode, const std::vector<int64_t>& sizes,
                         std::vector<double>* curve) {
  ModeGuard mg(mode);
  ThreadsGuard tg(o.threads);
  const int64_t probe = 8;
  const Tensor& x = lab_data(o).test_x;
  std::vector<float> alone;
  for (int64_t i = 0; i < probe; ++i) {
    Tensor xi = Tensor::from_vector(std::vector<float>(x.data<float>() + i * 784, x.data<float>() + (i + 1) * 784),
                                    {1, 784});
    auto v = logits_of(m, xi, 1);
    alone.insert(alone.end(), v.begin(), v.end());
  }
  std::vector<float> rep, inside;
  for (int64_t b : sizes) {
    Tensor xb = Tensor::from_vector(std::vector<float>(x.data<float>(), x.data<float>() + b * 784), {b, 784});
    // The probe samples that fit in this batch: rows 0 .. min(b, probe) - 1.
    const size_t k = static_cast<size_t>(std::min(b, probe) * 10);
    std::vector<float> v = logits_of(m, xb, b), a(alone.begin(), alone.begin() + k);
    v.resize(k);
    curve->push_back(compare(a, v).max_abs_delta);
    rep.insert(rep.end(), a.begin(), a.end());
    inside.insert(inside.end(), v.begin(), v.end());
  }
  return compare(rep, inside);
}

ScenarioResult run_batch_invariance(const LabOptions& o) {
  TrainSpec spec = default_spec(o);
  Session s(spec, o);
  s.train_steps(lab_steps(o));
  s.model->eval();
  const std::vector<int64_t> sizes = {2, 3, 16, 64, 100, 256, 512};
  ScenarioResult r;
  r.compared = "logits of 8 test samples alone vs inside batches of 2, 3, 16, 64, 100, 256 and 512";
  r.x_label = "batch size (2, 3, 16, 64, 100, 256, 512)";
  r.y_label = "max |d| of the samples' logits vs alone";
  std::vector<double> cp, cf;
  r.problem = batch_compare(o, *s.model, Mode::fast, sizes, &cp);
  r.fix = batch_compare(o, *s.model, Mode::deterministic, sizes, &cf);
  r.curves = {{"fast mode", true, cp}, {"deterministic mode", false, cf}};
  int differing = 0;
  for (double v : cp) differing += v != 0;
  r.note = strf("fast mode: the logits changed with the batch size for %d of %zu sizes (library GEMM blocking "
                "and the autotuner's per-shape choice depend on M)",
                differing, sizes.size());
  r.extra["fast_sizes_differing"] = differing;
  return r;
}

}  // namespace

Scenario dropout_eval_scenario() {
  return {"dropout-eval", "evaluating with Dropout still in train mode vs model.eval()",
          "evaluation batch size 256 vs 64 (so a different number of Dropout calls)", true, run_dropout_eval};
}

Scenario batchnorm_eval_scenario() {
  return {"batchnorm-eval", "evaluating BatchNorm in train mode (batch statistics, running stats updated) vs eval()",
          "evaluation batch size 256 vs 64", true, run_batchnorm_eval};
}

Scenario batch_invariance_scenario() {
  return {"batch-invariance", "a sample's logits alone vs inside batches of other sizes (fast vs deterministic)",
          "the batch the sample is evaluated in", false, run_batch_invariance};
}

}  // namespace lockstep_cli::lab
