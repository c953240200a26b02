// The scalars of one optimizer update, shared by the optimizers (optim/), the tensor front
// end (core/ops/optim.cpp) and the kernels (kernels/optim.h, which has the formulas).
// Scalars are doubles, computed by the optimizer exactly as PyTorch computes its Python
// floats; a kernel rounds each to the element type once.
#pragma once
#include <cmath>
#include <cstdint>

namespace lockstep {

// beta^t for t >= 0 by binary exponentiation in double: for each bit of t from the lowest,
// result *= base when the bit is set, then base *= base. Only IEEE double multiplications,
// each correctly rounded, in a sequence fixed by t: the same bits on every machine and
// compiler (no libm pow, whose last bit varies between C libraries). Relative error about
// t * 2^-53, far below a float32 ulp of the bias corrections built from it.
inline double optim_powi(double base, int64_t t) {
  double result = 1.0;
  while (t > 0) {
    if (t & 1) result *= base;
    t >>= 1;
    if (t > 0) base *= base;
  }
  return result;
}

// One SGD step's scalars (kernels/optim.h).
struct SgdStep {
  double lr = 0, momentum = 0, dampening = 0, weight_decay = 0;
  bool nesterov = false;
  bool first = false;  // the momentum buffer is new: b = g
};

// One Adam step's scalars, as adam_step_args computes them from the options.
struct AdamStep {
  double lerp_weight = 0;             // 1 - beta1
  double beta2 = 0, one_minus_beta2 = 0;
  double weight_decay = 0;            // coupled L2 (Adam); 0: none
  bool decoupled = false;             // AdamW: p *= decay_factor first
  double decay_factor = 1;            // 1 - lr*wd
  double step_size = 0;               // lr / (1 - beta1^t)
  double bias_correction2_sqrt = 1;   // sqrt(1 - beta2^t), IEEE sqrt
  double eps = 0;
  bool amsgrad = false;
};

// The doubles of step t >= 1, in PyTorch's order: bc1 = 1 - beta1^t, bc2 = 1 - beta2^t,
// step_size = lr / bc1, bc2_sqrt = sqrt(bc2), decay_factor = 1 - lr*wd.
inline AdamStep adam_step_args(double lr, double beta1, double beta2, double eps, double weight_decay,
                               bool decoupled, bool amsgrad, int64_t t) {
  AdamStep s;
  s.lerp_weight = 1.0 - beta1;
  s.beta2 = beta2;
  s.one_minus_beta2 = 1.0 - beta2;
  s.decoupled = decoupled && weight_decay != 0;
  s.weight_decay = decoupled ? 0.0 : weight_decay;
  s.decay_factor = 1.0 - lr * weight_decay;
  s.step_size = lr / (1.0 - optim_powi(beta1, t));
  s.bias_correction2_sqrt = std::sqrt(1.0 - optim_powi(beta2, t));
  s.eps = eps;
  s.amsgrad = amsgrad;
  return s;
}

// The gradient-norm reductions of clip_grad_norm_: sum of squares (norm 2), sum of
// absolute values (norm 1), max absolute value (norm inf).
enum class NormKind : uint8_t { sum_squares, sum_abs, max_abs };

}  // namespace lockstep
