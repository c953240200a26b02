// Adam and AdamW, PyTorch's torch.optim.Adam / AdamW, step t = 1, 2, ...:
//   Adam:   g = grad + wd * p                      (L2, coupled)
//   AdamW:  p = p * (1 - lr * wd)                  (decoupled, before the update)
//   m = beta1 * m + (1 - beta1) * g                v = beta2 * v + (1 - beta2) * g^2
//   amsgrad: vmax = max(vmax, v), used in place of v
//   p = p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// beta^t is optim_powi (binary exponentiation in double, no libm); the float operation order
// is in kernels/optim.h. Options are checked as PyTorch does: lr, eps, weight_decay >= 0,
// 0 <= beta < 1. Per-parameter state: step (int64), exp_avg, exp_avg_sq, max_exp_avg_sq
// (amsgrad only).
#pragma once
#include <utility>

#include "optim/optimizer.h"

namespace lockstep::optim {

class AdamOptions : public OptimizerOptions {
 public:
  explicit AdamOptions(double lr = 1e-3) : lr_(lr) {}
  AdamOptions& lr(double v) { lr_ = v; return *this; }
  AdamOptions& betas(double beta1, double beta2) { beta1_ = beta1; beta2_ = beta2; return *this; }
  AdamOptions& eps(double v) { eps_ = v; return *this; }
  AdamOptions& weight_decay(double v) { weight_decay_ = v; return *this; }
  AdamOptions& amsgrad(bool v) { amsgrad_ = v; return *this; }
  double lr() const { return lr_; }
  std::pair<double, double> betas() const { return {beta1_, beta2_}; }
  double eps() const { return eps_; }
  double weight_decay() const { return weight_decay_; }
  bool amsgrad() const { return amsgrad_; }

  std::unique_ptr<OptimizerOptions> clone() const override { return std::make_unique<AdamOptions>(*this); }
  double get_lr() const override { return lr_; }
  void set_lr(double v) override { lr_ = v; }
  void validate(const std::string& op) const override;
  void save(const std::string& prefix, StateDict& sd) const override;
  void load(const std::string& prefix, const StateDict& sd, const std::string& op) override;
  std::vector<std::string> keys() const override;
  std::vector<std::string> state_names() const override;

 protected:
  double lr_, beta1_ = 0.9, beta2_ = 0.999, eps_ = 1e-8, weight_decay_ = 0;
  bool amsgrad_ = false;
};

// AdamW's defaults: AdamOptions with weight_decay 0.01 (PyTorch's AdamW default).
class AdamWOptions : public AdamOptions {
 public:
  explicit AdamWOptions(double lr = 1e-3) : AdamOptions(lr) { weight_decay_ = 1e-2; }
};

class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> params, const AdamOptions& defaults = AdamOptions());
  Adam(std::vector<ParamGroup> groups, const AdamOptions& defaults = AdamOptions());
  void step() override;

 protected:
  Adam(const char* name, std::vector<ParamGroup> groups, const AdamOptions& defaults, bool decoupled);

 private:
  bool decoupled_;
};

// Adam with decoupled weight decay (Loshchilov & Hutter): p *= 1 - lr*wd, then Adam without L2.
class AdamW : public Adam {
 public:
  AdamW(std::vector<Tensor> params, const AdamOptions& defaults = AdamWOptions());
  AdamW(std::vector<ParamGroup> groups, const AdamOptions& defaults = AdamWOptions());
};

}  // namespace lockstep::optim
