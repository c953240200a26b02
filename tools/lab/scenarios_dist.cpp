// world-size: data-parallel training at world size 1 vs 2 (ranks as threads of this process,
// tools::train_at_world_size), with per-rank BatchNorm vs synchronised BatchNorm.

#include <string>
#include <vector>

#include "harness.h"
#include "scenarios.h"
#include "train/distributed.h"

namespace lockstep_cli::lab {

using namespace lockstep;

namespace {

std::vector<double> as_double(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

// Identical when the final weights' SHA-256 and every step's loss agree; the delta is the
// largest loss difference (the weights themselves stay inside the dist run).
PairResult compare_runs(const tools::TrainResult& a, const tools::TrainResult& b) {
  PairResult p = compare(as_double(a.losses), as_double(b.losses));
  p.identical = p.identical && a.weights_sha256 == b.weights_sha256;
  return p;
}

// `lockstep train`'s recipe (784-256-128-10, AdamW 1e-3, weight decay 0.05, cosine over
// the steps), seed 42, on the lab's training images.
ScenarioResult run_world_size(const LabOptions& o) {
  tools::TrainConfig cfg;
  cfg.max_steps = cfg.epochs = lab_steps(o);  // enough epochs: the schedule spans max_steps
  cfg.batch_size = 128;  // the global batch: 4 chunks of 32 rows, 2 per rank at world 2
  cfg.seed = 42;
  const tools::TrainData data{lab_data(o).train, nullptr};
  struct Run {
    tools::TrainResult r;
    uint64_t bytes_moved;
  };
  auto run = [&](bool sync, int world) {
    tools::DistributedOptions d;
    d.sync_batchnorm = sync;
    const tools::DistributedResult dr = tools::train_at_world_size(world, cfg, data, d);
    return Run{dr.train, dr.bytes_moved};
  };
  const Run rp1 = run(false, 1), rp2 = run(false, 2), rf1 = run(true, 1), rf2 = run(true, 2);
  const tools::TrainResult &p1 = rp1.r, &p2 = rp2.r, &f1 = rf1.r, &f2 = rf2.r;
  ScenarioResult r;
  r.compared = "final weights (SHA-256) and every step's loss; max |d| over the losses";
  r.problem = compare_runs(p1, p2);
  r.fix = compare_runs(f1, f2);
  r.curves = {{"per-rank BatchNorm, world 1", true, as_double(p1.losses)},
              {"per-rank BatchNorm, world 2", true, as_double(p2.losses)},
              {"synchronised BatchNorm, world 1", false, as_double(f1.losses)},
              {"synchronised BatchNorm, world 2", false, as_double(f2.losses)}};
  const bool same_at_1 = p1.weights_sha256 == f1.weights_sha256;
  r.note = strf("at world 1 the two BatchNorms give %s weights; at world 2 per-rank statistics come from 64 of "
                "the 128 rows; hashes %.12s / %.12s (per-rank) and %.12s / %.12s (synced)",
                same_at_1 ? "the same" : "DIFFERENT", p1.weights_sha256.c_str(), p2.weights_sha256.c_str(),
                f1.weights_sha256.c_str(), f2.weights_sha256.c_str());
  r.extra["weights_sha256"] = {{"per_rank_world1", p1.weights_sha256},
                               {"per_rank_world2", p2.weights_sha256},
                               {"synced_world1", f1.weights_sha256},
                               {"synced_world2", f2.weights_sha256}};
  r.extra["bytes_per_step_world2"] =
      f2.steps > 0 ? static_cast<double>(rf2.bytes_moved) / static_cast<double>(f2.steps) : 0.0;
  return r;
}

}  // namespace

Scenario world_size_scenario() {
  return {"world-size", "data parallelism with per-rank BatchNorm vs synchronised BatchNorm (distributed/)",
          "the world size, 1 vs 2 ranks (threads), global batch 128", true, run_world_size};
}

}  // namespace lockstep_cli::lab
