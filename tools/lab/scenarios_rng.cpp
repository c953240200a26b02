// stateful-rng and augment-rng: random streams that depend on who drew before.
#include <memory>

#include "broken.h"
#include "harness.h"
#include "scenarios.h"

namespace lockstep_cli::lab {

using namespace lockstep;

namespace {

// Trains with Dropout masks from the global stateful generator (problem) or from lockstep's
// counter-based streams (fix). With extra_draw, the run draws one number from the global
// generator after its first step (as a "show a random example" line in a training script
// would).
std::vector<float> train_global(const LabOptions& o, bool global_dropout, bool extra_draw,
                                std::vector<double>* losses) {
  TrainSpec spec = default_spec(o);
  spec.model.global_rng_dropout = global_dropout;
  Session s(spec, o);
  manual_seed(spec.seed);
  for (int64_t i = 0; i < lab_steps(o); ++i) {
    s.step();
    if (extra_draw && i == 0) (void)global_uniform();
  }
  *losses = s.losses;
  return final_values(s, o);
}

ScenarioResult run_stateful_rng(const LabOptions& o) {
  ScenarioResult r;
  r.compared = "final weights and test logits";
  std::vector<double> lp1, lp2, lf1, lf2;
  r.problem = compare(train_global(o, true, false, &lp1), train_global(o, true, true, &lp2));
  r.fix = compare(train_global(o, false, false, &lf1), train_global(o, false, true, &lf2));
  r.curves = four_curves(lp1, lp2, lf1, lf2);
  r.note = "both runs call manual_seed(42); the extra draw shifts every later mask of the shared generator";
  return r;
}

// Trains with random crop + flip augmentation made by `workers` loader workers, from
// per-worker copies of one generator state (problem) or per-sample keys (fix).
std::vector<float> train_augmented(const LabOptions& o, bool shared_rng, int workers, std::vector<double>* losses) {
  TrainSpec spec = default_spec(o);
  spec.workers = workers;
  spec.loader_bugs.shared_worker_rng = shared_rng;
  spec.augment = true;  // RandomCrop(2) then RandomHorizontalFlip(0.5)
  Session s(spec, o);
  s.train_steps(lab_steps(o));
  *losses = s.losses;
  return final_values(s, o);
}

ScenarioResult run_augment_rng(const LabOptions& o) {
  ScenarioResult r;
  r.compared = "final weights and test logits";
  std::vector<double> lp1, lp2, lf1, lf2;
  r.problem = compare(train_augmented(o, true, 2, &lp1), train_augmented(o, true, 3, &lp2));
  r.fix = compare(train_augmented(o, false, 2, &lf1), train_augmented(o, false, 3, &lf2));
  r.curves = four_curves(lp1, lp2, lf1, lf2);
  r.note = "with copied generator states, worker w's j-th sample gets the same crop and flip draws as every "
           "other worker's j-th sample, and the draws change with the worker count";
  return r;
}

}  // namespace

Scenario stateful_rng_scenario() {
  return {"stateful-rng", "Dropout masks from one global stateful generator vs counter-based streams per layer",
          "one extra draw from the global generator after step 1", true, run_stateful_rng};
}

Scenario augment_rng_scenario() {
  return {"augment-rng", "workers augmenting with copies of one RNG state vs per-sample (seed, epoch, index) keys",
          "loader workers 2 vs 3", true, run_augment_rng};
}

}  // namespace lockstep_cli::lab
