// The lab's culprit lines: the problem's two runs traced op by op (tools/train/op_trace.h)
// and compared, so a report names the op where the bits first parted, not just the fact.
#include <sstream>

#include "harness.h"

namespace lockstep_cli::lab {

using namespace lockstep;

std::vector<tools::OpRecord> trace_run(const TrainSpec& spec, const LabOptions& o, int64_t steps,
                                       const std::function<void()>& before) {
  if (before) before();
  tools::OpTracer tracer({"", true, true, "", steps});
  Session s(spec, o);
  tools::OpTracer::Install on(&tracer);
  for (int64_t i = 0; i < steps; ++i) {
    s.step();
    tracer.end_step(i + 1);
  }
  return tracer.records();
}

void add_culprit(ScenarioResult& r, const std::vector<tools::OpRecord>& a, const std::vector<tools::OpRecord>& b) {
  const tools::CulpritReport rep = tools::find_culprit(a, b);
  std::string element;  // "first differing element: ... (N ulp)" without the indent
  std::istringstream lines(rep.text);
  for (std::string line; std::getline(lines, line);)
    if (line.rfind("  first differing element", 0) == 0) element = line.substr(2);
  r.extra["culprit"] = rep.found ? nlohmann::json(rep.summary) : nlohmann::json(nullptr);
  r.extra["culprit_report"] = rep.text;
  const std::string steps = std::to_string(kCulpritSteps);
  if (rep.found)
    r.note += "; culprit op (two more runs of the problem, traced op by op): " + rep.summary +
              (element.empty() ? "" : ", " + element);
  else if (rep.identical)
    r.note +=
        "; two more runs of the problem, traced op by op for " + steps + " steps, matched (no culprit op this time)";
  else
    r.note += "; two more runs of the problem, traced op by op for " + steps +
              " steps: " + rep.text.substr(0, rep.text.find('\n'));
}

}  // namespace lockstep_cli::lab
