// Optimizer: parameter groups with their own options, zero_grad, and a PyTorch-shaped state
// dict. The update itself is a kernel (kernels/optim.h); SGD, Adam and AdamW (sgd.h,
// adam.h) differ only in their options and in step().
//
//   optim::Adam opt(model->parameters(), optim::AdamOptions(1e-3).weight_decay(1e-2));
//   opt.zero_grad(); loss.backward(); opt.step();
//
// Parameters are numbered across groups in order (group 0's first parameter is 0): that
// index names a parameter's state. A parameter whose grad is undefined is skipped by step()
// and gets no state, as in PyTorch.
//
// State dict (core/state_dict.h: Optimizer is Stateful; scalars are 0-d tensors):
//   state.<i>.<name>             per-parameter state, only for parameters stepped at least
//                                once: step (int64), momentum_buffer, exp_avg, exp_avg_sq,
//                                max_exp_avg_sq (the parameter's shape and dtype)
//   param_groups.<g>.<option>    the group's options: lr, momentum, betas (float64 [2]), ...;
//                                bools as uint8 0/1
//   param_groups.<g>.initial_lr  set by the first LR scheduler (PyTorch's "initial_lr")
//   param_groups.<g>.params      int64 [k]: the indices of the group's parameters
// state_dict() returns copies, a snapshot. load_state_dict() checks every key, shape, dtype
// and option value first and changes nothing if any is wrong (std::invalid_argument naming
// the key); then it copies: later steps never write into the caller's tensors.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "core/state_dict.h"

namespace lockstep::optim {

// What every optimizer's options provide to the base class; SGDOptions and AdamOptions
// add the PyTorch-style chained setters (AdamOptions(1e-3).betas(0.9, 0.98)).
class OptimizerOptions {
 public:
  virtual ~OptimizerOptions() = default;
  virtual std::unique_ptr<OptimizerOptions> clone() const = 0;
  virtual double get_lr() const = 0;
  virtual void set_lr(double lr) = 0;
  // Throws std::invalid_argument("[<op>] expected <option> ..., got ...") for a bad value.
  virtual void validate(const std::string& op) const = 0;
  // Writes the options as prefix + name; reads them back, throwing naming a missing key
  // or a tensor of the wrong dtype or shape (values are checked by validate()).
  virtual void save(const std::string& prefix, StateDict& sd) const = 0;
  virtual void load(const std::string& prefix, const StateDict& sd, const std::string& op) = 0;
  virtual std::vector<std::string> keys() const = 0;
  // The per-parameter state these options create (e.g. max_exp_avg_sq only with amsgrad).
  virtual std::vector<std::string> state_names() const = 0;
};

// A group of parameters with its own options (null: the optimizer's defaults).
struct ParamGroup {
  ParamGroup(std::vector<Tensor> p) : params(std::move(p)) {}  // NOLINT: implicit, as {params}
  ParamGroup(std::vector<Tensor> p, const OptimizerOptions& o) : params(std::move(p)), options(o.clone()) {}
  std::vector<Tensor> params;
  std::shared_ptr<OptimizerOptions> options;
};

class Optimizer : public Stateful {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter whose grad is defined.
  virtual void step() = 0;
  // Clears every parameter's gradient (PyTorch's set_to_none=True).
  void zero_grad();

  const std::string& name() const { return name_; }
  size_t num_param_groups() const { return groups_.size(); }
  const std::vector<Tensor>& params(size_t group) const;
  std::vector<Tensor> parameters() const;  // all, in index order
  const OptimizerOptions& options(size_t group) const;
  double lr(size_t group) const { return options(group).get_lr(); }
  void set_lr(size_t group, double lr);  // validated
  std::optional<double> initial_lr(size_t group) const;
  void set_initial_lr(size_t group, double lr);

  // Parameter `index`'s state tensor `name`, or an undefined tensor.
  Tensor state(size_t index, const std::string& name) const;

  StateDict state_dict() const override;
  void load_state_dict(const StateDict& sd) override;

 protected:
  // Checks the parameters (defined, floating, contiguous leaves, each in one group) and
  // fills every group's options from `defaults` where the group has none.
  Optimizer(std::string name, std::vector<ParamGroup> groups, const OptimizerOptions& defaults);
  // The state tensor `name` of parameter `index` (an alias), created as zeros like the
  // parameter (or as a 0-d int64 zero on the CPU for "step") the first time.
  Tensor state_slot(size_t index, const std::string& name, const Tensor& param);
  bool has_state(size_t index, const std::string& name) const;
  size_t first_index(size_t group) const { return offsets_[group]; }
  // Runs an element-wise update over several parameters of sizes[i] elements each:
  // update(i, begin, end) updates elements [begin, end) of parameter i. On the CPU with two
  // or more parameters and threads, one parallel pass over all their elements in equal
  // contiguous ranges (one hand-off, not one per parameter); otherwise parameter by
  // parameter. Every element's update is its own, so the split changes no bit.
  static void update_elementwise(const std::vector<int64_t>& sizes, bool cpu,
                                 const std::function<void(size_t, int64_t, int64_t)>& update);
  // The options of group g as the concrete type.
  template <typename O>
  const O& options_as(size_t group) const {
    return static_cast<const O&>(*options_[group]);
  }

 private:
  std::string name_;
  std::vector<std::vector<Tensor>> groups_;
  std::vector<size_t> offsets_;
  std::vector<std::unique_ptr<OptimizerOptions>> options_;
  std::vector<std::optional<double>> initial_lr_;
  std::vector<std::vector<std::pair<std::string, Tensor>>> state_;  // by parameter index
};

// Splits named parameters by the usual weight-decay rule: tensors of at most one dimension
// (biases, BatchNorm and LayerNorm weights), parameters named "bias" or "*.bias", and those
// of the modules named in `no_decay_modules` (a parameter "p" or "p.<anything>" for each
// entry p: embeddings, e.g. {"wte", "wpe"} for the GPT) go to no_decay, the rest (matrices,
// convolution kernels) to decay. Order is kept within each list.
struct DecaySplit {
  std::vector<Tensor> decay, no_decay;
  std::vector<std::string> decay_names, no_decay_names;
};
DecaySplit split_weight_decay(const std::vector<std::pair<std::string, Tensor>>& named_parameters,
                              const std::vector<std::string>& no_decay_modules = {});

// The two groups of that split: {decay with `options`, no_decay with weight_decay 0}.
// O is SGDOptions or AdamOptions (anything with a weight_decay(double) setter).
template <typename O>
std::vector<ParamGroup> weight_decay_groups(const std::vector<std::pair<std::string, Tensor>>& named_parameters,
                                            const O& options, const std::vector<std::string>& no_decay_modules = {}) {
  DecaySplit s = split_weight_decay(named_parameters, no_decay_modules);
  O no_decay = options;
  no_decay.weight_decay(0.0);
  return {ParamGroup(s.decay, options), ParamGroup(s.no_decay, no_decay)};
}

namespace detail {
// State-dict helpers for the options classes: 0-d float64 / uint8 tensors and checked reads.
void put_f64(StateDict& sd, const std::string& key, double v);
void put_bool(StateDict& sd, const std::string& key, bool v);
double get_f64(const StateDict& sd, const std::string& key, const std::string& op);
bool get_bool(const StateDict& sd, const std::string& key, const std::string& op);
// A float64 tensor of shape [n]: its values.
std::vector<double> get_f64_vec(const StateDict& sd, const std::string& key, int64_t n, const std::string& op);
int64_t get_i64(const StateDict& sd, const std::string& key, const std::string& op);
// Throws naming the option unless ok.
void check_option(bool ok, const std::string& op, const char* option, const std::string& expected, double got);
}  // namespace detail

}  // namespace lockstep::optim
