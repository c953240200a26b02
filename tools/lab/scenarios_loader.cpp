// loader-workers: batches handed out in the order workers finish them.
#include <chrono>
#include <thread>

#include "harness.h"
#include "scenarios.h"

namespace lockstep_cli::lab {

using namespace lockstep;

namespace {

// Trains with `workers` loader workers delivering in completion order (problem) or in index
// order (fix). Every fourth batch takes 3 ms longer to make, as uneven reads do; the same
// delays are applied to the fix, which delivers in order regardless.
std::vector<float> train_workers(const LabOptions& o, bool completion_order, int workers,
                                 std::vector<double>* losses) {
  TrainSpec spec = default_spec(o);
  spec.loader.num_workers = workers;
  spec.loader.broken_completion_order = completion_order;
  spec.loader.test_before_batch = [](int64_t k) {
    if (k % 4 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(3));
  };
  Session s(spec, o);
  s.train_steps(lab_steps(o));
  *losses = s.losses;
  return final_values(s, o);
}

ScenarioResult run_loader_workers(const LabOptions& o) {
  ScenarioResult r;
  r.compared = "final weights and test logits";
  std::vector<double> lp1, lp2, lf1, lf2;
  r.problem = compare(train_workers(o, true, 1, &lp1), train_workers(o, true, 3, &lp2));
  r.fix = compare(train_workers(o, false, 1, &lf1), train_workers(o, false, 3, &lf2));
  r.curves = four_curves(lp1, lp2, lf1, lf2);
  r.note = r.problem.identical ? "seen: completion order happened to match index order this time"
                               : "seen: the batch order changed with the workers' timing";
  return r;
}

}  // namespace

Scenario loader_workers_scenario() {
  return {"loader-workers", "batches delivered in worker completion order vs in index order",
          "loader workers 1 vs 3 (every 4th batch is slow to make)", false, run_loader_workers};
}

}  // namespace lockstep_cli::lab
