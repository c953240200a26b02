// Reference models used by the tests, benchmarks and the lab.
#pragma once
#include <memory>

#include "nn/nn.h"

namespace lockstep::nn {

// 784-256-128-10 MLP with BatchNorm, ReLU and Dropout(p) after each hidden Linear.
// State-dict keys: 0.weight 0.bias 1.weight 1.bias 1.running_mean ... 8.weight 8.bias.
inline std::shared_ptr<Sequential> make_mlp(uint64_t seed, double dropout_p = 0.2) {
  auto m = std::make_shared<Sequential>(
      std::make_shared<Linear>(784, 256), std::make_shared<BatchNorm1d>(256), std::make_shared<ReLU>(),
      std::make_shared<Dropout>(dropout_p), std::make_shared<Linear>(256, 128), std::make_shared<BatchNorm1d>(128),
      std::make_shared<ReLU>(), std::make_shared<Dropout>(dropout_p), std::make_shared<Linear>(128, 10));
  m->reset_parameters(seed);
  return m;
}

}  // namespace lockstep::nn
