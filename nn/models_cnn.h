// The convolutional models of `lockstep train --model cnn|lenet5`, the tests, the lab and the
// PyTorch twin (bench/peers/torch_twin.py builds the same layers in the same order). Both
// take N x 784 images (layer 0 unflattens them to N x 1 x 28 x 28), so the trainer, the loader
// and data parallelism feed them exactly as the MLP. Children are numbered in order and
// initialised by reset_parameters(seed): each tensor keyed by (seed, its full name).
#pragma once
#include <memory>
#include <vector>

#include "base/error.h"
#include "nn/nn.h"
#include "nn/sync_batchnorm.h"

namespace lockstep::nn {

struct CnnOptions {
  std::vector<int64_t> channels{32, 64};  // one 3x3 conv block per entry, each halving H and W
  std::vector<int64_t> hidden{256, 128};  // the dense layers after the flatten
  double dropout = 0.25;                 // before each dense layer
  // Non-null: the BatchNorm2d layers are SyncBatchNorm sharing it (same keys and bits).
  std::shared_ptr<BatchSync> sync;
};

// Unflatten(1, 1x28x28); per block: Conv2d(c_in, c, 3, padding 1, no bias), BatchNorm2d(c),
// ReLU, MaxPool2d(2); Flatten; per hidden size h: Dropout(p), Linear(., h), ReLU; Dropout(p),
// Linear(., 10). Default 32,64 / 256,128: 1-32-64 conv, 3136-256-128-10 dense.
inline std::shared_ptr<Sequential> make_cnn(uint64_t seed, const CnnOptions& o = {}) {
  LS_CHECK_ARG(!o.channels.empty() && o.channels.size() <= 4, "make_cnn", "expected 1 to 4 conv blocks, got ",
               o.channels.size());
  auto m = std::make_shared<Sequential>();
  m->push_back(std::make_shared<Unflatten>(1, Shape{1, 28, 28}));
  int64_t c_in = 1, side = 28;
  for (int64_t c : o.channels) {
    LS_CHECK_ARG(c >= 1, "make_cnn", "expected positive channel counts, got ", c);
    Conv2dOptions co;
    co.padding = 1, co.bias = false;
    m->push_back(std::make_shared<Conv2d>(c_in, c, 3, co));
    if (o.sync)
      m->push_back(std::make_shared<SyncBatchNorm>(c, o.sync));
    else
      m->push_back(std::make_shared<BatchNorm2d>(c));
    m->push_back(std::make_shared<ReLU>());
    m->push_back(std::make_shared<MaxPool2d>(2));
    c_in = c, side /= 2;
  }
  m->push_back(std::make_shared<Flatten>());
  int64_t width = c_in * side * side;
  for (int64_t h : o.hidden) {
    m->push_back(std::make_shared<Dropout>(o.dropout));
    m->push_back(std::make_shared<Linear>(width, h));
    m->push_back(std::make_shared<ReLU>());
    width = h;
  }
  m->push_back(std::make_shared<Dropout>(o.dropout));
  m->push_back(std::make_shared<Linear>(width, 10));
  m->reset_parameters(seed);
  return m;
}

// LeNet-5 as RepDL's MNIST example: Unflatten; Conv2d(1, 6, 5, padding 2), ReLU, MaxPool2d(2);
// Conv2d(6, 16, 5), ReLU, MaxPool2d(2); Flatten; Linear(400, 120), ReLU, Linear(120, 84), ReLU,
// Linear(84, 10). No BatchNorm, no Dropout.
inline std::shared_ptr<Sequential> make_lenet5(uint64_t seed) {
  auto m = std::make_shared<Sequential>();
  m->push_back(std::make_shared<Unflatten>(1, Shape{1, 28, 28}));
  Conv2dOptions pad2;
  pad2.padding = 2;
  m->push_back(std::make_shared<Conv2d>(1, 6, 5, pad2));
  m->push_back(std::make_shared<ReLU>());
  m->push_back(std::make_shared<MaxPool2d>(2));
  m->push_back(std::make_shared<Conv2d>(6, 16, 5));
  m->push_back(std::make_shared<ReLU>());
  m->push_back(std::make_shared<MaxPool2d>(2));
  m->push_back(std::make_shared<Flatten>());
  m->push_back(std::make_shared<Linear>(400, 120));
  m->push_back(std::make_shared<ReLU>());
  m->push_back(std::make_shared<Linear>(120, 84));
  m->push_back(std::make_shared<ReLU>());
  m->push_back(std::make_shared<Linear>(84, 10));
  m->reset_parameters(seed);
  return m;
}

}  // namespace lockstep::nn
