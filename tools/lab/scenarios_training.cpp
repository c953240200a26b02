// seed-variance and divergence-growth: how far apart runs drift, and from how little.
#include <cmath>

#include "base/parallel.h"
#include "harness.h"
#include "nn/linear.h"
#include "optim/early_stopping.h"
#include "scenarios.h"

namespace lockstep_cli::lab {

using namespace lockstep;

namespace {

struct SeedRun {
  std::vector<float> values;  // final weights and test logits
  std::vector<double> losses;
  double test_accuracy = 0;
  int64_t epochs = 0;
};

// Trains `epochs` epochs from `seed` (initialisation, order and Dropout all follow it).
// Regularised: Dropout 0.2, AdamW weight decay 0.05, early stopping on the validation loss
// (patience 1, best weights restored). Plain: none of them.
SeedRun train_seed(const LabOptions& o, uint64_t seed, bool regularised) {
  TrainSpec spec = default_spec(o);
  spec.seed = seed;
  spec.model.dropout = regularised ? 0.2 : 0.0;
  spec.weight_decay = regularised ? 0.05 : 0.0;
  Session s(spec, o);
  const LabData& d = lab_data(o);
  optim::EarlyStopping es(optim::EarlyStoppingOptions().patience(1).restore_best_weights(true));
  const int64_t epochs = o.quick ? 3 : 5, per_epoch = s.trainer->batches_per_epoch();
  SeedRun r;
  for (int64_t e = 0; e < epochs; ++e) {
    s.train_steps(per_epoch);
    ++r.epochs;
    if (regularised) {
      ThreadsGuard tg(spec.threads);
      if (es.step(eval_loss(*s.model, d.val_x, d.val_y), s.model.get())) break;
    }
  }
  {
    ThreadsGuard tg(spec.threads);
    r.test_accuracy = accuracy(*s.model, d.test_x, d.test_y);
  }
  r.values = final_values(s, o);
  r.losses = s.losses;
  return r;
}

void mean_std(const std::vector<double>& v, double* mean, double* sd) {
  double m = 0, q = 0;
  for (double x : v) m += x;
  m /= static_cast<double>(v.size());
  for (double x : v) q += (x - m) * (x - m);
  *mean = m;
  *sd = v.size() > 1 ? std::sqrt(q / static_cast<double>(v.size() - 1)) : 0.0;
}

ScenarioResult run_seed_variance(const LabOptions& o) {
  const int k = o.seeds > 0 ? o.seeds : (o.quick ? 3 : 5);
  std::vector<double> plain, reg;
  SeedRun first, second;
  for (int i = 0; i < k; ++i) {
    plain.push_back(train_seed(o, 1000 + i, false).test_accuracy);
    SeedRun rr = train_seed(o, 1000 + i, true);
    reg.push_back(rr.test_accuracy);
    if (i == 0) first = rr;
    if (i == 1) second = rr;
  }
  if (k < 2) second = train_seed(o, 1001, true);
  SeedRun again = train_seed(o, 1000, true);
  ScenarioResult r;
  r.compared = "final weights and test logits (regularised runs)";
  r.problem = compare(first.values, second.values);
  r.fix = compare(first.values, again.values);
  r.curves = four_curves(first.losses, second.losses, first.losses, again.losses);
  double pm, ps, rm, rs;
  mean_std(plain, &pm, &ps);
  mean_std(reg, &rm, &rs);
  r.note = strf("test accuracy over %d seeds: no regularisation %.2f%% +- %.2f, with dropout, weight decay and "
                "early stopping %.2f%% +- %.2f (mean +- sample std)",
                k, 100 * pm, 100 * ps, 100 * rm, 100 * rs);
  r.extra["seeds"] = k;
  r.extra["accuracy_plain"] = plain;
  r.extra["accuracy_regularised"] = reg;
  r.extra["plain_mean"] = pm, r.extra["plain_std"] = ps;
  r.extra["regularised_mean"] = rm, r.extra["regularised_std"] = rs;
  return r;
}

// Two runs in lockstep, one with one weight moved by one ulp before training (when nudge); *growth gets max |dw| after each step (the first entry: before training).
PairResult diverge(const LabOptions& o, bool nudge, std::vector<double>* growth) {
  TrainSpec spec = default_spec(o);
  Session a(spec, o), b(spec, o);
  if (nudge) {
    // The output layer's first weight: every logit of class 0 reads it. (A first-layer weight
    // on a border pixel, which is nearly constant, can have its ulp absorbed by rounding.)
    float* w = dynamic_cast<nn::Linear&>(*(*b.model)[b.model->size() - 1]).weight().data<float>();
    w[0] = std::nextafter(w[0], INFINITY);
  }
  growth->push_back(compare(flat_weights(*a.model), flat_weights(*b.model)).max_abs_delta);
  for (int64_t i = 0; i < lab_steps(o); ++i) {
    a.step(), b.step();
    growth->push_back(compare(flat_weights(*a.model), flat_weights(*b.model)).max_abs_delta);
  }
  return compare(final_values(a, o), final_values(b, o));
}

ScenarioResult run_divergence_growth(const LabOptions& o) {
  ScenarioResult r;
  r.compared = "final weights and test logits";
  std::vector<double> gp, gf;
  r.problem = diverge(o, true, &gp);
  r.fix = diverge(o, false, &gf);
  r.curves = {{"one output weight moved by one ulp at step 0", true, gp}, {"no change", false, gf}};
  r.y_label = "max |dw| between the two runs";
  r.log_y = true;
  r.note = strf("max |dw|: %.3g at step 0, %.3g after 1 step, %.3g after %zu steps", gp.front(), gp.at(1), gp.back(),
                gp.size() - 1);
  r.extra["max_abs_dw_per_step"] = gp;
  return r;
}

}  // namespace

Scenario seed_variance_scenario() {
  return {"seed-variance", "test accuracy spread over K seeds (init, order, dropout), without and with regularisation",
          "the seed (1000 vs 1001)", true, run_seed_variance};
}

Scenario divergence_growth_scenario() {
  return {"divergence-growth", "a one-ulp change in one weight at step 0, followed step by step",
          "one output-layer weight moved by one ulp", true, run_divergence_growth};
}

}  // namespace lockstep_cli::lab
