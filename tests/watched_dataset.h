// A dataset wrapper for loader tests: calls on_read(i) before each read of example i, from
// whichever thread reads it, so a test can see which rows were read and when.
#pragma once
#include <functional>
#include <memory>

#include "data/dataset.h"

namespace lockstep_test {

struct WatchedDataset : lockstep::data::Dataset {
  std::shared_ptr<const lockstep::data::Dataset> base;
  std::function<void(int64_t)> on_read;
  int64_t size() const override { return base->size(); }
  lockstep::Shape sample_shape() const override { return base->sample_shape(); }
  lockstep::data::Example get(int64_t i) const override { return base->get(i); }
  int64_t read_into(int64_t i, float* dst) const override {
    on_read(i);
    return base->read_into(i, dst);
  }
};

}  // namespace lockstep_test
