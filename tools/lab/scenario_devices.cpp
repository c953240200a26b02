// cpu-vs-gpu: the lab's model trained on the CPU and on a CUDA device from the same seed,
// in fast mode (the problem: Eigen vs cuBLAS GEMMs, completion-order sums vs atomics) and in
// deterministic mode (the fix: every kernel has the CPU's order, so the same bits).
#include <stdexcept>

#include "base/mode.h"
#include "harness.h"
#include "kernels/memory.h"
#include "scenarios.h"

namespace lockstep_cli::lab {

using namespace lockstep;

namespace {

struct DeviceRun {
  std::vector<float> values;  // final weights, then the test logits in eval mode
  std::vector<double> losses;
};

// A standard lab run in `mode` with the model, batches and optimizer state on `dev`.
DeviceRun train_on(const LabOptions& o, Mode mode, Device dev) {
  TrainSpec spec = default_spec(o);
  spec.mode = mode, spec.device = dev;
  Session s(spec, o);
  s.train_steps(lab_steps(o));
  return {final_values(s, o), s.losses};
}

ScenarioResult run_cpu_vs_gpu(const LabOptions& o) {
  ScenarioResult r;
  if (!cuda_device_available()) {
    r.skipped = true;
    r.skip_reason = "skipped: no CUDA device";
    return r;
  }
  DeviceRun fc, fg, dc, dg;
  try {
    fc = train_on(o, Mode::fast, Device::cpu), fg = train_on(o, Mode::fast, Device::cuda);
    dc = train_on(o, Mode::deterministic, Device::cpu), dg = train_on(o, Mode::deterministic, Device::cuda);
  } catch (const std::runtime_error& e) {
    r.skipped = true;
    r.skip_reason = std::string("skipped: CUDA device present but ") + e.what();
    return r;
  }
  std::vector<tools::OpRecord> trace_cpu, trace_gpu;
  {
    TrainSpec t = default_spec(o);
    t.mode = Mode::fast;
    trace_cpu = trace_run(t, o, kCulpritSteps);
    t.device = Device::cuda;
    trace_gpu = trace_run(t, o, kCulpritSteps);
  }
  r.problem = compare(fc.values, fg.values);
  r.fix = compare(dc.values, dg.values);
  r.compared = "final weights and test logits after training, CPU vs CUDA";
  r.curves = {{"fast, CPU", true, fc.losses},
              {"fast, CUDA", true, fg.losses},
              {"deterministic, CPU", false, dc.losses},
              {"deterministic, CUDA", false, dg.losses}};
  r.note = r.problem.identical ? "seen: fast mode gave the same bits on both devices this time"
                               : "seen: fast mode (Eigen vs cuBLAS, thread sums vs atomics) differs across devices";
  add_culprit(r, trace_cpu, trace_gpu);
  return r;
}

}  // namespace

Scenario cpu_vs_gpu_scenario() {
  return {"cpu-vs-gpu", "the same training on the CPU and on a CUDA device: fast mode vs deterministic mode",
          "the device (CPU vs CUDA)", false, run_cpu_vs_gpu};
}

}  // namespace lockstep_cli::lab
