#include "serialize/checkpoint.h"

#include <dirent.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <stdexcept>

#include "base/error.h"
#include "base/mode.h"
#include "lockstep/config.h"

namespace lockstep::serialize {

namespace {

template <typename... Args>
[[noreturn]] void fail_checkpoint(const std::string& file, const std::string& field, const Args&... args) {
  throw std::runtime_error(str_cat("[load_checkpoint] ", file, ": ", field, ": ", args...));
}

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

int64_t as_i64(uint64_t v) {
  int64_t r;
  std::memcpy(&r, &v, 8);
  return r;
}
uint64_t as_u64(int64_t v) {
  uint64_t r;
  std::memcpy(&r, &v, 8);
  return r;
}

Tensor i64_vec(const std::vector<int64_t>& v) { return Tensor::from_vector(v, {static_cast<int64_t>(v.size())}); }

// The tensors of `all` whose key starts with `prefix`, with the prefix removed.
StateDict section(const StateDict& all, const std::string& prefix) {
  StateDict sd;
  for (const auto& kv : all.items())
    if (starts_with(kv.first, prefix)) sd.insert(kv.first.substr(prefix.size()), kv.second);
  return sd;
}

// The int64 values of tensor `key`, which must have shape [n] (n < 0: 0-d).
std::vector<int64_t> get_i64(const StateDict& all, const std::string& key, int64_t n, const std::string& file) {
  if (!all.contains(key)) fail_checkpoint(file, key, "missing");
  const Tensor& t = all.at(key);
  const Shape want = n < 0 ? Shape{} : Shape{n};
  if (t.dtype() != DType::i64 || t.shape() != want)
    fail_checkpoint(file, key, "expected int64 ", shape_str(want), ", got ", dtype_name(t.dtype()), " ", shape_str(t.shape()));
  return t.to_vector<int64_t>();
}

const std::string& meta_at(const Metadata& m, const std::string& key, const std::string& file) {
  auto it = m.find(key);
  if (it == m.end()) fail_checkpoint(file, "__metadata__." + key, "missing");
  return it->second;
}

}  // namespace

void save_checkpoint(const std::string& path, const TrainingState& state, const SaveOptions& options) {
  if (state.model == nullptr)
    throw std::invalid_argument(str_cat("[save_checkpoint] ", path, ": expected a model, got none"));
  NamedTensors all;
  auto add = [&](const std::string& prefix, const StateDict& sd) {
    for (const auto& kv : sd.items()) all.push_back({prefix + kv.first, kv.second});
  };
  add("model.", state.model->state_dict());
  if (state.optimizer) add("optimizer.", state.optimizer->state_dict());
  if (state.scheduler) add("scheduler.", state.scheduler->state_dict());
  if (state.early_stopping) add("early_stopping.", state.early_stopping->state_dict());
  add("rng.", state.model->rng_state_dict());  // rng.dropout.<module name>
  for (const auto& [name, g] : state.generators)
    all.push_back({"rng.generator." + name, i64_vec({as_i64(g->seed()), as_i64(g->offset())})});
  if (state.loader) add("loader.", state.loader->state_dict());
  all.push_back({"counters.step", Tensor::from_vector(std::vector<int64_t>{state.step}, {})});  // exact beyond 2^53
  all.push_back({"counters.epoch", Tensor::from_vector(std::vector<int64_t>{state.epoch}, {})});

  Metadata meta;
  meta["format"] = kCheckpointFormat;
  meta["format_version"] = kCheckpointFormatVersion;
  meta["lockstep_version"] = LOCKSTEP_VERSION;
  meta["mode"] = mode_name(mode());
  meta["step"] = std::to_string(state.step);
  meta["epoch"] = std::to_string(state.epoch);
  for (const auto& kv : state.user) meta["user." + kv.first] = kv.second;
  SaveOptions opt = options;
  opt.checksum = true;  // a checkpoint always carries its checksums
  save_safetensors(path, all, meta, opt);
}

CheckpointInfo load_checkpoint(const std::string& path, TrainingState& state) {
  if (state.model == nullptr) throw std::invalid_argument(str_cat("[load_checkpoint] ", path, ": expected a model, got none"));
  LoadOptions lo;
  lo.require_checksum = true;
  SafetensorsContents file = load_safetensors(path, lo);
  const StateDict& all = file.tensors;
  const Metadata& meta = file.metadata;

  // ---- 1. checks that change nothing ----
  if (meta_at(meta, "format", path) != kCheckpointFormat)
    fail_checkpoint(path, "__metadata__.format", "expected '", kCheckpointFormat, "', got '", meta.at("format"), "'");
  if (meta_at(meta, "format_version", path) != kCheckpointFormatVersion)
    fail_checkpoint(path, "__metadata__.format_version", "expected ", kCheckpointFormatVersion, ", got '",
         meta.at("format_version"), "'");
  CheckpointInfo info{meta_at(meta, "lockstep_version", path), meta_at(meta, "mode", path), meta};
  if (!state.allow_mode_change && info.mode != mode_name(mode()))
    fail_checkpoint(path, "__metadata__.mode", "the checkpoint was written in ", info.mode, " mode, this process runs in ",
         mode_name(mode()), " mode (set TrainingState::allow_mode_change to accept)");

  // Every tensor must belong to a known section, and sections must match the components.
  const char* sections[] = {"model.", "optimizer.", "scheduler.", "early_stopping.", "rng.", "loader.", "counters."};
  for (const auto& kv : all.items())
    if (std::none_of(std::begin(sections), std::end(sections), [&](const char* s) { return starts_with(kv.first, s); }))
      fail_checkpoint(path, kv.first, "unexpected tensor (no such checkpoint section)");
  auto has_section = [&](const std::string& prefix) {
    return std::any_of(all.items().begin(), all.items().end(), [&](auto& kv) { return starts_with(kv.first, prefix); });
  };
  auto check_section = [&](const char* prefix, bool present_in_state, const char* component) {
    if (has_section(prefix) && !present_in_state)
      fail_checkpoint(path, std::string(prefix) + "*", "the checkpoint has ", component, " state but the TrainingState has no ",
           component);
    if (!has_section(prefix) && present_in_state)
      fail_checkpoint(path, std::string(prefix) + "*", "the TrainingState has a ", component, " but the checkpoint has no ",
           component, " state");
  };
  check_section("optimizer.", state.optimizer != nullptr, "optimizer");
  check_section("scheduler.", state.scheduler != nullptr, "scheduler");
  check_section("early_stopping.", state.early_stopping != nullptr, "early stopping");
  check_section("loader.", state.loader != nullptr, "loader");

  const StateDict model_sd = section(all, "model.");
  check_state_dict_matches(model_sd, state.model->state_dict(), path, "load_checkpoint", true);

  // The model's random state ("rng." except the generators): the same keys, dtypes and
  // shapes as the model's own; its values (a Dropout's stream) are checked by the model.
  StateDict model_rng;
  const StateDict rng_all = section(all, "rng.");
  for (const auto& kv : rng_all.items())
    if (!starts_with(kv.first, "generator.")) model_rng.insert(kv.first, kv.second);
  const StateDict rng_ref = state.model->rng_state_dict();
  for (const auto& [key, ref] : rng_ref.items()) {
    if (!model_rng.contains(key)) fail_checkpoint(path, "rng." + key, "missing");
    const Tensor& t = model_rng.at(key);
    if (t.dtype() != ref.dtype() || t.shape() != ref.shape())
      fail_checkpoint(path, "rng." + key, "expected ", dtype_name(ref.dtype()), " ", shape_str(ref.shape()), ", got ",
           dtype_name(t.dtype()), " ", shape_str(t.shape()));
  }
  for (const auto& kv : model_rng.items())
    if (!rng_ref.contains(kv.first))
      fail_checkpoint(path, "rng." + kv.first, "unexpected: the model has no layer with random state of that name");

  std::vector<std::vector<int64_t>> gen_vals;
  for (const auto& [name, g] : state.generators) gen_vals.push_back(get_i64(all, "rng.generator." + name, 2, path));
  const StateDict gen_sd = section(all, "rng.generator.");
  for (const auto& kv : gen_sd.items())
    if (std::none_of(state.generators.begin(), state.generators.end(), [&](auto& g) { return g.first == kv.first; }))
      fail_checkpoint(path, "rng.generator." + kv.first, "unexpected: no Generator of that name in the TrainingState");

  const int64_t step = get_i64(all, "counters.step", -1, path)[0];
  const int64_t epoch = get_i64(all, "counters.epoch", -1, path)[0];
  const StateDict counters_sd = section(all, "counters.");
  for (const auto& kv : counters_sd.items())
    if (kv.first != "step" && kv.first != "epoch") fail_checkpoint(path, "counters." + kv.first, "unexpected tensor");

  // ---- 2. the components that check themselves; undo on a later failure ----
  std::vector<std::function<void()>> undo;
  auto undo_all = [&] {
    for (auto it = undo.rbegin(); it != undo.rend(); ++it) (*it)();
  };
  try {
    const StateDict before = state.model->rng_state_dict();
    state.model->load_rng_state_dict(model_rng);
    undo.push_back([&state, before] { state.model->load_rng_state_dict(before); });
  } catch (const std::exception& e) {
    fail_checkpoint(path, "rng.*", e.what());
  }
  auto load_part = [&](const char* prefix, Stateful* obj) {
    if (obj == nullptr) return;
    StateDict before = obj->state_dict();
    try {
      obj->load_state_dict(section(all, prefix));
    } catch (const std::exception& e) {
      undo_all();
      fail_checkpoint(path, std::string(prefix) + "*", e.what());
    }
    undo.push_back([obj, before] { obj->load_state_dict(before); });
  };
  load_part("optimizer.", state.optimizer);
  load_part("scheduler.", state.scheduler);
  load_part("early_stopping.", state.early_stopping);
  load_part("loader.", state.loader);

  // ---- 3. the rest, which cannot fail any more ----
  state.model->load_state_dict(model_sd);
  for (size_t i = 0; i < state.generators.size(); ++i)
    state.generators[i].second->set_state(as_u64(gen_vals[i][0]), as_u64(gen_vals[i][1]));
  state.step = step;
  state.epoch = epoch;
  state.user.clear();
  for (const auto& kv : meta)
    if (starts_with(kv.first, "user.")) state.user[kv.first.substr(5)] = kv.second;
  return info;
}

// ---- rotation ------------------------------------------------------------------------------

namespace {

// The step of "<stem>-<12 digits>.safetensors", or -1.
int64_t rotation_step(const std::string& file, const std::string& stem) {
  const std::string suffix = ".safetensors";
  if (file.size() != stem.size() + 1 + 12 + suffix.size() || !starts_with(file, stem + "-") ||
      file.compare(file.size() - suffix.size(), suffix.size(), suffix) != 0)
    return -1;
  int64_t v = 0;
  for (size_t i = stem.size() + 1; i < stem.size() + 13; ++i) {
    if (file[i] < '0' || file[i] > '9') return -1;
    v = v * 10 + (file[i] - '0');
  }
  return v;
}

}  // namespace

std::vector<std::string> list_checkpoints(const std::string& dir, const std::string& stem) {
  std::vector<std::pair<int64_t, std::string>> found;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) throw std::runtime_error(str_cat("[list_checkpoints] ", dir, ": cannot open directory: ", std::strerror(errno)));
  while (dirent* e = ::readdir(d)) {
    const int64_t s = rotation_step(e->d_name, stem);
    if (s >= 0) found.push_back({s, dir + "/" + e->d_name});
  }
  ::closedir(d);
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  for (auto& f : found) out.push_back(f.second);
  return out;
}

std::optional<std::string> latest_checkpoint(const std::string& dir, const std::string& stem) {
  auto all = list_checkpoints(dir, stem);
  if (all.empty()) return std::nullopt;
  return all.back();
}

std::string save_checkpoint_rotating(const std::string& dir, const std::string& stem, const TrainingState& state,
                                     int keep_last, const SaveOptions& options) {
  if (state.step < 0 || state.step > 999'999'999'999)
    throw std::invalid_argument(str_cat("[save_checkpoint_rotating] expected step in [0, 10^12), got ", state.step));
  char digits[16];
  std::snprintf(digits, sizeof digits, "%012lld", static_cast<long long>(state.step));
  const std::string path = dir + "/" + stem + "-" + digits + ".safetensors";
  save_checkpoint(path, state, options);
  if (keep_last > 0) {
    // Only after the new one is durably in place are old ones removed.
    auto all = list_checkpoints(dir, stem);
    for (size_t i = 0; i + static_cast<size_t>(keep_last) < all.size(); ++i) std::remove(all[i].c_str());
  }
  return path;
}

}  // namespace lockstep::serialize
