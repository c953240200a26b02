// EarlyStopping: stop training when a monitored metric has stopped improving.
//
// Once per epoch, step(metric): with mode min an epoch improves when metric < best - min_delta
// (max: metric > best + min_delta; best starts at +inf / -inf, PyTorch's ReduceLROnPlateau
// test in absolute mode). An improving epoch becomes the best (and, with
// restore_best_weights, a deep copy of the model's state dict is kept) and resets the count
// of bad epochs; any other epoch adds one. step() returns true, and keeps returning true,
// once that count reaches `patience` (Keras and PyTorch Lightning: patience = the number of
// epochs without improvement to tolerate before stopping), or, with check_finite, at the
// first NaN or infinite metric. When it stops with restore_best_weights, the best copy is
// loaded back into the model.
//
// State dict: epoch, best_epoch, num_bad_epochs, stopped (int64 0-d), best (float64 0-d),
// and best_state.<model key> for the kept copy: training resumed from a checkpoint stops at
// the same epoch with the same weights.
#pragma once
#include <cstdint>

#include "core/state_dict.h"

namespace lockstep::optim {

enum class MetricMode { min, max };

struct EarlyStoppingOptions {
  EarlyStoppingOptions& mode(MetricMode v) { mode_ = v; return *this; }
  EarlyStoppingOptions& patience(int64_t v) { patience_ = v; return *this; }
  EarlyStoppingOptions& min_delta(double v) { min_delta_ = v; return *this; }
  EarlyStoppingOptions& restore_best_weights(bool v) { restore_ = v; return *this; }
  EarlyStoppingOptions& check_finite(bool v) { check_finite_ = v; return *this; }
  MetricMode mode_ = MetricMode::min;
  int64_t patience_ = 10;
  double min_delta_ = 0.0;
  bool restore_ = false;
  bool check_finite_ = true;
};

class EarlyStopping : public Stateful {
 public:
  // Throws std::invalid_argument naming a bad option (patience < 0, min_delta < 0 or NaN).
  explicit EarlyStopping(EarlyStoppingOptions options = EarlyStoppingOptions());

  // Records the metric of the epoch just finished; returns true when training should stop.
  // With restore_best_weights, `model` (any Stateful: an nn::Module) is required; its
  // state_dict() is copied at the best epoch and loaded back when training stops.
  bool step(double metric, Stateful* model = nullptr);

  bool should_stop() const { return stopped_; }
  int64_t epochs() const { return epoch_; }          // step() calls so far
  int64_t best_epoch() const { return best_epoch_; }  // 0-based; -1 before any improvement
  double best() const { return best_; }
  int64_t num_bad_epochs() const { return bad_; }
  bool has_best_state() const { return best_state_.size() > 0; }
  // Loads the kept copy into `model` (throws if none was kept).
  void restore_best(Stateful& model) const;

  StateDict state_dict() const override;
  void load_state_dict(const StateDict& sd) override;  // checks everything before changing anything

 private:
  bool improves(double metric) const;
  EarlyStoppingOptions opt_;
  int64_t epoch_ = 0, best_epoch_ = -1, bad_ = 0;
  double best_;
  bool stopped_ = false;
  StateDict best_state_;
};

}  // namespace lockstep::optim
