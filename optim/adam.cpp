// Adam / AdamW: options, checks and the per-parameter update adam_step_ (core/optim.h;
// kernels/optim.h holds the formulas and the float operation order, base/optim_step.h
// adam_step_args, which turns lr, betas and the step count into the doubles the kernel
// rounds once).
#include "optim/adam.h"

#include "core/autograd.h"
#include "core/optim.h"

namespace lockstep::optim {

void AdamOptions::validate(const std::string& op) const {
  detail::check_option(lr_ >= 0, op, "lr", ">= 0", lr_);
  detail::check_option(eps_ >= 0, op, "eps", ">= 0", eps_);
  detail::check_option(beta1_ >= 0 && beta1_ < 1, op, "betas[0]", "in [0, 1)", beta1_);
  detail::check_option(beta2_ >= 0 && beta2_ < 1, op, "betas[1]", "in [0, 1)", beta2_);
  detail::check_option(weight_decay_ >= 0, op, "weight_decay", ">= 0", weight_decay_);
}

std::vector<std::string> AdamOptions::keys() const { return {"lr", "betas", "eps", "weight_decay", "amsgrad"}; }

std::vector<std::string> AdamOptions::state_names() const {
  if (amsgrad_) return {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
  return {"step", "exp_avg", "exp_avg_sq"};
}

void AdamOptions::save(const std::string& prefix, StateDict& sd) const {
  detail::put_f64(sd, prefix + "lr", lr_);
  sd.insert(prefix + "betas", Tensor::from_vector(std::vector<double>{beta1_, beta2_}, {2}));
  detail::put_f64(sd, prefix + "eps", eps_);
  detail::put_f64(sd, prefix + "weight_decay", weight_decay_);
  detail::put_bool(sd, prefix + "amsgrad", amsgrad_);
}

void AdamOptions::load(const std::string& prefix, const StateDict& sd, const std::string& op) {
  lr_ = detail::get_f64(sd, prefix + "lr", op);
  const std::vector<double> b = detail::get_f64_vec(sd, prefix + "betas", 2, op);
  beta1_ = b[0];
  beta2_ = b[1];
  eps_ = detail::get_f64(sd, prefix + "eps", op);
  weight_decay_ = detail::get_f64(sd, prefix + "weight_decay", op);
  amsgrad_ = detail::get_bool(sd, prefix + "amsgrad", op);
}

Adam::Adam(std::vector<Tensor> params, const AdamOptions& defaults)
    : Adam("Adam", std::vector<ParamGroup>{ParamGroup(std::move(params))}, defaults, false) {}
Adam::Adam(std::vector<ParamGroup> groups, const AdamOptions& defaults)
    : Adam("Adam", std::move(groups), defaults, false) {}
Adam::Adam(const char* name, std::vector<ParamGroup> groups, const AdamOptions& defaults, bool decoupled)
    : Optimizer(name, std::move(groups), defaults), decoupled_(decoupled) {}

AdamW::AdamW(std::vector<Tensor> params, const AdamOptions& defaults)
    : Adam("AdamW", std::vector<ParamGroup>{ParamGroup(std::move(params))}, defaults, true) {}
AdamW::AdamW(std::vector<ParamGroup> groups, const AdamOptions& defaults)
    : Adam("AdamW", std::move(groups), defaults, true) {}

void Adam::step() {
  NoGradGuard ng;
  struct Update {
    Tensor p, m, v, vmax, grad;
    AdamStep s;
  };
  std::vector<Update> updates;
  std::vector<int64_t> sizes;
  bool cpu = true;
  for (size_t g = 0; g < num_param_groups(); ++g) {
    const AdamOptions& o = options_as<AdamOptions>(g);
    for (size_t k = 0; k < params(g).size(); ++k) {
      const Tensor& p = params(g)[k];
      const Tensor grad = p.grad().defined() ? p.grad().contiguous() : Tensor();
      if (!grad.defined()) continue;
      const size_t index = first_index(g) + k;
      Tensor step = state_slot(index, "step", p);
      const Tensor m = state_slot(index, "exp_avg", p);
      const Tensor v = state_slot(index, "exp_avg_sq", p);
      const Tensor vmax = o.amsgrad() ? state_slot(index, "max_exp_avg_sq", p) : Tensor();
      const int64_t t = ++step.data<int64_t>()[0];
      const AdamStep s = adam_step_args(o.lr(), o.betas().first, o.betas().second, o.eps(), o.weight_decay(),
                                        decoupled_, o.amsgrad(), t);
      updates.push_back({p, m, v, vmax, grad, s});
      sizes.push_back(p.numel());
      cpu = cpu && p.device() == Device::cpu;
    }
  }
  update_elementwise(sizes, cpu, [&](size_t i, int64_t b, int64_t e) {
    const Update& u = updates[i];
    adam_step_(u.p, u.m, u.v, u.vmax, u.grad, u.s, b, e);
  });
}

}  // namespace lockstep::optim
