// SGD: options, checks and the per-parameter update sgd_step_ (core/optim.h; the formulas
// and their float operation order are in kernels/optim.h).
#include "optim/sgd.h"

#include "core/autograd.h"
#include "core/optim.h"

namespace lockstep::optim {

void SGDOptions::validate(const std::string& op) const {
  detail::check_option(lr_ >= 0, op, "lr", ">= 0", lr_);
  detail::check_option(momentum_ >= 0, op, "momentum", ">= 0", momentum_);
  detail::check_option(dampening_ == dampening_, op, "dampening", "to be a number", dampening_);
  detail::check_option(weight_decay_ >= 0, op, "weight_decay", ">= 0", weight_decay_);
  LS_CHECK_ARG(!nesterov_ || (momentum_ > 0 && dampening_ == 0), op,
               "expected nesterov to come with momentum > 0 and dampening = 0, got momentum ", momentum_,
               ", dampening ", dampening_);
}

std::vector<std::string> SGDOptions::keys() const { return {"lr", "momentum", "dampening", "weight_decay", "nesterov"}; }

std::vector<std::string> SGDOptions::state_names() const {
  if (momentum_ == 0) return {};
  return {"momentum_buffer"};
}

void SGDOptions::save(const std::string& prefix, StateDict& sd) const {
  detail::put_f64(sd, prefix + "lr", lr_);
  detail::put_f64(sd, prefix + "momentum", momentum_);
  detail::put_f64(sd, prefix + "dampening", dampening_);
  detail::put_f64(sd, prefix + "weight_decay", weight_decay_);
  detail::put_bool(sd, prefix + "nesterov", nesterov_);
}

void SGDOptions::load(const std::string& prefix, const StateDict& sd, const std::string& op) {
  lr_ = detail::get_f64(sd, prefix + "lr", op);
  momentum_ = detail::get_f64(sd, prefix + "momentum", op);
  dampening_ = detail::get_f64(sd, prefix + "dampening", op);
  weight_decay_ = detail::get_f64(sd, prefix + "weight_decay", op);
  nesterov_ = detail::get_bool(sd, prefix + "nesterov", op);
}

SGD::SGD(std::vector<Tensor> params, const SGDOptions& defaults)
    : SGD(std::vector<ParamGroup>{ParamGroup(std::move(params))}, defaults) {}

SGD::SGD(std::vector<ParamGroup> groups, const SGDOptions& defaults) : Optimizer("SGD", std::move(groups), defaults) {}

void SGD::step() {
  NoGradGuard ng;
  struct Update {
    Tensor p, buf, grad;
    SgdStep s;
  };
  std::vector<Update> updates;
  std::vector<int64_t> sizes;
  bool cpu = true;
  for (size_t g = 0; g < num_param_groups(); ++g) {
    const SGDOptions& o = options_as<SGDOptions>(g);
    for (size_t k = 0; k < params(g).size(); ++k) {
      const Tensor& p = params(g)[k];
      const Tensor grad = p.grad().defined() ? p.grad().contiguous() : Tensor();
      if (!grad.defined()) continue;
      const size_t index = first_index(g) + k;
      SgdStep s;
      s.lr = o.lr();
      s.momentum = o.momentum();
      s.dampening = o.dampening();
      s.weight_decay = o.weight_decay();
      s.nesterov = o.nesterov();
      Tensor buf;
      if (s.momentum != 0) {
        s.first = !has_state(index, "momentum_buffer");
        buf = state_slot(index, "momentum_buffer", p);
      }
      updates.push_back({p, buf, grad, s});
      sizes.push_back(p.numel());
      cpu = cpu && p.device() == Device::cpu;
    }
  }
  update_elementwise(sizes, cpu, [&](size_t i, int64_t b, int64_t e) {
    const Update& u = updates[i];
    sgd_step_(u.p, u.buf, u.grad, u.s, b, e);
  });
}

}  // namespace lockstep::optim
