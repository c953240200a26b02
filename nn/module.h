// Module: named parameters, buffers and children, train/eval, state dicts with PyTorch's
// key names ("0.weight", "1.running_mean", "1.num_batches_tracked").
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace lockstep::nn {

// An ordered name -> tensor map (PyTorch's OrderedDict state dict).
class StateDict {
 public:
  void insert(const std::string& name, const Tensor& t);  // throws on a duplicate name
  bool contains(const std::string& name) const;
  const Tensor& at(const std::string& name) const;        // throws naming the key
  const std::vector<std::pair<std::string, Tensor>>& items() const { return items_; }
  size_t size() const { return items_.size(); }
  std::vector<std::string> keys() const;

 private:
  std::vector<std::pair<std::string, Tensor>> items_;
};

class Module : public std::enable_shared_from_this<Module> {
 public:
  explicit Module(std::string type_name) : type_name_(std::move(type_name)) {}
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }

  // Re-initialises every parameter (and RNG-keyed state) from `seed`: each tensor's values
  // are a pure function of (seed, its full name), so adding or removing one layer does not
  // change the initial values of the others.
  void reset_parameters(uint64_t seed) { reset_parameters_named(seed, ""); }

  void train(bool on = true);  // propagates to children
  void eval() { train(false); }
  bool is_training() const { return training_; }

  std::vector<Tensor> parameters() const;  // recursive, registration order
  std::vector<std::pair<std::string, Tensor>> named_parameters() const;
  std::vector<std::pair<std::string, Tensor>> named_buffers() const;
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const { return children_; }
  void zero_grad();  // clears every parameter's gradient
  // Moves every parameter and floating-point buffer to `device` in place: each tensor
  // keeps its identity (layers and optimizers holding it see the new storage), gradients
  // are cleared. Integer buffers (BatchNorm's num_batches_tracked) stay on the CPU, where
  // the layer counts batches. Call it before creating the optimizer.
  void to(Device device);

  // Parameters then buffers of each module, depth first in registration order (PyTorch's).
  StateDict state_dict() const;
  // Copies values in place. strict: missing or unexpected keys are an error. Every key,
  // shape and dtype is checked before anything is copied, so a failed load changes nothing.
  void load_state_dict(const StateDict& sd, bool strict = true);

  const std::string& type_name() const { return type_name_; }
  std::string describe(int indent = 0) const;  // the module tree, like PyTorch's repr

 protected:
  Tensor& register_parameter(const std::string& name, Tensor t, bool requires_grad = true);
  Tensor& register_buffer(const std::string& name, Tensor t);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    add_child(name, m);
    return m;
  }
  // Layers with random state override this; `prefix` is the module's full name plus ".".
  virtual void reset_own(uint64_t /*seed*/, const std::string& /*prefix*/) {}
  virtual std::string extra_repr() const { return ""; }

 private:
  void add_child(const std::string& name, std::shared_ptr<Module> m);
  void reset_parameters_named(uint64_t seed, const std::string& prefix);
  void collect(const std::string& prefix, std::vector<std::pair<std::string, Tensor>>* params,
               std::vector<std::pair<std::string, Tensor>>* buffers) const;
  std::string type_name_;
  bool training_ = true;
  std::vector<std::pair<std::string, Tensor>> params_, buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

using ModulePtr = std::shared_ptr<Module>;

// SHA-256 of a state dict, the "weights hash" lockstep prints: for each entry in order, the
// key's bytes, a '\0', then the tensor as sha256_update (core/sha256.h) writes it. Equal
// hashes mean equal keys, order, dtypes, shapes and bits.
std::string state_dict_sha256(const StateDict& sd);

}  // namespace lockstep::nn
