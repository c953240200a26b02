// loaded-model: "my model predicts differently after loading". A model trained in this
// process is saved, and a new process (`lockstep lab-predict`, a hidden subcommand run as a
// child) loads it and computes the test logits; they are compared with the logits of the
// model that never left memory. Three common problems, each on its own:
//   - BatchNorm buffers left out: only the parameters are saved (named_parameters), the
//     loader is lenient (strict = false), so the running statistics keep their initial values;
//   - eval mode forgotten after loading: BatchNorm normalises with batch statistics and
//     Dropout stays on;
//   - a lossy format: weights kept as bfloat16 (rounded to nearest even, stored in a float32
//     container), as a half-precision export does.
// The fix: the whole state dict in float32 and eval() after loading: identical logits.
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <stdexcept>

#include "base/mode.h"
#include "base/parallel.h"
#include "commands.h"
#include "harness.h"
#include "nn/models.h"
#include "scenarios.h"
#include "serialize/safetensors.h"

namespace lockstep_cli::lab {

using namespace lockstep;

namespace {

constexpr int64_t kPredictBatch = 128;

// x rounded to bfloat16 (the upper 16 bits, round to nearest even), kept in a float.
float round_bf16(float x) {
  if (!std::isfinite(x)) return x;
  uint32_t u;
  std::memcpy(&u, &x, 4);
  u = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
  std::memcpy(&x, &u, 4);
  return x;
}

// Runs `lockstep lab-predict` in a child process; returns its logits.
std::vector<float> predict_in_child(const std::string& model, const std::string& input, const std::string& out,
                                    bool eval, int threads) {
  std::vector<std::string> args = {"lockstep", "lab-predict", "--model", model,       "--input",
                                   input,      "--out",       out,       "--threads", std::to_string(threads)};
  if (!eval) args.push_back("--train-mode");
  std::fflush(stdout), std::fflush(stderr);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("[lab] loaded-model: fork failed: " + std::string(std::strerror(errno)));
  if (pid == 0) {
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv("/proc/self/exe", argv.data());
    std::fprintf(stderr, "[lab] loaded-model: cannot run /proc/self/exe: %s\n", std::strerror(errno));
    ::_exit(127);
  }
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error("[lab] loaded-model: `lockstep lab-predict` failed (status " + std::to_string(status) +
                             ")");
  return serialize::load_safetensors(out).tensors.at("logits").to_vector<float>();
}

// Per test image: max |d| over its 10 logits; and how many images change their argmax.
std::vector<double> per_row_delta(const std::vector<float>& a, const std::vector<float>& b, int64_t* changed) {
  std::vector<double> out;
  *changed = 0;
  for (size_t r = 0; r + 10 <= a.size() && r + 10 <= b.size(); r += 10) {
    double d = 0;
    size_t ba = r, bb = r;
    for (size_t c = r; c < r + 10; ++c) {
      d = std::max(d, std::fabs(double(a[c]) - double(b[c])));
      if (a[c] > a[ba]) ba = c;
      if (b[c] > b[bb]) bb = c;
    }
    out.push_back(d);
    *changed += ba != bb;
  }
  return out;
}

ScenarioResult run_loaded_model(const LabOptions& o) {
  TrainSpec spec = default_spec(o);
  Session s(spec, o);
  s.train_steps(lab_steps(o));
  const LabData& d = lab_data(o);
  std::vector<float> reference;
  {
    ThreadsGuard tg(spec.threads);
    s.model->eval();
    reference = logits_of(*s.model, d.test_x, kPredictBatch);
    s.model->train();
  }
  const std::string dir = make_scratch_dir("loaded");
  struct Variant {
    std::string label, file;
    bool eval;
    std::string legend;  // short, for the plot
  };
  const std::vector<Variant> variants = {
      {"BatchNorm buffers left out of the saved state", "params.safetensors", true, "BatchNorm buffers left out"},
      {"eval mode forgotten after loading", "full.safetensors", false, "eval() forgotten"},
      {"weights saved as bfloat16", "bf16.safetensors", true, "bfloat16 weights"},
      {"fix: the whole state in float32, eval() after loading", "full.safetensors", true,
       "fix: float32 state + eval()"}};
  ScenarioResult r;
  try {
    serialize::save_safetensors(dir + "/x.safetensors", {{"x", d.test_x}});
    const nn::StateDict sd = s.model->state_dict();
    serialize::save_state_dict(dir + "/full.safetensors", sd);
    serialize::NamedTensors params;
    for (auto& [name, t] : s.model->named_parameters()) params.push_back({name, t.to(Device::cpu)});
    serialize::save_safetensors(dir + "/params.safetensors", params);
    nn::StateDict lossy;
    for (auto& [name, t] : sd.items()) {
      Tensor c = t.to(Device::cpu).clone();
      if (c.dtype() == DType::f32) {
        float* p = c.data<float>();
        for (int64_t i = 0; i < c.numel(); ++i) p[i] = round_bf16(p[i]);
      }
      lossy.insert(name, c);
    }
    serialize::save_state_dict(dir + "/bf16.safetensors", lossy);
    r.problem.identical = false;
    for (size_t v = 0; v < variants.size(); ++v) {
      const Variant& var = variants[v];
      const std::vector<float> got =
          predict_in_child(dir + "/" + var.file, dir + "/x.safetensors",
                           dir + "/logits" + std::to_string(v) + ".safetensors", var.eval, spec.threads);
      const PairResult pr = compare(reference, got);
      int64_t changed = 0;
      const std::vector<double> rows = per_row_delta(reference, got, &changed);
      const bool is_fix = v + 1 == variants.size();
      if (is_fix) {
        r.fix = pr;
      } else {
        // The problem "shows a difference" only if every variant does.
        r.problem.identical = r.problem.identical || pr.identical;
        r.problem.max_abs_delta = std::max(r.problem.max_abs_delta, pr.max_abs_delta);
        r.note += strf("%s%s: predictions changed on %lld of %zu test images, logits by up to %.3g", v ? "; " : "",
                       var.label.c_str(), static_cast<long long>(changed), rows.size(), pr.max_abs_delta);
      }
      r.extra["variants"].push_back({{"variant", var.label},
                                     {"identical", pr.identical},
                                     {"max_abs_delta", pr.max_abs_delta},
                                     {"predictions_changed", changed}});
      const size_t shown = std::min<size_t>(rows.size(), 100);  // the first 100 test images
      r.curves.push_back({var.legend, !is_fix, std::vector<double>(rows.begin(), rows.begin() + shown)});
    }
    r.note += r.fix.identical ? "; fix: bit-identical logits in the new process" : "; fix: logits DIFFER";
  } catch (...) {
    remove_dir(dir);
    throw;
  }
  remove_dir(dir);
  r.compared = "test logits of the trained model in this process vs the saved model loaded in a new process";
  r.x_label = "test image";
  r.y_label = "max |d logit| vs the model in memory";
  r.log_y = true;
  return r;
}

// `lockstep lab-predict`: the child process of loaded-model.
struct PredictFlags {
  std::string model, input, out;
  bool train_mode = false;
  int threads = 2;
};

int run_predict(const PredictFlags& f) {
  ThreadsGuard tg(f.threads);
  nn::MlpOptions mo;  // the lab's model (harness.h): 784-128-64-10, BatchNorm, Dropout 0.2
  mo.sizes = {784, 128, 64, 10};
  auto model = nn::make_mlp(0, mo);
  // Lenient, as the code that saved only the parameters must be: missing keys keep their values.
  model->load_state_dict(serialize::load_state_dict_file(f.model), /*strict=*/false);
  if (!f.train_mode) model->eval();
  const Tensor x = serialize::load_safetensors(f.input).tensors.at("x");
  const std::vector<float> l = logits_of(*model, x, kPredictBatch);
  serialize::save_safetensors(f.out, {{"logits", Tensor::from_vector(l, {static_cast<int64_t>(l.size() / 10), 10})}});
  return 0;
}

}  // namespace

Scenario loaded_model_scenario() {
  return {"loaded-model", "a model saved after training and loaded in a new process predicts differently",
          "save, then load in a child process: buffers left out / eval() forgotten / bfloat16 weights", true,
          run_loaded_model};
}

}  // namespace lockstep_cli::lab

namespace lockstep_cli {

void add_lab_predict(CLI::App& app, int* rc) {
  auto f = std::make_shared<lab::PredictFlags>();
  CLI::App* sub = app.add_subcommand("lab-predict", "the lab's loaded-model child process");
  sub->group("");  // hidden: run by `lockstep lab loaded-model`
  sub->add_option("--model", f->model)->required();
  sub->add_option("--input", f->input)->required();
  sub->add_option("--out", f->out)->required();
  sub->add_option("--threads", f->threads)->check(CLI::Range(1, 256));
  sub->add_flag("--train-mode", f->train_mode);
  sub->callback([f, rc] { *rc = lab::run_predict(*f); });
}

}  // namespace lockstep_cli
