// Stateless activation modules.
#pragma once
#include "nn/module.h"

namespace lockstep::nn {

class ReLU : public Module {
 public:
  ReLU() : Module("ReLU") {}
  Tensor forward(const Tensor& x) override { return relu(x); }
};

class Tanh : public Module {
 public:
  Tanh() : Module("Tanh") {}
  Tensor forward(const Tensor& x) override { return tanh(x); }
};

// GELU, tanh approximation (PyTorch's GELU(approximate='tanh')).
class GELU : public Module {
 public:
  GELU() : Module("GELU") {}
  Tensor forward(const Tensor& x) override { return gelu(x); }
  std::string extra_repr() const override { return "approximate='tanh'"; }
};

// SiLU (swish): x * sigmoid(x), the project's own sigmoid.
class SiLU : public Module {
 public:
  SiLU() : Module("SiLU") {}
  Tensor forward(const Tensor& x) override { return silu(x); }
};

}  // namespace lockstep::nn
