// EarlyStopping (optim/early_stopping.h): the improvement test, the bad-epoch count, and a
// deep copy of the model state at the best epoch.
#include "optim/early_stopping.h"

#include <cmath>
#include <limits>

#include "core/autograd.h"
#include "optim/optimizer.h"

namespace lockstep::optim {

namespace {
constexpr const char* kOp = "EarlyStopping";
constexpr const char* kBest = "best_state.";

StateDict deep_copy(const StateDict& sd, const std::string& prefix) {
  NoGradGuard ng;
  StateDict out;
  for (auto& kv : sd.items()) out.insert(prefix + kv.first, kv.second.detach().clone());
  return out;
}
}  // namespace

EarlyStopping::EarlyStopping(EarlyStoppingOptions options) : opt_(options) {
  LS_CHECK_ARG(opt_.patience_ >= 0, kOp, "expected patience >= 0, got ", opt_.patience_);
  detail::check_option(opt_.min_delta_ >= 0, kOp, "min_delta", ">= 0", opt_.min_delta_);
  best_ = opt_.mode_ == MetricMode::min ? std::numeric_limits<double>::infinity()
                                        : -std::numeric_limits<double>::infinity();
}

bool EarlyStopping::improves(double metric) const {
  if (opt_.mode_ == MetricMode::min) return metric < best_ - opt_.min_delta_;
  return metric > best_ + opt_.min_delta_;
}

bool EarlyStopping::step(double metric, Stateful* model) {
  LS_CHECK_ARG(!opt_.restore_ || model != nullptr, kOp,
               "restore_best_weights is on: expected the model as step()'s second argument");
  const int64_t epoch = epoch_++;
  if (stopped_) return true;
  if (opt_.check_finite_ && !std::isfinite(metric)) {
    stopped_ = true;
  } else if (improves(metric)) {
    best_ = metric;
    best_epoch_ = epoch;
    bad_ = 0;
    if (opt_.restore_) best_state_ = deep_copy(model->state_dict(), "");
  } else {
    stopped_ = ++bad_ >= opt_.patience_;
  }
  if (stopped_ && opt_.restore_ && has_best_state()) restore_best(*model);
  return stopped_;
}

void EarlyStopping::restore_best(Stateful& model) const {
  LS_CHECK_ARG(has_best_state(), kOp, "no best weights were kept (restore_best_weights off, or no improving epoch)");
  model.load_state_dict(best_state_);
}

StateDict EarlyStopping::state_dict() const {
  StateDict sd;
  sd.insert("epoch", Tensor::scalar(static_cast<double>(epoch_), DType::i64));
  sd.insert("best_epoch", Tensor::scalar(static_cast<double>(best_epoch_), DType::i64));
  sd.insert("num_bad_epochs", Tensor::scalar(static_cast<double>(bad_), DType::i64));
  sd.insert("stopped", Tensor::scalar(stopped_ ? 1.0 : 0.0, DType::i64));
  sd.insert("best", Tensor::scalar(best_, DType::f64));
  const StateDict copy = deep_copy(best_state_, kBest);
  for (auto& kv : copy.items()) sd.insert(kv.first, kv.second);
  return sd;
}

void EarlyStopping::load_state_dict(const StateDict& sd) {
  const std::string op = std::string(kOp) + ".load_state_dict";
  const std::string prefix = kBest;
  StateDict best_state;
  for (auto& kv : sd.items()) {
    const std::string& k = kv.first;
    if (k == "epoch" || k == "best_epoch" || k == "num_bad_epochs" || k == "stopped" || k == "best") continue;
    LS_CHECK_ARG(k.compare(0, prefix.size(), prefix) == 0 && k.size() > prefix.size(), op, "unexpected key '", k, "'");
    LS_CHECK_ARG(kv.second.defined(), op, "'", k, "' is an undefined tensor");
    best_state.insert(k.substr(prefix.size()), kv.second);
  }
  const int64_t epoch = detail::get_i64(sd, "epoch", op);
  const int64_t best_epoch = detail::get_i64(sd, "best_epoch", op);
  const int64_t bad = detail::get_i64(sd, "num_bad_epochs", op);
  const int64_t stopped = detail::get_i64(sd, "stopped", op);
  const double best = detail::get_f64(sd, "best", op);
  LS_CHECK_ARG(epoch >= 0 && best_epoch >= -1 && best_epoch < epoch && bad >= 0 && bad <= epoch &&
                   (stopped == 0 || stopped == 1),
               op, "inconsistent counters: epoch ", epoch, ", best_epoch ", best_epoch, ", num_bad_epochs ", bad,
               ", stopped ", stopped);
  epoch_ = epoch;
  best_epoch_ = best_epoch;
  bad_ = bad;
  stopped_ = stopped == 1;
  best_ = best;
  best_state_ = deep_copy(best_state, "");
}

}  // namespace lockstep::optim
