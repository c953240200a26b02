// Gradient clipping by the total norm, PyTorch's torch.nn.utils.clip_grad_norm_.
//
// Order, for gradients of one dtype T (parameters whose grad is undefined are skipped):
//   1. per parameter, in the given order: s_i = sum of g*g (norm_type 2) or of |g| (1) in the
//      contiguous canonical order (kernels/reduce_order.h; norm_reduce_cpu), or max |g| (inf);
//   2. combined in T in parameter order from +0: S = ((0 + s_0) + s_1) + ...  (max for inf);
//   3. total = sqrt(S) for norm_type 2, S otherwise;
//   4. coef = (1 / (total + 1e-6)) * max_norm, in T: PyTorch evaluates max_norm / t as
//      t.reciprocal() * max_norm; then clamped to at most 1;
//   5. every gradient is multiplied by coef unless coef == 1 (a multiply by 1 changes
//      nothing); a NaN coef multiplies, as PyTorch's clamp keeps NaN.
// PyTorch forms the total as the norm of the per-parameter norms, sqrt(sum_i sqrt(s_i)^2),
// which rounds differently: totals can differ in the last bits (docs/optim.md).
// Bitwise reproducible for any thread count and SIMD path.
#pragma once
#include <limits>
#include <vector>

#include "core/tensor.h"

namespace lockstep::optim {

// Scales the gradients in place so that their total norm is at most max_norm; returns the
// total norm before clipping. norm_type: 1, 2 or infinity. error_if_nonfinite: throw
// std::runtime_error when the total is NaN or infinite (before changing anything).
double clip_grad_norm_(const std::vector<Tensor>& parameters, double max_norm, double norm_type = 2.0,
                       bool error_if_nonfinite = false);

}  // namespace lockstep::optim
