// LR schedulers (optim/scheduler.h): PyTorch's get_lr / _get_closed_form_lr written with
// the same parenthesisation, so each lr is the same double PyTorch computes given the same
// cosines; the cosines come from sched_cos (IEEE double operations only).
#include "optim/scheduler.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "base/optim_step.h"  // optim_powi
#include "optim/optimizer.h"

namespace lockstep::optim {

// ---- sched_cos ----
// k = round(x * 2/pi) by adding and subtracting 1.5*2^52; r = x - k*pi/2 with pi/2 =
// P1 + P2 + P3 (fdlibm's split: P1 and P2 have 33 significant bits, so k*P1 and k*P2 are
// exact for |k| < 2^20 and the fma steps lose nothing that matters); then by the quadrant
// k mod 4: cos r, -sin r, -cos r, sin r. The polynomials are the Taylor series to r^18 (cos)
// and r^19 (sin); for |r| <= pi/4 the next terms are below 2^-66 relative.
double sched_cos(double x) {
  const double magic = 0x1.8p52;
  const double kd = (x * 0x1.45f306dc9c883p-1 + magic) - magic;  // x * 2/pi, to nearest integer
  double r = std::fma(-kd, 0x1.921fb544p0, x);                   // P1
  r = std::fma(-kd, 0x1.0b4611a6p-34, r);                         // P2
  r = std::fma(-kd, 0x1.3198a2e037073p-69, r);                    // P3
  const double z = r * r;
  // cos r = 1 + z*(-1/2! + z*(1/4! - ...)),  sin r = r + r*z*(-1/3! + z*(1/5! - ...))
  double c = -1.5619206968586225e-16;  // -1/18!
  c = std::fma(c, z, 4.779477332387385e-14);    // 1/16!
  c = std::fma(c, z, -1.1470745597729725e-11);  // -1/14!
  c = std::fma(c, z, 2.08767569878681e-09);     // 1/12!
  c = std::fma(c, z, -2.755731922398589e-07);   // -1/10!
  c = std::fma(c, z, 2.48015873015873e-05);     // 1/8!
  c = std::fma(c, z, -0.001388888888888889);    // -1/6!
  c = std::fma(c, z, 0.041666666666666664);     // 1/4!
  c = std::fma(c, z, -0.5);                     // -1/2!
  const double cos_r = std::fma(c, z, 1.0);
  double s = 8.22063524662433e-18;  // 1/19!
  s = std::fma(s, z, -2.8114572543455206e-15);  // -1/17!
  s = std::fma(s, z, 7.647163731819816e-13);    // 1/15!
  s = std::fma(s, z, -1.6059043836821613e-10);  // -1/13!
  s = std::fma(s, z, 2.505210838544172e-08);    // 1/11!
  s = std::fma(s, z, -2.7557319223985893e-06);  // -1/9!
  s = std::fma(s, z, 0.0001984126984126984);    // 1/7!
  s = std::fma(s, z, -0.008333333333333333);    // -1/5!
  s = std::fma(s, z, 0.16666666666666666);      // 1/3!
  const double sin_r = std::fma(r * z, -s, r);  // r - r*z*(1/3! - ...)
  const int64_t q = static_cast<int64_t>(kd) & 3;  // two's complement: k mod 4 for negative k too
  const double y = q == 0 ? cos_r : q == 1 ? -sin_r : q == 2 ? -cos_r : sin_r;
  return std::min(1.0, std::max(-1.0, y));
}

// ---- LRScheduler ----

LRScheduler::LRScheduler(Optimizer& optimizer, std::string name) : opt_(optimizer), name_(std::move(name)) {
  for (size_t g = 0; g < opt_.num_param_groups(); ++g) {
    if (!opt_.initial_lr(g)) opt_.set_initial_lr(g, opt_.lr(g));
    base_lrs_.push_back(*opt_.initial_lr(g));
  }
}

void LRScheduler::initial_step() {
  step_count_ = 0;
  step();
}

void LRScheduler::apply(const std::vector<double>& lrs) {
  // A schedule that should end at 0 can round to a tiny negative lr (LinearLR with
  // end_factor 0 gives about -1e-16 * lr); it is set as +0, where PyTorch keeps the -1e-16.
  for (size_t g = 0; g < lrs.size(); ++g) opt_.set_lr(g, lrs[g] < 0 ? 0.0 : lrs[g]);
  last_lr_.clear();
  for (size_t g = 0; g < opt_.num_param_groups(); ++g) last_lr_.push_back(opt_.lr(g));
}

void LRScheduler::step() {
  ++step_count_;
  ++last_epoch_;
  apply(get_lr());
}

void LRScheduler::step_to(int64_t epoch) {
  LS_CHECK_ARG(epoch >= 0, name_, "expected epoch >= 0, got ", epoch);
  ++step_count_;
  last_epoch_ = epoch;
  apply(closed_form_lr());
}

StateDict LRScheduler::state_dict() const {
  StateDict sd;
  const int64_t n = static_cast<int64_t>(base_lrs_.size());
  sd.insert("last_epoch", Tensor::scalar(static_cast<double>(last_epoch_), DType::i64));
  sd.insert("_step_count", Tensor::scalar(static_cast<double>(step_count_), DType::i64));
  sd.insert("base_lrs", Tensor::from_vector(base_lrs_, {n}));
  sd.insert("_last_lr", Tensor::from_vector(last_lr_, {n}));
  return sd;
}

void LRScheduler::load_state_dict(const StateDict& sd) {
  const std::string op = name_ + ".load_state_dict";
  const int64_t n = static_cast<int64_t>(base_lrs_.size());
  const std::set<std::string> known = {"last_epoch", "_step_count", "base_lrs", "_last_lr"};
  for (auto& k : sd.keys()) LS_CHECK_ARG(known.count(k), op, "unexpected key '", k, "'");
  const int64_t last_epoch = detail::get_i64(sd, "last_epoch", op);
  const int64_t step_count = detail::get_i64(sd, "_step_count", op);
  LS_CHECK_ARG(last_epoch >= -1 && step_count >= 0, op, "expected last_epoch >= -1 and _step_count >= 0, got ",
               last_epoch, " and ", step_count);
  std::vector<double> base = detail::get_f64_vec(sd, "base_lrs", n, op);
  std::vector<double> last = detail::get_f64_vec(sd, "_last_lr", n, op);
  last_epoch_ = last_epoch;
  step_count_ = step_count;
  base_lrs_ = std::move(base);
  last_lr_ = std::move(last);
}

// ---- StepLR ----

StepLR::StepLR(Optimizer& optimizer, int64_t step_size, double gamma)
    : LRScheduler(optimizer, "StepLR"), step_size_(step_size), gamma_(gamma) {
  LS_CHECK_ARG(step_size >= 1, name_, "expected step_size >= 1, got ", step_size);
  detail::check_option(gamma >= 0 && std::isfinite(gamma), name_, "gamma", ">= 0 and finite", gamma);
  initial_step();
}

std::vector<double> StepLR::get_lr() const {
  std::vector<double> out;
  for (size_t g = 0; g < base_lrs_.size(); ++g) {
    const double lr = opt_.lr(g);
    out.push_back(last_epoch_ == 0 || last_epoch_ % step_size_ != 0 ? lr : lr * gamma_);
  }
  return out;
}

std::vector<double> StepLR::closed_form_lr() const {
  std::vector<double> out;
  for (double base : base_lrs_) out.push_back(base * optim_powi(gamma_, last_epoch_ / step_size_));
  return out;
}

// ---- CosineAnnealingLR ----

CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, int64_t T_max, double eta_min)
    : LRScheduler(optimizer, "CosineAnnealingLR"), T_max_(T_max), eta_min_(eta_min) {
  LS_CHECK_ARG(T_max >= 1, name_, "expected T_max >= 1, got ", T_max);
  detail::check_option(eta_min >= 0 && std::isfinite(eta_min), name_, "eta_min", ">= 0 and finite", eta_min);
  initial_step();
}

std::vector<double> CosineAnnealingLR::get_lr() const {
  const double pi = 3.141592653589793;
  const double e = static_cast<double>(last_epoch_), T = static_cast<double>(T_max_);
  std::vector<double> out;
  for (size_t g = 0; g < base_lrs_.size(); ++g) {
    const double lr = opt_.lr(g), base = base_lrs_[g];
    if (last_epoch_ == 0) {
      out.push_back(lr);
    } else if (step_count_ == 1 && last_epoch_ > 0) {
      out.push_back(eta_min_ + (base - eta_min_) * (1 + sched_cos(e * pi / T)) / 2);
    } else if ((last_epoch_ - 1 - T_max_) % (2 * T_max_) == 0) {
      out.push_back(lr + (base - eta_min_) * (1 - sched_cos(pi / T)) / 2);
    } else {
      out.push_back((1 + sched_cos(pi * e / T)) / (1 + sched_cos(pi * (e - 1) / T)) * (lr - eta_min_) + eta_min_);
    }
  }
  return out;
}

std::vector<double> CosineAnnealingLR::closed_form_lr() const {
  const double pi = 3.141592653589793;
  const double e = static_cast<double>(last_epoch_), T = static_cast<double>(T_max_);
  std::vector<double> out;
  for (double base : base_lrs_) out.push_back(eta_min_ + (base - eta_min_) * (1 + sched_cos(pi * e / T)) / 2);
  return out;
}

// ---- LinearLR ----

LinearLR::LinearLR(Optimizer& optimizer, double start_factor, double end_factor, int64_t total_iters)
    : LRScheduler(optimizer, "LinearLR"), start_factor_(start_factor), end_factor_(end_factor), total_iters_(total_iters) {
  detail::check_option(start_factor > 0 && start_factor <= 1, name_, "start_factor", "in (0, 1]", start_factor);
  detail::check_option(end_factor >= 0 && end_factor <= 1, name_, "end_factor", "in [0, 1]", end_factor);
  LS_CHECK_ARG(total_iters >= 1, name_, "expected total_iters >= 1, got ", total_iters);
  initial_step();
}

std::vector<double> LinearLR::get_lr() const {
  const double sf = start_factor_, ef = end_factor_;
  const double n = static_cast<double>(total_iters_), e = static_cast<double>(last_epoch_);
  std::vector<double> out;
  for (size_t g = 0; g < base_lrs_.size(); ++g) {
    const double lr = opt_.lr(g);
    if (last_epoch_ == 0) out.push_back(lr * sf);
    else if (last_epoch_ > total_iters_) out.push_back(lr);
    else out.push_back(lr * (1.0 + (ef - sf) / (n * sf + (e - 1) * (ef - sf))));
  }
  return out;
}

std::vector<double> LinearLR::closed_form_lr() const {
  const double sf = start_factor_, ef = end_factor_, n = static_cast<double>(total_iters_);
  const double e = static_cast<double>(std::min(total_iters_, last_epoch_));
  std::vector<double> out;
  for (double base : base_lrs_) out.push_back(base * (sf + (ef - sf) * e / n));
  return out;
}

// ---- SequentialLR ----

SequentialLR::SequentialLR(Optimizer& optimizer, std::vector<std::shared_ptr<LRScheduler>> schedulers,
                           std::vector<int64_t> milestones)
    : LRScheduler(optimizer, "SequentialLR"), scheds_(std::move(schedulers)), milestones_(std::move(milestones)) {
  LS_CHECK_ARG(!scheds_.empty(), name_, "expected at least one scheduler");
  for (size_t i = 0; i < scheds_.size(); ++i)
    LS_CHECK_ARG(scheds_[i] && &scheds_[i]->opt_ == &opt_, name_, "expected every scheduler to belong to the same "
                 "optimizer, scheduler ", i, " does not");
  LS_CHECK_ARG(milestones_.size() + 1 == scheds_.size(), name_, "expected ", scheds_.size() - 1,
               " milestones (one fewer than schedulers), got ", milestones_.size());
  for (size_t i = 0; i < milestones_.size(); ++i)
    LS_CHECK_ARG(milestones_[i] >= 1 && (i == 0 || milestones_[i] > milestones_[i - 1]), name_,
                 "expected increasing milestones >= 1, got ", milestones_[i], " at position ", i);
  // PyTorch: reset the lrs to initial_lr, undo the children's initial steps, and redo the
  // first one's only.
  last_epoch_ = 0;
  for (size_t g = 0; g < opt_.num_param_groups(); ++g) opt_.set_lr(g, *opt_.initial_lr(g));
  for (auto& s : scheds_) s->last_epoch_ -= 1;
  scheds_[0]->initial_step();
  last_lr_ = scheds_[0]->get_last_lr();
}

void SequentialLR::step() {
  ++last_epoch_;
  const size_t idx = static_cast<size_t>(std::upper_bound(milestones_.begin(), milestones_.end(), last_epoch_) -
                                         milestones_.begin());
  LRScheduler& s = *scheds_[idx];
  if (idx > 0 && milestones_[idx - 1] == last_epoch_) s.step_to(0);
  else s.step();
  last_lr_ = s.get_last_lr();
}

std::vector<double> SequentialLR::get_lr() const { return last_lr_; }

std::vector<double> SequentialLR::closed_form_lr() const {
  throw std::invalid_argument("[SequentialLR] step_to is not supported; call step() once per epoch");
}

StateDict SequentialLR::state_dict() const {
  StateDict sd;
  sd.insert("last_epoch", Tensor::scalar(static_cast<double>(last_epoch_), DType::i64));
  sd.insert("_last_lr", Tensor::from_vector(last_lr_, {static_cast<int64_t>(last_lr_.size())}));
  for (size_t i = 0; i < scheds_.size(); ++i) {
    const StateDict child = scheds_[i]->state_dict();
    for (auto& kv : child.items()) sd.insert(str_cat("_schedulers.", i, ".", kv.first), kv.second);
  }
  return sd;
}

void SequentialLR::load_state_dict(const StateDict& sd) {
  const std::string op = name_ + ".load_state_dict";
  std::vector<StateDict> child(scheds_.size());
  for (auto& kv : sd.items()) {
    const std::string& k = kv.first;
    if (k == "last_epoch" || k == "_last_lr") continue;
    bool placed = false;
    for (size_t i = 0; i < scheds_.size() && !placed; ++i) {
      const std::string prefix = str_cat("_schedulers.", i, ".");
      if (k.compare(0, prefix.size(), prefix) == 0) {
        child[i].insert(k.substr(prefix.size()), kv.second);
        placed = true;
      }
    }
    LS_CHECK_ARG(placed, op, "unexpected key '", k, "'");
  }
  const int64_t last_epoch = detail::get_i64(sd, "last_epoch", op);
  std::vector<double> last = detail::get_f64_vec(sd, "_last_lr", static_cast<int64_t>(last_lr_.size()), op);
  // Check every child on a scratch copy of its state before loading any.
  std::vector<StateDict> saved;
  for (auto& s : scheds_) saved.push_back(s->state_dict());
  size_t i = 0;
  try {
    for (; i < scheds_.size(); ++i) scheds_[i]->load_state_dict(child[i]);
  } catch (const std::invalid_argument& e) {
    for (size_t j = 0; j < i; ++j) scheds_[j]->load_state_dict(saved[j]);
    throw std::invalid_argument(str_cat("[", op, "] in _schedulers.", i, ": ", e.what()));
  }
  last_epoch_ = last_epoch;
  last_lr_ = std::move(last);
}

std::shared_ptr<SequentialLR> make_warmup_cosine(Optimizer& optimizer, int64_t warmup_iters, int64_t total_iters,
                                                 double start_factor, double eta_min) {
  LS_CHECK_ARG(warmup_iters >= 1 && total_iters > warmup_iters, "make_warmup_cosine",
               "expected 1 <= warmup_iters < total_iters, got ", warmup_iters, " and ", total_iters);
  auto warm = std::make_shared<LinearLR>(optimizer, start_factor, 1.0, warmup_iters);
  auto cos = std::make_shared<CosineAnnealingLR>(optimizer, total_iters - warmup_iters, eta_min);
  return std::make_shared<SequentialLR>(optimizer, std::vector<std::shared_ptr<LRScheduler>>{warm, cos},
                                        std::vector<int64_t>{warmup_iters});
}

}  // namespace lockstep::optim
