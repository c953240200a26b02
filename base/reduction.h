// How a loss reduces its per-element values (PyTorch's `reduction=`): none keeps them,
// mean and sum reduce them in the batch order (kernels/loss.h states the formulas).
#pragma once
#include <cstdint>

namespace lockstep {

enum class Reduction : uint8_t { none, mean, sum };

}  // namespace lockstep
