// Optimizer updates and gradient norms on tensors (core/ops/optim.cpp), the front end of
// kernels/optim.h: optim/ calls these and never a kernel. Each checks its tensors (one
// dtype, float32 or float64, one device, contiguous, matching sizes), then runs the kernel
// once through the op dispatch (core/ops/dispatch.h). The formulas, the float operation
// order and what they promise are in kernels/optim.h; the scalars in base/optim_step.h.
// A Tensor is a handle, so the tensors updated in place are passed as const references.
#pragma once

#include <cstdint>

#include "base/optim_step.h"

namespace lockstep {

class Tensor;

// param -= lr * (grad with weight decay and momentum), in place. momentum_buffer: param's
// size, updated in place; undefined when s.momentum == 0.
void sgd_step_(const Tensor& param, const Tensor& momentum_buffer, const Tensor& grad, const SgdStep& s);
// The same step on elements [begin, end) only (0 <= begin <= end <= numel); see adam_step_.
void sgd_step_(const Tensor& param, const Tensor& momentum_buffer, const Tensor& grad, const SgdStep& s,
               int64_t begin, int64_t end);
// One Adam / AdamW step, in place. exp_avg, exp_avg_sq: param's size; max_exp_avg_sq:
// param's size when s.amsgrad, else undefined.
void adam_step_(const Tensor& param, const Tensor& exp_avg, const Tensor& exp_avg_sq, const Tensor& max_exp_avg_sq,
                const Tensor& grad, const AdamStep& s);
// The same step on elements [begin, end) only (0 <= begin <= end <= numel): an element's
// update reads and writes that element alone, so any ranges covering all elements give the
// bits of one call. Optimizers run several parameters' ranges in one parallel pass with it.
void adam_step_(const Tensor& param, const Tensor& exp_avg, const Tensor& exp_avg_sq, const Tensor& max_exp_avg_sq,
                const Tensor& grad, const AdamStep& s, int64_t begin, int64_t end);
// The reduction `kind` of all elements of x (contiguous) -> a 0-d tensor of x's dtype and device.
Tensor norm_reduce(const Tensor& x, NormKind kind);

}  // namespace lockstep
