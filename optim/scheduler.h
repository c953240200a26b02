// Learning-rate schedulers with PyTorch's torch.optim.lr_scheduler semantics. A scheduler
// sets each parameter group's lr; construction performs step 0, and step() is called once
// per epoch (or iteration) after optimizer.step(). All arithmetic is in double, in PyTorch's
// order (Python evaluates left to right), with e = last_epoch, lr = the group's current lr
// and base = its initial_lr:
//
//   StepLR(step_size s, gamma)    get_lr:  e == 0 or e % s != 0 ? lr : lr * gamma
//                                 closed:  base * gamma^(e / s)            (integer e / s)
//   CosineAnnealingLR(T, eta)     get_lr:  e == 0                        : lr
//                                          first step() and e > 0        : eta + (base - eta) * (1 + cos(e*pi / T)) / 2
//                                          (e - 1 - T) % (2T) == 0       : lr + (base - eta) * (1 - cos(pi / T)) / 2
//                                          otherwise : (1 + cos(pi*e / T)) / (1 + cos(pi*(e - 1) / T)) * (lr - eta) + eta
//                                 closed:  eta + (base - eta) * (1 + cos(pi*e / T)) / 2
//   LinearLR(sf, ef, n)           get_lr:  e == 0 : lr * sf;  e > n : lr;
//                                          otherwise lr * (1 + (ef - sf) / (n*sf + (e - 1)*(ef - sf)))
//                                 closed:  base * (sf + (ef - sf) * min(n, e) / n)
//   SequentialLR(scheds, milestones): epoch e runs scheds[i], i = number of milestones <= e;
//                                 at a milestone scheds[i] restarts with step_to(0) (closed form).
//
// step() uses get_lr, the recursive form, because PyTorch's step() does; the closed form is
// used only by step_to(epoch) (PyTorch's deprecated step(epoch)) and at SequentialLR
// milestones. The two agree up to rounding; the recursive one is what reproduces PyTorch.
// cos is sched_cos below, not libm, so the lrs are the same bits on every machine. An lr
// that rounds below zero (LinearLR decaying to end_factor 0) is set as +0.
//
// State dict: last_epoch, _step_count (int64 0-d), base_lrs, _last_lr (float64 [groups]);
// SequentialLR: last_epoch, _last_lr and _schedulers.<i>.<key> of each child. The
// hyperparameters (step_size, T_max, ...) are constructor arguments and are not saved.
// The group lrs themselves are in the optimizer's state dict: checkpoint both.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/state_dict.h"
#include "optim/optimizer.h"

namespace lockstep::optim {

// cos(x) for |x| <= 2^20 from IEEE double operations only: x = k*pi/2 + r (k rounded with
// the 1.5*2^52 trick, pi/2 in three parts with fma), then the Taylor polynomial of sin or
// cos in r (|r| <= pi/4, terms to r^19) by Horner with fma. Within 1 ulp of the true cosine
// (tests/test_scheduler.cpp measures it against libm), clamped to [-1, 1].
double sched_cos(double x);

class LRScheduler : public Stateful {
 public:
  virtual ~LRScheduler() = default;
  LRScheduler(const LRScheduler&) = delete;
  LRScheduler& operator=(const LRScheduler&) = delete;

  virtual void step();                  // the next epoch, recursive form
  void step_to(int64_t epoch);          // jump to `epoch`, closed form
  int64_t last_epoch() const { return last_epoch_; }
  const std::vector<double>& get_last_lr() const { return last_lr_; }
  const std::vector<double>& base_lrs() const { return base_lrs_; }

  StateDict state_dict() const override;
  // Checks every key first and changes nothing on error (std::invalid_argument naming it).
  void load_state_dict(const StateDict& sd) override;

 protected:
  // Records initial_lr in groups that have none and takes base_lrs from it; the derived
  // constructor then calls initial_step() (a virtual call cannot reach it from here).
  LRScheduler(Optimizer& optimizer, std::string name);
  void initial_step();
  virtual std::vector<double> get_lr() const = 0;
  virtual std::vector<double> closed_form_lr() const = 0;
  void apply(const std::vector<double>& lrs);

  Optimizer& opt_;
  std::string name_;
  std::vector<double> base_lrs_;
  int64_t last_epoch_ = -1;
  int64_t step_count_ = 0;
  std::vector<double> last_lr_;

  friend class SequentialLR;
};

class StepLR : public LRScheduler {
 public:
  StepLR(Optimizer& optimizer, int64_t step_size, double gamma = 0.1);

 protected:
  std::vector<double> get_lr() const override;
  std::vector<double> closed_form_lr() const override;

 private:
  int64_t step_size_;
  double gamma_;
};

class CosineAnnealingLR : public LRScheduler {
 public:
  CosineAnnealingLR(Optimizer& optimizer, int64_t T_max, double eta_min = 0.0);

 protected:
  std::vector<double> get_lr() const override;
  std::vector<double> closed_form_lr() const override;

 private:
  int64_t T_max_;
  double eta_min_;
};

class LinearLR : public LRScheduler {
 public:
  LinearLR(Optimizer& optimizer, double start_factor = 1.0 / 3, double end_factor = 1.0, int64_t total_iters = 5);

 protected:
  std::vector<double> get_lr() const override;
  std::vector<double> closed_form_lr() const override;

 private:
  double start_factor_, end_factor_;
  int64_t total_iters_;
};

class SequentialLR : public LRScheduler {
 public:
  // schedulers: built on `optimizer`, in order; milestones: increasing epochs, one fewer.
  SequentialLR(Optimizer& optimizer, std::vector<std::shared_ptr<LRScheduler>> schedulers,
               std::vector<int64_t> milestones);
  void step() override;
  StateDict state_dict() const override;
  void load_state_dict(const StateDict& sd) override;

 protected:
  std::vector<double> get_lr() const override;
  std::vector<double> closed_form_lr() const override;

 private:
  std::vector<std::shared_ptr<LRScheduler>> scheds_;
  std::vector<int64_t> milestones_;
};

// Linear warmup then cosine decay, the common recipe: LinearLR(start_factor, 1, warmup_iters)
// for epochs [0, warmup_iters), then CosineAnnealingLR(T_max = total_iters - warmup_iters,
// eta_min) restarted at warmup_iters: SequentialLR with milestone warmup_iters.
std::shared_ptr<SequentialLR> make_warmup_cosine(Optimizer& optimizer, int64_t warmup_iters, int64_t total_iters,
                                                 double start_factor = 1e-3, double eta_min = 0.0);

}  // namespace lockstep::optim
