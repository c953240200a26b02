// seed-variance and divergence-growth: how far apart runs drift, and from how little.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "base/parallel.h"
#include "data/mnist.h"
#include "harness.h"
#include "nn/linear.h"
#include "optim/early_stopping.h"
#include "scenarios.h"

namespace lockstep_cli::lab {

using namespace lockstep;

namespace {

// The study's data. Quick: the lab's subsets. Full: the first 50000 training images for
// training, the last 10000 for validation (early stopping), the 10000 test images.
struct StudyData {
  std::shared_ptr<const data::Dataset> train;
  Tensor val_x, val_y, test_x, test_y;
};

const StudyData& study_data(const LabOptions& o) {
  static StudyData d;
  static bool loaded = false;
  if (loaded) return d;
  if (o.quick) {
    const LabData& l = lab_data(o);
    d = {l.train, l.val_x, l.val_y, l.test_x, l.test_y};
  } else {
    lab_data(o);  // checks the files are there, with a clear message
    const std::string dir = o.data_dir.empty() ? data::kFashionMnistDir : o.data_dir;
    auto train = data::load_mnist(dir, data::MnistSplit::train, data::kFashionMnistNormalize);
    auto test = data::load_mnist(dir, data::MnistSplit::test, data::kFashionMnistNormalize);
    const int64_t n_train = std::min<int64_t>(50000, train->size() * 5 / 6);
    std::vector<int64_t> idx(static_cast<size_t>(n_train));
    for (int64_t i = 0; i < n_train; ++i) idx[static_cast<size_t>(i)] = i;
    d.train = std::make_shared<data::Subset>(train, idx);
    materialise(*train, n_train, train->size() - n_train, &d.val_x, &d.val_y);
    materialise(*test, 0, test->size(), &d.test_x, &d.test_y);
  }
  loaded = true;
  return d;
}

struct StudySize {
  int seeds;
  int64_t epochs, patience;
};
StudySize study_size(const LabOptions& o) {
  StudySize s = o.quick ? StudySize{4, 3, 1} : StudySize{16, 15, 3};
  if (o.seeds > 0) s.seeds = o.seeds;
  return s;
}

struct SeedRun {
  std::vector<float> values;  // final weights and test logits
  std::vector<double> losses;
  double test_accuracy = 0;
  int64_t epochs = 0;           // epochs trained
  int64_t best_val_epoch = 0;   // 1-based epoch of the lowest validation loss
  double final_train_loss = 0;  // mean step loss of the last epoch trained
};

// Trains up to `epochs` epochs from `seed` (initialisation, order and Dropout all follow it).
// Regularised: Dropout 0.2, AdamW weight decay 0.05, early stopping on the validation loss
// (best weights restored). Plain: none of them, all epochs.
SeedRun train_seed(const LabOptions& o, uint64_t seed, bool regularised) {
  const StudyData& d = study_data(o);
  const StudySize z = study_size(o);
  TrainSpec spec = default_spec(o);
  spec.seed = seed;
  spec.model.dropout = regularised ? 0.2 : 0.0;
  spec.weight_decay = regularised ? 0.05 : 0.0;
  spec.train_set = d.train;
  Session s(spec, o);
  optim::EarlyStopping es(optim::EarlyStoppingOptions().patience(z.patience).restore_best_weights(true));
  const int64_t per_epoch = s.trainer->batches_per_epoch();
  SeedRun r;
  double best = INFINITY;
  for (int64_t e = 0; e < z.epochs; ++e) {
    s.train_steps(per_epoch);
    ++r.epochs;
    double sum = 0;
    for (size_t i = s.losses.size() - static_cast<size_t>(per_epoch); i < s.losses.size(); ++i) sum += s.losses[i];
    r.final_train_loss = sum / static_cast<double>(per_epoch);
    ThreadsGuard tg(spec.threads);
    const double val = eval_loss(*s.model, d.val_x, d.val_y);
    if (val < best) best = val, r.best_val_epoch = e + 1;
    if (regularised && es.step(val, s.model.get())) break;
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

// Percentile bootstrap 95% interval of sd(b) / sd(a): each group resampled with replacement
// (10000 resamples, a fixed splitmix64 stream, so the interval is reproducible too).
std::pair<double, double> bootstrap_sd_ratio(const std::vector<double>& a, const std::vector<double>& b) {
  uint64_t state = 0x5EEDu;
  auto next = [&state] {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  };
  auto resample_sd = [&](const std::vector<double>& v) {
    std::vector<double> r(v.size());
    for (double& x : r) x = v[next() % v.size()];
    double m, sd;
    mean_std(r, &m, &sd);
    return sd;
  };
  std::vector<double> ratios;
  for (int i = 0; i < 10000; ++i) {
    const double sa = resample_sd(a), sb = resample_sd(b);
    if (sa > 0) ratios.push_back(sb / sa);
  }
  if (ratios.empty()) return {NAN, NAN};
  std::sort(ratios.begin(), ratios.end());
  auto at = [&](double q) { return ratios[static_cast<size_t>(q * static_cast<double>(ratios.size() - 1))]; };
  return {at(0.025), at(0.975)};
}

ScenarioResult run_seed_variance(const LabOptions& o) {
  const StudySize z = study_size(o);
  const int k = z.seeds;
  std::vector<double> plain, reg, plain_best, reg_epochs, plain_train_loss;
  SeedRun first, second;
  for (int i = 0; i < k; ++i) {
    const SeedRun pr = train_seed(o, 1000 + i, false);
    plain.push_back(pr.test_accuracy);
    plain_best.push_back(static_cast<double>(pr.best_val_epoch));
    plain_train_loss.push_back(pr.final_train_loss);
    SeedRun rr = train_seed(o, 1000 + i, true);
    reg.push_back(rr.test_accuracy);
    reg_epochs.push_back(static_cast<double>(rr.epochs));
    if (i == 0) first = rr;
    if (i == 1) second = rr;
    std::fprintf(stderr, "  seed-variance: seed %d/%d: test accuracy %.2f%% plain, %.2f%% regularised (%lld epochs)\n",
                 i + 1, k, 100 * pr.test_accuracy, 100 * rr.test_accuracy, static_cast<long long>(rr.epochs));
  }
  if (k < 2) second = train_seed(o, 1001, true);
  SeedRun again = train_seed(o, 1000, true);
  ScenarioResult r;
  r.compared = "final weights and test logits (regularised runs)";
  r.problem = compare(first.values, second.values);
  r.fix = compare(first.values, again.values);
  double pm, ps, rm, rs, bm, bs, em, esd;
  mean_std(plain, &pm, &ps);
  mean_std(reg, &rm, &rs);
  mean_std(plain_best, &bm, &bs);
  mean_std(reg_epochs, &em, &esd);
  const double ratio = ps > 0 ? rs / ps : NAN;
  const auto ci = bootstrap_sd_ratio(plain, reg);
  const bool excludes_one = ci.first > 1 || ci.second < 1;
  r.note = strf("test accuracy over %d seeds, %lld epochs at most: no regularisation %.2f%% +- %.2f, with dropout, "
                "weight decay and early stopping %.2f%% +- %.2f (mean +- sample sd); sd ratio (regularised / plain) "
                "%.2f, bootstrap 95%% interval [%.2f, %.2f]: %s; the plain runs' validation loss was lowest after "
                "epoch %.1f of %lld on average; the regularised runs stopped after %.1f epochs on average",
                k, static_cast<long long>(z.epochs), 100 * pm, 100 * ps, 100 * rm, 100 * rs, ratio, ci.first,
                ci.second,
                excludes_one
                    ? (ci.second < 1 ? "regularisation narrowed the spread" : "regularisation widened the spread")
                    : "no evidence either way (the interval contains 1)",
                bm, static_cast<long long>(z.epochs), em);
  r.curves = {{"no regularisation", true, {}}, {"dropout + weight decay + early stopping", false, {}}};
  for (double a : plain) r.curves[0].y.push_back(100 * a);
  for (double a : reg) r.curves[1].y.push_back(100 * a);
  r.strip = true;
  r.x_label = strf("%d seeds each, %lld epochs at most", k, static_cast<long long>(z.epochs));
  r.y_label = "test accuracy (%)";
  r.extra["seeds"] = k;
  r.extra["epochs"] = z.epochs;
  r.extra["train_images"] = study_data(o).train->size();
  r.extra["accuracy_plain"] = plain;
  r.extra["accuracy_regularised"] = reg;
  r.extra["plain_mean"] = pm, r.extra["plain_std"] = ps;
  r.extra["regularised_mean"] = rm, r.extra["regularised_std"] = rs;
  r.extra["sd_ratio_regularised_over_plain"] = ratio;
  r.extra["sd_ratio_ci95"] = {ci.first, ci.second};
  r.extra["plain_best_validation_epoch"] = plain_best;
  r.extra["plain_final_train_loss"] = plain_train_loss;
  r.extra["regularised_epochs"] = reg_epochs;
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
  return {"seed-variance",
          "test accuracy spread over K seeds (init, order, dropout), without and with regularisation (does "
          "regularisation make results less seed-dependent)",
          "the seed (1000 vs 1001)", true, run_seed_variance};
}

Scenario divergence_growth_scenario() {
  return {"divergence-growth", "a one-ulp change in one weight at step 0, followed step by step",
          "one output-layer weight moved by one ulp", true, run_divergence_growth};
}

}  // namespace lockstep_cli::lab
