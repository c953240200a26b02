// Optimizer base: parameter bookkeeping, zero_grad and the checked state dict
// (optim/optimizer.h). Loading is two-phase: every key is parsed and checked against the
// loaded options into local copies, and only then are the copies swapped in.
#include "optim/optimizer.h"

#include <algorithm>
#include <map>
#include <set>
#include <typeinfo>

#include "base/parallel.h"
#include "core/autograd.h"

namespace lockstep::optim {

namespace detail {

namespace {
const Tensor& need(const StateDict& sd, const std::string& key, const std::string& op) {
  LS_CHECK_ARG(sd.contains(key), op, "missing key '", key, "'");
  const Tensor& t = sd.at(key);
  LS_CHECK_ARG(t.defined(), op, "'", key, "' is an undefined tensor");
  return t;
}

void need_scalar(const Tensor& t, DType dtype, const std::string& key, const std::string& op) {
  LS_CHECK_ARG(t.dtype() == dtype && t.dim() == 0, op, "expected '", key, "' to be a 0-d ", dtype_name(dtype),
               " tensor, got ", t.str());
}
}  // namespace

void put_f64(StateDict& sd, const std::string& key, double v) { sd.insert(key, Tensor::scalar(v, DType::f64)); }
void put_bool(StateDict& sd, const std::string& key, bool v) {
  sd.insert(key, Tensor::scalar(v ? 1.0 : 0.0, DType::u8));
}

double get_f64(const StateDict& sd, const std::string& key, const std::string& op) {
  const Tensor& t = need(sd, key, op);
  need_scalar(t, DType::f64, key, op);
  return t.item();
}

bool get_bool(const StateDict& sd, const std::string& key, const std::string& op) {
  const Tensor& t = need(sd, key, op);
  need_scalar(t, DType::u8, key, op);
  const double v = t.item();
  LS_CHECK_ARG(v == 0.0 || v == 1.0, op, "expected '", key, "' to be 0 or 1, got ", v);
  return v == 1.0;
}

int64_t get_i64(const StateDict& sd, const std::string& key, const std::string& op) {
  const Tensor& t = need(sd, key, op);
  need_scalar(t, DType::i64, key, op);
  return t.to_vector<int64_t>()[0];
}

std::vector<double> get_f64_vec(const StateDict& sd, const std::string& key, int64_t n, const std::string& op) {
  const Tensor& t = need(sd, key, op);
  LS_CHECK_ARG(t.dtype() == DType::f64 && t.shape() == Shape{n}, op, "expected '", key, "' to be a float64 tensor of shape [",
               n, "], got ", t.str());
  return t.to_vector<double>();
}

void check_option(bool ok, const std::string& op, const char* option, const std::string& expected, double got) {
  LS_CHECK_ARG(ok, op, "expected ", option, " ", expected, ", got ", got);
}

}  // namespace detail

namespace {

// A non-negative decimal integer, all of s; -1 otherwise.
int64_t parse_index(const std::string& s) {
  if (s.empty() || s.size() > 18) return -1;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  return (s.size() > 1 && s[0] == '0') ? -1 : v;
}

// "state.12.exp_avg" with prefix "state." -> (12, "exp_avg"); (-1, "") if malformed.
std::pair<int64_t, std::string> split_key(const std::string& key, const std::string& prefix) {
  const std::string rest = key.substr(prefix.size());
  const size_t dot = rest.find('.');
  if (dot == std::string::npos) return {-1, ""};
  return {parse_index(rest.substr(0, dot)), rest.substr(dot + 1)};
}

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

}  // namespace

Optimizer::Optimizer(std::string name, std::vector<ParamGroup> groups, const OptimizerOptions& defaults)
    : name_(std::move(name)) {
  defaults.validate(name_);
  const std::unique_ptr<OptimizerOptions> base = defaults.clone();
  std::set<const TensorImpl*> seen;
  size_t index = 0;
  for (size_t g = 0; g < groups.size(); ++g) {
    std::unique_ptr<OptimizerOptions> o = groups[g].options ? groups[g].options->clone() : base->clone();
    LS_CHECK_ARG(typeid(*o) == typeid(*base), name_, "parameter group ", g, " has the options of another optimizer");
    o->validate(name_);
    for (const Tensor& p : groups[g].params) {
      LS_CHECK_ARG(p.defined(), name_, "parameter ", index, " is undefined");
      LS_CHECK_ARG(is_floating(p.dtype()), name_, "expected floating-point parameters, parameter ", index, " is ",
                   p.str());
      LS_CHECK_ARG(p.is_leaf(), name_, "can't optimize a non-leaf tensor (parameter ", index, ")");
      LS_CHECK_ARG(p.is_contiguous(), name_, "expected contiguous parameters, parameter ", index, " is a strided view");
      LS_CHECK_ARG(seen.insert(p.impl().get()).second, name_, "parameter ", index,
                   " appears more than once (in one group or in two)");
      ++index;
    }
    offsets_.push_back(index - groups[g].params.size());
    groups_.push_back(std::move(groups[g].params));
    options_.push_back(std::move(o));
  }
  LS_CHECK_ARG(index > 0, name_, "got an empty parameter list");
  initial_lr_.resize(groups_.size());
  state_.resize(index);
}

void Optimizer::zero_grad() {
  for (auto& group : groups_)
    for (auto& p : group) {
      Tensor q = p;
      q.zero_grad();
    }
}

const std::vector<Tensor>& Optimizer::params(size_t group) const {
  LS_CHECK_ARG(group < groups_.size(), name_, "expected a group index < ", groups_.size(), ", got ", group);
  return groups_[group];
}

std::vector<Tensor> Optimizer::parameters() const {
  std::vector<Tensor> out;
  for (auto& group : groups_) out.insert(out.end(), group.begin(), group.end());
  return out;
}

const OptimizerOptions& Optimizer::options(size_t group) const {
  LS_CHECK_ARG(group < groups_.size(), name_, "expected a group index < ", groups_.size(), ", got ", group);
  return *options_[group];
}

void Optimizer::set_lr(size_t group, double lr) {
  std::unique_ptr<OptimizerOptions> o = options(group).clone();
  o->set_lr(lr);
  o->validate(name_);
  options_[group] = std::move(o);
}

std::optional<double> Optimizer::initial_lr(size_t group) const {
  options(group);  // range check
  return initial_lr_[group];
}

void Optimizer::set_initial_lr(size_t group, double lr) {
  options(group);
  detail::check_option(lr >= 0, name_, "initial_lr", ">= 0", lr);
  initial_lr_[group] = lr;
}

Tensor Optimizer::state(size_t index, const std::string& name) const {
  LS_CHECK_ARG(index < state_.size(), name_, "expected a parameter index < ", state_.size(), ", got ", index);
  for (auto& kv : state_[index])
    if (kv.first == name) return kv.second;
  return Tensor();
}

bool Optimizer::has_state(size_t index, const std::string& name) const { return state(index, name).defined(); }

Tensor Optimizer::state_slot(size_t index, const std::string& name, const Tensor& param) {
  for (auto& kv : state_[index])
    if (kv.first == name) return kv.second;
  Tensor t = name == "step" ? Tensor::zeros({}, DType::i64) : Tensor::zeros(param.shape(), param.dtype(), param.device());
  state_[index].emplace_back(name, t);
  return t;
}

StateDict Optimizer::state_dict() const {
  NoGradGuard ng;
  StateDict sd;
  for (size_t i = 0; i < state_.size(); ++i)
    for (auto& kv : state_[i]) sd.insert(str_cat("state.", i, ".", kv.first), kv.second.clone());
  for (size_t g = 0; g < groups_.size(); ++g) {
    const std::string prefix = str_cat("param_groups.", g, ".");
    options_[g]->save(prefix, sd);
    if (initial_lr_[g]) detail::put_f64(sd, prefix + "initial_lr", *initial_lr_[g]);
    std::vector<int64_t> idx;
    for (size_t k = 0; k < groups_[g].size(); ++k) idx.push_back(static_cast<int64_t>(offsets_[g] + k));
    sd.insert(prefix + "params", Tensor::from_vector(idx, {static_cast<int64_t>(idx.size())}));
  }
  return sd;
}

void Optimizer::load_state_dict(const StateDict& sd) {
  const std::string op = name_ + ".load_state_dict";
  const size_t ngroups = groups_.size();

  // 1. The groups: options (checked like constructor arguments), initial_lr, params.
  std::vector<std::unique_ptr<OptimizerOptions>> opts;
  std::vector<std::optional<double>> initial(ngroups);
  std::vector<std::set<std::string>> group_keys(ngroups);
  for (size_t g = 0; g < ngroups; ++g) {
    const std::string prefix = str_cat("param_groups.", g, ".");
    std::unique_ptr<OptimizerOptions> o = options_[g]->clone();
    o->load(prefix, sd, op);
    o->validate(op);
    for (auto& k : o->keys()) group_keys[g].insert(k);
    group_keys[g].insert({"params", "initial_lr"});
    if (sd.contains(prefix + "initial_lr")) {
      const double v = detail::get_f64(sd, prefix + "initial_lr", op);
      detail::check_option(v >= 0, op, (prefix + "initial_lr").c_str(), ">= 0", v);
      initial[g] = v;
    }
    const std::string pkey = prefix + "params";
    LS_CHECK_ARG(sd.contains(pkey), op, "missing key '", pkey, "'");
    const Tensor& pt = sd.at(pkey);
    const int64_t k = static_cast<int64_t>(groups_[g].size());
    LS_CHECK_ARG(pt.defined() && pt.dtype() == DType::i64 && pt.shape() == Shape{k}, op, "expected '", pkey,
                 "' to be an int64 tensor of shape [", k, "] (the group's parameter count), got ",
                 pt.defined() ? pt.str() : "undefined");
    const std::vector<int64_t> idx = pt.to_vector<int64_t>();
    for (int64_t j = 0; j < k; ++j)
      LS_CHECK_ARG(idx[j] == static_cast<int64_t>(offsets_[g]) + j, op, "expected '", pkey, "' to list parameters ",
                   offsets_[g], "..", offsets_[g] + k - 1, " in order, got ", idx[j], " at position ", j);
    opts.push_back(std::move(o));
  }

  // 2. Every key: a known group key, or a state entry of a known parameter with the
  // parameter's shape and dtype (step: a 0-d int64).
  std::vector<std::map<std::string, Tensor>> loaded(state_.size());
  for (auto& kv : sd.items()) {
    const std::string& key = kv.first;
    if (starts_with(key, "param_groups.")) {
      auto [g, field] = split_key(key, "param_groups.");
      LS_CHECK_ARG(g >= 0 && static_cast<size_t>(g) < ngroups && group_keys[g].count(field), op, "unexpected key '",
                   key, "' (the optimizer has ", ngroups, " parameter group(s))");
      continue;
    }
    LS_CHECK_ARG(starts_with(key, "state."), op, "unexpected key '", key, "'");
    auto [i, name] = split_key(key, "state.");
    LS_CHECK_ARG(i >= 0 && static_cast<size_t>(i) < state_.size(), op, "unexpected key '", key, "' (the optimizer has ",
                 state_.size(), " parameters)");
    size_t g = ngroups - 1;
    while (offsets_[g] > static_cast<size_t>(i)) --g;
    const std::vector<std::string> names = opts[g]->state_names();
    LS_CHECK_ARG(std::find(names.begin(), names.end(), name) != names.end(), op, "unexpected key '", key, "'");
    const Tensor& t = kv.second;
    const Tensor& p = groups_[g][i - offsets_[g]];
    LS_CHECK_ARG(t.defined(), op, "'", key, "' is an undefined tensor");
    if (name == "step") {
      LS_CHECK_ARG(t.dtype() == DType::i64 && t.dim() == 0, op, "expected '", key, "' to be a 0-d int64 tensor, got ",
                   t.str());
      LS_CHECK_ARG(t.to_vector<int64_t>()[0] >= 0, op, "expected '", key, "' >= 0, got ", t.to_vector<int64_t>()[0]);
    } else {
      LS_CHECK_ARG(t.dtype() == p.dtype() && t.shape() == p.shape(), op, "expected '", key, "' to be ",
                   dtype_name(p.dtype()), " ", shape_str(p.shape()), " like parameter ", i, ", got ", t.str());
    }
    loaded[i][name] = t;
  }
  // A parameter has all of its state or none of it.
  for (size_t i = 0; i < loaded.size(); ++i) {
    if (loaded[i].empty()) continue;
    size_t g = ngroups - 1;
    while (offsets_[g] > i) --g;
    for (auto& name : opts[g]->state_names())
      LS_CHECK_ARG(loaded[i].count(name), op, "missing key 'state.", i, ".", name, "'");
  }

  // 3. Commit: copies on the parameters' devices (step stays on the CPU).
  NoGradGuard ng;
  std::vector<std::vector<std::pair<std::string, Tensor>>> state(state_.size());
  for (size_t i = 0; i < loaded.size(); ++i) {
    if (loaded[i].empty()) continue;
    size_t g = ngroups - 1;
    while (offsets_[g] > i) --g;
    const Device dev = groups_[g][i - offsets_[g]].device();
    for (auto& name : opts[g]->state_names()) {
      const Tensor& t = loaded[i].at(name);
      Tensor c = name == "step" ? t.to(Device::cpu).clone() : t.to(dev).clone();
      state[i].emplace_back(name, c);
    }
  }
  options_ = std::move(opts);
  initial_lr_ = std::move(initial);
  state_ = std::move(state);
}

DecaySplit split_weight_decay(const std::vector<std::pair<std::string, Tensor>>& named_parameters,
                              const std::vector<std::string>& no_decay_modules) {
  DecaySplit s;
  for (auto& kv : named_parameters) {
    const std::string& n = kv.first;
    const bool bias = n == "bias" || (n.size() > 5 && n.compare(n.size() - 5, 5, ".bias") == 0);
    bool listed = false;
    for (const std::string& m : no_decay_modules)
      listed = listed || n == m || (n.size() > m.size() && n.compare(0, m.size(), m) == 0 && n[m.size()] == '.');
    if (kv.second.dim() <= 1 || bias || listed) {
      s.no_decay.push_back(kv.second);
      s.no_decay_names.push_back(n);
    } else {
      s.decay.push_back(kv.second);
      s.decay_names.push_back(n);
    }
  }
  return s;
}

void Optimizer::update_elementwise(const std::vector<int64_t>& sizes, bool cpu,
                                   const std::function<void(size_t, int64_t, int64_t)>& update) {
  // Least elements per task of the merged pass (an element costs ~0.3 ns with AVX2; a
  // hand-off a few microseconds), as kernels/optim_cpu.cpp's grain.
  constexpr int64_t kElementsPerTask = 1 << 15;
  if (!cpu || sizes.size() < 2 || num_threads() < 2) {
    for (size_t i = 0; i < sizes.size(); ++i) update(i, 0, sizes[i]);
    return;
  }
  std::vector<int64_t> offsets(sizes.size() + 1, 0);  // of each parameter's first element
  for (size_t i = 0; i < sizes.size(); ++i) offsets[i + 1] = offsets[i] + sizes[i];
  parallel_for(offsets.back(), kElementsPerTask, [&](int64_t b, int64_t e) {
    for (size_t i = 0; i < sizes.size(); ++i) {
      const int64_t lo = std::max(b, offsets[i]), hi = std::min(e, offsets[i + 1]);
      if (lo < hi) update(i, lo - offsets[i], hi - offsets[i]);
    }
  });
}

}  // namespace lockstep::optim
