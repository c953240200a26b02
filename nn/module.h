// Module: named parameters, buffers and children, train/eval, state dicts with PyTorch's
// key names ("0.weight", "1.running_mean", "1.num_batches_tracked"), and the random state of
// layers such as Dropout in a state dict of its own (core/state_dict.h: StatefulModel).
// Parameters and floating buffers are float32 by default; to(DType::f64) converts a model.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/state_dict.h"
#include "core/tensor.h"

namespace lockstep::nn {

// The core state-dict types under their former names (nn::StateDict, nn::state_dict_sha256).
using ::lockstep::StateDict;
using ::lockstep::state_dict_sha256;

class Module : public std::enable_shared_from_this<Module>, public StatefulModel {
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
  // Converts every parameter and floating-point buffer to `dtype` (f32 or f64) in place, with
  // the same identity rules as to(Device); integer buffers are kept. Forward then runs in
  // that dtype, and load_state_dict expects it.
  void to(DType dtype);
  // The dtype of the parameters (f32 for a model without any).
  DType dtype() const;

  // Parameters then buffers of each module, depth first in registration order (PyTorch's).
  // Aliases of the tensors, not copies. Exactly PyTorch's keys: no random state here.
  StateDict state_dict() const override;
  // Copies values in place. strict: missing or unexpected keys are an error. Every key,
  // shape and dtype is checked before anything is copied, so a failed load changes nothing.
  void load_state_dict(const StateDict& sd, bool strict);
  void load_state_dict(const StateDict& sd) override { load_state_dict(sd, true); }

  // Random state of the layers in the tree, "<kind>.<module name>" -> tensor (Dropout:
  // "dropout.3" -> int64 [3] seed, stream, step; the root module's key is "<kind>"). Fresh
  // tensors, a snapshot. load_rng_state_dict needs exactly these keys and checks every value
  // before changing anything.
  StateDict rng_state_dict() const override;
  void load_rng_state_dict(const StateDict& sd) override;

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
  // Layers with random state outside their weights override both: the state as (kind,
  // tensor), kind empty for none; and a load that checks `t` (throwing std::invalid_argument
  // with the reason) before changing anything.
  virtual std::pair<std::string, Tensor> own_rng_state() const { return {}; }
  virtual void load_own_rng_state(const Tensor& /*t*/) {}

 private:
  void add_child(const std::string& name, std::shared_ptr<Module> m);
  void reset_parameters_named(uint64_t seed, const std::string& prefix);
  // Every module of the tree with its full name ("" for the root, "block.1"), depth first.
  void walk(const std::string& name, std::vector<std::pair<std::string, const Module*>>* out) const;
  void collect(const std::string& prefix, std::vector<std::pair<std::string, Tensor>>* params,
               std::vector<std::pair<std::string, Tensor>>* buffers) const;
  std::string type_name_;
  bool training_ = true;
  std::vector<std::pair<std::string, Tensor>> params_, buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

using ModulePtr = std::shared_ptr<Module>;

}  // namespace lockstep::nn
