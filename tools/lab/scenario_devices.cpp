// cpu-vs-gpu: the same model evaluated on the CPU and on a CUDA device, fast vs deterministic.
#include <stdexcept>

#include "core/autograd.h"
#include "core/mode.h"
#include "core/parallel.h"
#include "harness.h"
#include "kernels/memory.h"
#include "nn/nn.h"
#include "scenarios.h"

namespace lockstep_cli::lab {

using namespace lockstep;

namespace {

// The lab model's eval-mode forward written with ops on `dev`, its parameters copied there.
std::vector<float> forward_on(nn::Sequential& m, const Tensor& x_cpu, Device dev) {
  NoGradGuard ng;
  Tensor h = x_cpu.to(dev);
  for (size_t i = 0; i < m.size(); ++i) {
    nn::Module& l = *m[i];
    if (auto* lin = dynamic_cast<nn::Linear*>(&l)) {
      h = linear(h, lin->weight().to(dev), lin->bias().to(dev));
    } else if (auto* bn = dynamic_cast<nn::BatchNorm1d*>(&l)) {
      h = batch_norm(h, bn->running_mean().to(dev), bn->running_var().to(dev), bn->weight().to(dev),
                     bn->bias().to(dev), false, 0.1, 1e-5);
    } else if (dynamic_cast<nn::ReLU*>(&l)) {
      h = relu(h);
    }  // Dropout: identity in eval mode
  }
  return h.to(Device::cpu).contiguous().to_vector<float>();
}

ScenarioResult run_cpu_vs_gpu(const LabOptions& o) {
  ScenarioResult r;
  if (!cuda_device_available()) {
    r.skipped = true;
    r.skip_reason = "skipped: no CUDA device";
    return r;
  }
  TrainSpec spec = default_spec(o);
  Session s(spec, o);
  s.train_steps(lab_steps(o));
  s.model->eval();
  const Tensor& x = lab_data(o).test_x;
  ThreadsGuard tg(o.threads);
  try {
    auto pair = [&](Mode mode) {
      ModeGuard mg(mode);
      return compare(forward_on(*s.model, x, Device::cpu), forward_on(*s.model, x, Device::cuda));
    };
    r.problem = pair(Mode::fast);
    r.fix = pair(Mode::deterministic);
  } catch (const std::runtime_error& e) {
    r.skipped = true;
    r.skip_reason = std::string("skipped: CUDA device present but ") + e.what();
    return r;
  }
  r.compared = "test logits of the trained model, CPU vs CUDA";
  r.curves = {{"training loss (CPU)", false, s.losses}};
  r.note = r.problem.identical ? "seen: fast mode gave the same bits on both devices this time"
                               : "seen: fast mode (Eigen vs cuBLAS) differs across devices";
  return r;
}

}  // namespace

Scenario cpu_vs_gpu_scenario() {
  return {"cpu-vs-gpu", "the same model on the CPU and on a CUDA device: fast mode vs deterministic mode",
          "the device (CPU vs CUDA)", false, run_cpu_vs_gpu};
}

}  // namespace lockstep_cli::lab
