// Pooling and reshaping modules for convolutional networks (NCHW), PyTorch semantics and
// repr; none has parameters or buffers. The ops and their orders: core/ops.h, kernels/pool2d.h.
#pragma once
#include "core/ops.h"
#include "nn/module.h"

namespace lockstep::nn {

// stride defaults to the kernel size (PyTorch's stride=None).
class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(Size2 kernel, Size2 stride = {0, 0}, Size2 padding = {0, 0});
  explicit MaxPool2d(int64_t kernel) : MaxPool2d(Size2{kernel, kernel}) {}
  Tensor forward(const Tensor& x) override { return max_pool2d(x, k_, s_, p_); }
  std::string extra_repr() const override;

 private:
  Size2 k_, s_, p_;
};

class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(Size2 kernel, Size2 stride = {0, 0}, Size2 padding = {0, 0}, bool count_include_pad = true);
  explicit AvgPool2d(int64_t kernel) : AvgPool2d(Size2{kernel, kernel}) {}
  Tensor forward(const Tensor& x) override { return avg_pool2d(x, k_, s_, p_, count_include_pad_); }
  std::string extra_repr() const override;

 private:
  Size2 k_, s_, p_;
  bool count_include_pad_;
};

class AdaptiveAvgPool2d : public Module {
 public:
  explicit AdaptiveAvgPool2d(Size2 output_size);
  Tensor forward(const Tensor& x) override { return adaptive_avg_pool2d(x, out_); }
  std::string extra_repr() const override;

 private:
  Size2 out_;
};

// Flattens dims [start_dim, end_dim] into one (a view when the input is contiguous).
class Flatten : public Module {
 public:
  explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

 private:
  int64_t start_, end_;
};

// Splits dim into `sizes` (their product must equal the dim's size).
class Unflatten : public Module {
 public:
  Unflatten(int64_t dim, Shape sizes);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

 private:
  int64_t dim_;
  Shape sizes_;
};

}  // namespace lockstep::nn
