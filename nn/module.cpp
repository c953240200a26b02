#include "nn/module.h"

#include "core/sha256.h"

#include <set>
#include <sstream>

#include "core/autograd.h"

namespace lockstep::nn {

// ---- StateDict ----

void StateDict::insert(const std::string& name, const Tensor& t) {
  LS_CHECK_ARG(!contains(name), "state_dict", "duplicate key '", name, "'");
  items_.emplace_back(name, t);
}

bool StateDict::contains(const std::string& name) const {
  for (auto& kv : items_)
    if (kv.first == name) return true;
  return false;
}

const Tensor& StateDict::at(const std::string& name) const {
  for (auto& kv : items_)
    if (kv.first == name) return kv.second;
  throw std::invalid_argument("[state_dict] no key '" + name + "'");
}

std::vector<std::string> StateDict::keys() const {
  std::vector<std::string> k;
  for (auto& kv : items_) k.push_back(kv.first);
  return k;
}

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
    if (!src.defined() || src.shape() != kv.second.shape() || src.dtype() != kv.second.dtype())
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

std::string state_dict_sha256(const StateDict& sd) {
  Sha256 h;
  for (const auto& [name, t] : sd.items()) {
    h.update(name.data(), name.size() + 1);  // with the terminating '\0'
    sha256_update(h, t);
  }
  return h.hex_digest();
}

}  // namespace lockstep::nn
