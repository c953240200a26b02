// init-seed and shuffle-seed: a seed taken from the clock or std::random_device, against
// an explicit one.
#include <chrono>
#include <random>

#include "harness.h"
#include "scenarios.h"

namespace lockstep_cli::lab {
namespace {

// What "unseeded" code does: a fresh seed from the OS entropy source mixed with the clock.
uint64_t unseeded_seed() {
  std::random_device rd;
  uint64_t s = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  return s ^ static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
}

ScenarioResult run_init_seed(const LabOptions& o) {
  const int64_t steps = lab_steps(o);
  auto run = [&](uint64_t init_seed, std::vector<double>* losses) {
    TrainSpec spec = default_spec(o);
    spec.init_seed = init_seed;
    Session s(spec, o);
    s.train_steps(steps);
    *losses = s.losses;
    return final_values(s, o);
  };
  ScenarioResult r;
  r.compared = "final weights and test logits";
  std::vector<double> lp1, lp2, lf1, lf2;
  const uint64_t u1 = unseeded_seed(), u2 = unseeded_seed();
  r.problem = compare(run(u1, &lp1), run(u2, &lp2));
  r.fix = compare(run(42, &lf1), run(42, &lf2));
  r.note = strf("unseeded runs drew seeds %016llx and %016llx", (unsigned long long)u1, (unsigned long long)u2);
  r.curves = four_curves(lp1, lp2, lf1, lf2);
  return r;
}

ScenarioResult run_shuffle_seed(const LabOptions& o) {
  const int64_t steps = lab_steps(o);
  auto run = [&](bool broken, std::vector<double>* losses) {
    TrainSpec spec = default_spec(o);
    spec.loader_bugs.unseeded_shuffle = broken;
    Session s(spec, o);
    s.train_steps(steps);
    *losses = s.losses;
    return final_values(s, o);
  };
  ScenarioResult r;
  r.compared = "final weights and test logits";
  std::vector<double> lp1, lp2, lf1, lf2;
  r.problem = compare(run(true, &lp1), run(true, &lp2));
  r.fix = compare(run(false, &lf1), run(false, &lf2));
  r.curves = four_curves(lp1, lp2, lf1, lf2);
  return r;
}

}  // namespace

Scenario init_seed_scenario() {
  return {"init-seed", "model initialised from an unseeded generator (random_device, clock) vs an explicit seed",
          "the initialisation seed, drawn afresh by each run", true, run_init_seed};
}

Scenario shuffle_seed_scenario() {
  return {"shuffle-seed", "data order shuffled with an unseeded generator vs the (seed, epoch) permutation",
          "the shuffle order, drawn afresh by each run", true, run_shuffle_seed};
}

}  // namespace lockstep_cli::lab
