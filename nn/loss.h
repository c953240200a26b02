// Loss modules (PyTorch's CrossEntropyLoss and MSELoss); call with (input, target).
#pragma once
#include "core/tensor.h"

namespace lockstep::nn {

class CrossEntropyLoss {
 public:
  explicit CrossEntropyLoss(Reduction reduction = Reduction::mean, double label_smoothing = 0.0)
      : reduction_(reduction), label_smoothing_(label_smoothing) {}
  Tensor operator()(const Tensor& logits, const Tensor& target) const {
    return cross_entropy(logits, target, reduction_, label_smoothing_);
  }

 private:
  Reduction reduction_;
  double label_smoothing_;
};

class MSELoss {
 public:
  explicit MSELoss(Reduction reduction = Reduction::mean) : reduction_(reduction) {}
  Tensor operator()(const Tensor& input, const Tensor& target) const { return mse_loss(input, target, reduction_); }

 private:
  Reduction reduction_;
};

}  // namespace lockstep::nn
