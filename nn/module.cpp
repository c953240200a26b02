#include "nn/module.h"

#include <sstream>
#include <stdexcept>

#include "core/autograd.h"

namespace lockstep::nn {

// ---- Module ----

Tensor& Module::register_parameter(const std::string& name, Tensor t, bool requires_grad) {
  LS_CHECK_ARG(t.defined(), type_name_, "parameter '", name, "' is undefined");
  t.set_requires_grad(requires_grad);
  params_.emplace_back(name, t);
  return params_.back().second;
}

Tensor& Module::register_buffer(const std::string& name, Tensor t) {
  buffers_.emplace_back(name, t);
  return buffers_.back().second;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> m) {
  LS_CHECK_ARG(m != nullptr, type_name_, "child module '", name, "' is null");
  for (auto& c : children_) LS_CHECK_ARG(c.first != name, type_name_, "duplicate child name '", name, "'");
  m->training_ = training_;
  children_.emplace_back(name, std::move(m));
}

void Module::reset_parameters_named(uint64_t seed, const std::string& prefix) {
  reset_own(seed, prefix);
  for (auto& c : children_) c.second->reset_parameters_named(seed, prefix + c.first + ".");
}

void Module::train(bool on) {
  training_ = on;
  for (auto& c : children_) c.second->train(on);
}

void Module::collect(const std::string& prefix, std::vector<std::pair<std::string, Tensor>>* params,
                     std::vector<std::pair<std::string, Tensor>>* buffers) const {
  if (params)
    for (auto& p : params_) params->emplace_back(prefix + p.first, p.second);
  if (buffers)
    for (auto& b : buffers_) buffers->emplace_back(prefix + b.first, b.second);
  for (auto& c : children_) c.second->collect(prefix + c.first + ".", params, buffers);
}

void Module::to(Device device) {
  std::vector<std::pair<std::string, Tensor>> params, buffers;
  collect("", &params, &buffers);
  auto move = [device](const Tensor& t) {
    if (!t.defined() || t.device() == device) return;
    Tensor moved = t.contiguous().detach().to(device);
    // Every handle of this tensor shares its TensorImpl: re-point it at the new storage.
    TensorImpl& impl = *t.impl();
    impl.storage = moved.impl()->storage;
    impl.offset = moved.impl()->offset;
    impl.strides = moved.impl()->strides;
    impl.contiguous = true;
    impl.autograd.grad.reset();
  };
  for (auto& p : params) move(p.second);
  for (auto& b : buffers)
    if (is_floating(b.second.dtype())) move(b.second);
}

void Module::to(DType dtype) {
  LS_CHECK_ARG(dtype == DType::f32 || dtype == DType::f64, type_name_, "expected float32 or float64, got ",
               dtype_name(dtype));
  std::vector<std::pair<std::string, Tensor>> params, buffers;
  collect("", &params, &buffers);
  auto convert = [dtype](const Tensor& t) {
    if (!t.defined() || t.dtype() == dtype) return;
    Tensor converted = t.detach().to(dtype).contiguous();
    // As in to(Device): every handle shares the TensorImpl, so re-point it.
    TensorImpl& impl = *t.impl();
    impl.storage = converted.impl()->storage;
    impl.offset = converted.impl()->offset;
    impl.strides = converted.impl()->strides;
    impl.dtype = dtype;
    impl.contiguous = true;
    impl.autograd.grad.reset();
  };
  for (auto& p : params) convert(p.second);
  for (auto& b : buffers)
    if (is_floating(b.second.dtype())) convert(b.second);
}

DType Module::dtype() const {
  const auto params = named_parameters();
  return params.empty() ? DType::f32 : params.front().second.dtype();
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", &out, nullptr);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", nullptr, &out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& kv : named_parameters()) out.push_back(kv.second);
  return out;
}

void Module::zero_grad() {
  for (auto& p : parameters()) p.zero_grad();
}

StateDict Module::state_dict() const {
  // PyTorch's order: own parameters, own buffers, then each child's, depth first.
  StateDict sd;
  for (auto& p : params_) sd.insert(p.first, p.second);
  for (auto& b : buffers_) sd.insert(b.first, b.second);
  for (auto& c : children_) {
    StateDict child = c.second->state_dict();
    for (auto& kv : child.items()) sd.insert(c.first + "." + kv.first, kv.second);
  }
  return sd;
}

void Module::load_state_dict(const StateDict& sd, bool strict) {
  StateDict mine = state_dict();
  std::vector<std::string> missing, unexpected, problems;
  for (auto& kv : mine.items()) {
    if (!sd.contains(kv.first)) {
      missing.push_back(kv.first);
      continue;
    }
    const Tensor& src = sd.at(kv.first);
    if (src.defined() && src.shape() == kv.second.shape() && src.dtype() != kv.second.dtype())
      problems.push_back(str_cat("'", kv.first, "': expected ", dtype_name(kv.second.dtype()), ", got ",
                                 dtype_name(src.dtype())));  // e.g. float64 weights into a float32 model
    else if (!src.defined() || src.shape() != kv.second.shape() || src.dtype() != kv.second.dtype())
      problems.push_back(str_cat("'", kv.first, "': expected ", kv.second.str(), ", got ", src.str()));
  }
  for (auto& kv : sd.items())
    if (!mine.contains(kv.first)) unexpected.push_back(kv.first);
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s;
  };
  std::string msg;
  if (!problems.empty()) msg += "shape/dtype mismatch for " + join(problems) + ". ";
  if (strict && !missing.empty()) msg += "missing keys: " + join(missing) + ". ";
  if (strict && !unexpected.empty()) msg += "unexpected keys: " + join(unexpected) + ". ";
  if (!msg.empty()) throw std::invalid_argument("[load_state_dict] " + msg + "Nothing was loaded.");
  NoGradGuard ng;
  for (auto& kv : mine.items())
    if (sd.contains(kv.first)) {
      Tensor dst = kv.second;
      dst.copy_(sd.at(kv.first).to(dst.device()));
    }
}

// ---- random state of the tree ----

void Module::walk(const std::string& name, std::vector<std::pair<std::string, const Module*>>* out) const {
  out->push_back({name, this});
  for (auto& c : children_) c.second->walk(name.empty() ? c.first : name + "." + c.first, out);
}

StateDict Module::rng_state_dict() const {
  std::vector<std::pair<std::string, const Module*>> all;
  walk("", &all);
  StateDict sd;
  for (auto& [name, m] : all) {
    auto [kind, t] = m->own_rng_state();
    if (!kind.empty()) sd.insert(name.empty() ? kind : kind + "." + name, t);
  }
  return sd;
}

void Module::load_rng_state_dict(const StateDict& sd) {
  const char* op = "load_rng_state_dict";
  std::vector<std::pair<std::string, const Module*>> all;
  walk("", &all);
  // The keys first: exactly those of this tree.
  const StateDict mine = rng_state_dict();
  for (auto& k : mine.keys()) LS_CHECK_ARG(sd.contains(k), op, "'", k, "': missing");
  for (auto& k : sd.keys()) LS_CHECK_ARG(mine.contains(k), op, "'", k, "': unexpected (no such layer)");
  // Then layer by layer; each checks before it changes, and a later failure puts the
  // earlier layers back, so the tree changes all or nothing.
  std::vector<std::pair<Module*, Tensor>> done;
  for (auto& [name, cm] : all) {
    auto* m = const_cast<Module*>(cm);  // walk() is const; `this` is not
    auto [kind, before] = m->own_rng_state();
    if (kind.empty()) continue;
    const std::string key = name.empty() ? kind : kind + "." + name;
    try {
      m->load_own_rng_state(sd.at(key));
    } catch (const std::exception& e) {
      for (auto it = done.rbegin(); it != done.rend(); ++it) it->first->load_own_rng_state(it->second);
      throw std::invalid_argument(str_cat("[", op, "] '", key, "': ", e.what()));
    }
    done.push_back({m, before});
  }
}

std::string Module::describe(int indent) const {
  std::ostringstream os;
  os << type_name_ << "(" << extra_repr();
  if (!children_.empty()) {
    os << "\n";
    for (auto& c : children_)
      os << std::string(indent + 2, ' ') << "(" << c.first << "): " << c.second->describe(indent + 2) << "\n";
    os << std::string(indent, ' ');
  }
  os << ")";
  return os.str();
}

}  // namespace lockstep::nn
