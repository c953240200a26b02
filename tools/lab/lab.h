// `lockstep lab`: the scenario registry and the result types every scenario fills in.
//
// A scenario runs the same experiment twice as the *problem* (a common source of
// nondeterminism left in) and twice as the *fix* (the lockstep way), and compares the two
// runs of each pair bit for bit. The promise checked by `lockstep lab --check`:
//   - every fix gives identical bits;
//   - every problem whose difference is *inherent* (not left to timing) shows a difference.
// Problems whose difference is only *likely* (threads racing, timing-driven choices) report
// what was seen without failing either way.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lockstep_cli::lab {

// The lab's settings (flags of `lockstep lab`).
struct LabOptions {
  bool quick = false;
  int seeds = 0;  // seed-variance's K; 0: 4 with --quick, 16 otherwise
  int threads = 2;
  std::string data_dir;
};

// One pair of runs, compared.
struct PairResult {
  bool identical = false;    // every compared value has the same bits in both runs
  double max_abs_delta = 0;  // largest |a - b| over the compared values (inf if a NaN differs)
};

// A curve for the scenario's plot: y per step (or per point of whatever the x axis is).
struct Series {
  std::string label;
  bool problem = false;  // drawn in the problem's colours
  std::vector<double> y;
};

struct ScenarioResult {
  bool skipped = false;
  std::string skip_reason;
  PairResult problem, fix;
  std::string compared;  // what was compared, e.g. "final weights and test logits"
  std::string note;      // what was seen beyond the two numbers (one or two sentences)
  // The plot: by default the loss curves of the problem's and the fix's two runs.
  std::vector<Series> curves;
  std::string x_label = "training step", y_label = "training loss";
  bool log_y = false;
  // strip: each Series is one category on the x axis and its y are points (one per seed),
  // drawn with the mean and +-1 sd; x_label then names the categories' axis.
  bool strip = false;
  nlohmann::json extra = nlohmann::json::object();  // scenario-specific numbers for report.json
};

struct Scenario {
  std::string name;
  std::string description;  // one line: the source of nondeterminism
  std::string changes;      // what changes between the two runs of the problem
  bool inherent = true;     // the problem's difference is certain, not left to timing
  std::function<ScenarioResult(const LabOptions&)> run;
};

// All scenarios in the order the lab runs them.
const std::vector<Scenario>& scenarios();
const Scenario* find_scenario(const std::string& name);

// True when the result keeps the lab's promise for this scenario (see the top of the file).
inline bool scenario_ok(const Scenario& s, const ScenarioResult& r) {
  if (r.skipped) return true;
  return r.fix.identical && (!s.inherent || !r.problem.identical);
}

}  // namespace lockstep_cli::lab
