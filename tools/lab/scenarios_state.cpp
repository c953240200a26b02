// resume and lossy-save: what a saved run must keep to continue bit for bit.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

#include "harness.h"
#include "scenarios.h"
#include "serialize/checkpoint.h"
#include "serialize/safetensors.h"

namespace lockstep_cli::lab {

using namespace lockstep;

namespace {

enum class Save { none, weights_only, full_state, decimal_text, safetensors };

// Writes every float32 tensor of the state dict as decimal text, six significant digits
// (what "%g", many CSV and JSON dumps and hand-written loggers produce), and reads it back.
void text_round_trip(nn::Module& m, const std::string& path) {
  const nn::StateDict current = m.state_dict();  // items() refers into it: keep it alive
  {
    std::ofstream f(path);
    for (auto& [name, t] : current.items()) {
      if (t.dtype() != DType::f32) continue;
      f << name;
      for (float v : t.contiguous().to_vector<float>()) f << ' ' << strf("%g", v);
      f << '\n';
    }
    if (!f) throw std::runtime_error("[lab] cannot write " + path);
  }
  std::ifstream f(path);
  nn::StateDict sd;
  for (auto& [name, t] : current.items()) {
    if (t.dtype() != DType::f32) continue;
    std::string key;
    f >> key;
    if (key != name) throw std::runtime_error("[lab] " + path + ": expected key " + name + ", got " + key);
    std::vector<float> v(static_cast<size_t>(t.numel()));
    for (float& x : v) {
      std::string tok;
      f >> tok;
      x = std::strtof(tok.c_str(), nullptr);
    }
    sd.insert(name, Tensor::from_vector(v, t.shape()));
  }
  m.load_state_dict(sd, /*strict=*/false);
}

// Trains N steps; with a save mode other than none, saves after N/2 steps and continues:
//   weights_only / full_state: into a fresh session of the same configuration, loaded from
//     a weights file or a full checkpoint;
//   decimal_text / safetensors: in the same session, the weights replaced by what was read.
std::vector<float> train_saving(const LabOptions& o, Save mode, std::vector<double>* losses, double* reload_delta) {
  const int64_t n = lab_steps(o), half = n / 2;
  TrainSpec spec = default_spec(o);
  Session a(spec, o);
  if (mode == Save::none) {
    a.train_steps(n);
    *losses = a.losses;
    return final_values(a, o);
  }
  a.train_steps(half);
  const std::string dir = make_scratch_dir("save");
  const std::string path = dir + "/state";
  std::vector<float> before = flat_weights(*a.model);
  Session* cont = &a;
  std::unique_ptr<Session> b;
  try {
    if (mode == Save::weights_only || mode == Save::full_state) {
      serialize::TrainingState st = a.trainer->training_state();
      if (mode == Save::full_state)
        serialize::save_checkpoint(path, st);
      else
        serialize::save_state_dict(path, a.model->state_dict());
      // A new process would build everything afresh from the configuration.
      b = std::make_unique<Session>(spec, o);
      if (mode == Save::full_state) {
        serialize::TrainingState sb = b->trainer->training_state();
        serialize::load_checkpoint(path, sb);
        b->trainer->set_position(sb.step, sb.epoch);
      } else {
        serialize::load_weights(path, *b->model);
      }
      b->losses = a.losses;
      cont = b.get();
    } else if (mode == Save::decimal_text) {
      text_round_trip(*a.model, path);
    } else {
      serialize::save_state_dict(path, a.model->state_dict());
      serialize::load_weights(path, *a.model);
    }
  } catch (...) {
    remove_dir(dir);
    throw;
  }
  remove_dir(dir);
  if (reload_delta) *reload_delta = compare(before, flat_weights(*cont->model)).max_abs_delta;
  cont->train_steps(n - half);
  *losses = cont->losses;
  return final_values(*cont, o);
}

ScenarioResult run_resume(const LabOptions& o) {
  ScenarioResult r;
  r.compared = "final weights and test logits, straight run vs saved and resumed at the half-way step";
  std::vector<double> lp1, lp2, lf1, lf2;
  std::vector<float> straight = train_saving(o, Save::none, &lp1, nullptr);
  lf1 = lp1;
  r.problem = compare(straight, train_saving(o, Save::weights_only, &lp2, nullptr));
  r.fix = compare(straight, train_saving(o, Save::full_state, &lf2, nullptr));
  r.curves = four_curves(lp1, lp2, lf1, lf2);
  r.note = "weights only: the optimizer moments, Dropout steps and loader position restart from zero; the full "
           "checkpoint restores them all";
  return r;
}

ScenarioResult run_lossy_save(const LabOptions& o) {
  ScenarioResult r;
  r.compared = "final weights and test logits, never saved vs saved and reloaded at the half-way step";
  std::vector<double> lp1, lp2, lf1, lf2;
  double text_delta = 0, binary_delta = 0;
  std::vector<float> straight = train_saving(o, Save::none, &lp1, nullptr);
  lf1 = lp1;
  r.problem = compare(straight, train_saving(o, Save::decimal_text, &lp2, &text_delta));
  r.fix = compare(straight, train_saving(o, Save::safetensors, &lf2, &binary_delta));
  r.curves = four_curves(lp1, lp2, lf1, lf2);
  r.note = strf("reading back \"%%g\" text moved the weights by up to %.3g (safetensors: %.3g); training then "
                "carried the difference on",
                text_delta, binary_delta);
  r.extra["text_reload_max_abs_delta"] = text_delta;
  r.extra["binary_reload_max_abs_delta"] = binary_delta;
  return r;
}

}  // namespace

Scenario resume_scenario() {
  return {"resume", "resuming from the weights alone vs from the full training state",
          "the run is stopped and resumed half-way", true, run_resume};
}

Scenario lossy_save_scenario() {
  return {"lossy-save", "weights saved as decimal text vs exact binary (safetensors)",
          "the weights are saved and read back half-way", true, run_lossy_save};
}

}  // namespace lockstep_cli::lab
