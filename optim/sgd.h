// SGD with momentum, dampening, Nesterov and L2 weight decay, PyTorch's torch.optim.SGD:
//   g = grad + wd * p
//   if momentum != 0: b = g on the first step, then b = momentum * b + (1 - dampening) * g;
//                     g = g + momentum * b (nesterov) or g = b
//   p = p - lr * g
// The float operation order is in kernels/optim.h; options are checked as PyTorch does
// (lr, momentum, weight_decay >= 0; nesterov needs momentum > 0 and dampening 0).
// Per-parameter state: momentum_buffer (only when momentum != 0).
#pragma once
#include "optim/optimizer.h"

namespace lockstep::optim {

class SGDOptions : public OptimizerOptions {
 public:
  explicit SGDOptions(double lr) : lr_(lr) {}
  SGDOptions& lr(double v) { lr_ = v; return *this; }
  SGDOptions& momentum(double v) { momentum_ = v; return *this; }
  SGDOptions& dampening(double v) { dampening_ = v; return *this; }
  SGDOptions& weight_decay(double v) { weight_decay_ = v; return *this; }
  SGDOptions& nesterov(bool v) { nesterov_ = v; return *this; }
  double lr() const { return lr_; }
  double momentum() const { return momentum_; }
  double dampening() const { return dampening_; }
  double weight_decay() const { return weight_decay_; }
  bool nesterov() const { return nesterov_; }

  std::unique_ptr<OptimizerOptions> clone() const override { return std::make_unique<SGDOptions>(*this); }
  double get_lr() const override { return lr_; }
  void set_lr(double v) override { lr_ = v; }
  void validate(const std::string& op) const override;
  void save(const std::string& prefix, StateDict& sd) const override;
  void load(const std::string& prefix, const StateDict& sd, const std::string& op) override;
  std::vector<std::string> keys() const override;
  std::vector<std::string> state_names() const override;

 private:
  double lr_, momentum_ = 0, dampening_ = 0, weight_decay_ = 0;
  bool nesterov_ = false;
};

class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, const SGDOptions& defaults);
  SGD(std::vector<ParamGroup> groups, const SGDOptions& defaults);
  void step() override;
};

}  // namespace lockstep::optim
