// EarlyStopping: the stopping epoch on scripted metric sequences, min_delta, max mode,
// restoring the best weights, non-finite metrics and a checkpointed resume.
#include <catch2/catch.hpp>

#include <cmath>

#include "nn/linear.h"
#include "optim/early_stopping.h"
#include "test_util.h"

using namespace lockstep;
using Catch::Contains;
using optim::EarlyStopping;
using optim::EarlyStoppingOptions;

namespace {

// Runs the sequence; returns the 0-based epoch at which step() first said stop, or -1.
int64_t stop_epoch(EarlyStopping& es, const std::vector<double>& metrics, nn::Module* model = nullptr) {
  for (size_t e = 0; e < metrics.size(); ++e) {
    if (model) Tensor(model->state_dict().at("weight")).fill_(static_cast<double>(e));  // "training"
    if (es.step(metrics[e], model)) return static_cast<int64_t>(e);
  }
  return -1;
}

}  // namespace

TEST_CASE("early stopping: stops after `patience` epochs without improvement", "[optim]") {
  const std::vector<double> loss = {1.0, 0.8, 0.85, 0.79, 0.787, 0.80, 0.81, 0.5};
  SECTION("min_delta 0: 0.787 improves on 0.79") {
    EarlyStopping es(EarlyStoppingOptions().patience(2));
    REQUIRE(stop_epoch(es, loss) == 6);  // best at 4 (0.787); 5, 6 are bad
    REQUIRE(es.best_epoch() == 4);
    REQUIRE(es.best() == 0.787);
  }
  SECTION("min_delta 0.005: 0.787 is not enough") {
    EarlyStopping es(EarlyStoppingOptions().patience(2).min_delta(0.005));
    REQUIRE(stop_epoch(es, loss) == 5);  // best at 3 (0.79 < 0.8 - 0.005); 4, 5 are bad
    REQUIRE(es.best_epoch() == 3);
    REQUIRE(es.num_bad_epochs() == 2);
    REQUIRE(es.should_stop());
    REQUIRE(es.step(0.1));  // stays stopped
  }
  SECTION("patience 0 stops at the first non-improving epoch; a long patience never") {
    EarlyStopping es0(EarlyStoppingOptions().patience(0));
    REQUIRE(stop_epoch(es0, loss) == 2);
    EarlyStopping es9(EarlyStoppingOptions().patience(9));
    REQUIRE(stop_epoch(es9, loss) == -1);
    REQUIRE(es9.best_epoch() == 7);
  }
  SECTION("max mode") {
    EarlyStopping es(EarlyStoppingOptions().mode(optim::MetricMode::max).patience(3).min_delta(0.01));
    REQUIRE(stop_epoch(es, {0.5, 0.6, 0.605, 0.62, 0.61, 0.625, 0.60, 0.9}) == 6);  // best 0.62 at 3
    REQUIRE(es.best_epoch() == 3);
  }
  SECTION("a NaN metric stops at once (check_finite), or counts as bad without it") {
    EarlyStopping es(EarlyStoppingOptions().patience(5));
    REQUIRE(stop_epoch(es, {1.0, 0.9, std::nan(""), 0.1}) == 2);
    EarlyStopping lax(EarlyStoppingOptions().patience(1).check_finite(false));
    REQUIRE(stop_epoch(lax, {1.0, std::nan(""), 0.1}) == 1);
  }
}

TEST_CASE("early stopping: restores the weights of the best epoch", "[optim]") {
  nn::Linear model(3, 2);
  EarlyStopping es(EarlyStoppingOptions().patience(2).restore_best_weights(true));
  REQUIRE(stop_epoch(es, {1.0, 0.5, 0.7, 0.6}, &model) == 3);
  // the weights were filled with the epoch number: epoch 1 was the best
  for (float w : model.weight().to_vector<float>()) REQUIRE(w == 1.f);
  REQUIRE(es.has_best_state());
  model.weight().fill_(9.0);
  es.restore_best(model);
  for (float w : model.weight().to_vector<float>()) REQUIRE(w == 1.f);
  EarlyStopping no_model(EarlyStoppingOptions().restore_best_weights(true));
  REQUIRE_THROWS_WITH(no_model.step(1.0), Contains("expected the model"));
  EarlyStopping no_copy;
  REQUIRE_THROWS_WITH(no_copy.restore_best(model), Contains("no best weights"));
}

TEST_CASE("early stopping: state dict resume stops at the same epoch with the same weights", "[optim]") {
  const std::vector<double> loss = {1.0, 0.7, 0.75, 0.72, 0.69, 0.8, 0.9, 0.95, 0.99};
  nn::Linear ma(2, 2), mb(2, 2);
  EarlyStopping whole(EarlyStoppingOptions().patience(3).restore_best_weights(true));
  REQUIRE(stop_epoch(whole, loss, &ma) == 7);  // best at 4, then 5, 6, 7 are bad
  // interrupted after epoch 4, resumed in a fresh object from the state dict
  EarlyStopping first(EarlyStoppingOptions().patience(3).restore_best_weights(true));
  for (size_t e = 0; e < 5; ++e) {
    mb.weight().fill_(static_cast<double>(e));
    REQUIRE_FALSE(first.step(loss[e], &mb));
  }
  const nn::StateDict sd = first.state_dict();
  REQUIRE(sd.contains("best_state.weight"));
  EarlyStopping resumed(EarlyStoppingOptions().patience(3).restore_best_weights(true));
  resumed.load_state_dict(sd);
  REQUIRE(resumed.best_epoch() == 4);
  int64_t stopped = -1;
  for (size_t e = 5; e < loss.size() && stopped < 0; ++e) {
    mb.weight().fill_(static_cast<double>(e));
    if (resumed.step(loss[e], &mb)) stopped = static_cast<int64_t>(e);
  }
  REQUIRE(stopped == 7);
  REQUIRE(resumed.best_epoch() == whole.best_epoch());
  REQUIRE(equal_bits(ma.weight(), mb.weight()));
  // checked loading
  nn::StateDict bad;
  for (auto& kv : sd.items())
    if (kv.first != "best") bad.insert(kv.first, kv.second);
  REQUIRE_THROWS_WITH(resumed.load_state_dict(bad), Contains("missing key 'best'"));
  bad.insert("best", Tensor::scalar(0.5, DType::f32));
  REQUIRE_THROWS_WITH(resumed.load_state_dict(bad), Contains("'best'") && Contains("float64"));
  REQUIRE(resumed.epochs() == 8);  // unchanged by the failed loads
}

TEST_CASE("early stopping: bad options throw naming them", "[optim]") {
  REQUIRE_THROWS_WITH(EarlyStopping(EarlyStoppingOptions().patience(-1)), Contains("patience >= 0"));
  REQUIRE_THROWS_WITH(EarlyStopping(EarlyStoppingOptions().min_delta(-0.1)), Contains("min_delta >= 0"));
}
