// clip_grad_norm_ (optim/clip.h): per-parameter norms (norm_reduce, core/optim.h), a
// fixed-order combine on the host, and each gradient scaled by the same factor (scale,
// core/ops.h: g * coef rounded once per element, written back into the gradient).
#include "optim/clip.h"

#include <cmath>

#include "core/autograd.h"
#include "core/ops.h"
#include "core/optim.h"

namespace lockstep::optim {

namespace {

template <typename T>
T partial(const Tensor& g, NormKind kind) {
  return static_cast<T>(norm_reduce(g, kind).item());
}

template <typename T>
double clip_impl(const std::vector<Tensor>& grads, double max_norm, double norm_type, bool error_if_nonfinite) {
  const NormKind kind = norm_type == 2.0 ? NormKind::sum_squares
                        : norm_type == 1.0 ? NormKind::sum_abs
                                           : NormKind::max_abs;
  T total = T(0);
  for (const Tensor& g : grads) {
    const T s = partial<T>(g, kind);
    if (kind == NormKind::max_abs) total = (s > total || s != s) ? s : total;
    else total = total + s;
  }
  if (kind == NormKind::sum_squares) total = std::sqrt(total);
  if (error_if_nonfinite && !std::isfinite(total))
    throw std::runtime_error(str_cat("[clip_grad_norm_] the total norm of order ", norm_type,
                                     " of the gradients is non-finite (", total,
                                     "), so it cannot be clipped; pass error_if_nonfinite=false to clip anyway"));
  const T denom = total + static_cast<T>(1e-6);
  T coef = (T(1) / denom) * static_cast<T>(max_norm);
  if (coef > T(1)) coef = T(1);
  if (!(coef == T(1))) {
    // coef is a T, so scale's rounding of it to the dtype is exact.
    for (Tensor g : grads) g.copy_(scale(g, static_cast<double>(coef)));
  }
  return static_cast<double>(total);
}

}  // namespace

double clip_grad_norm_(const std::vector<Tensor>& parameters, double max_norm, double norm_type,
                       bool error_if_nonfinite) {
  LS_CHECK_ARG(norm_type == 1.0 || norm_type == 2.0 || norm_type == std::numeric_limits<double>::infinity(),
               "clip_grad_norm_", "expected norm_type 1, 2 or inf, got ", norm_type);
  LS_CHECK_ARG(max_norm == max_norm, "clip_grad_norm_", "expected max_norm to be a number, got ", max_norm);
  NoGradGuard ng;
  std::vector<Tensor> grads;
  for (size_t i = 0; i < parameters.size(); ++i) {
    const Tensor& p = parameters[i];
    LS_CHECK_ARG(p.defined(), "clip_grad_norm_", "parameter ", i, " is undefined");
    Tensor g = p.grad();
    if (!g.defined()) continue;
    LS_CHECK_ARG(g.is_contiguous(), "clip_grad_norm_", "expected contiguous gradients, parameter ", i,
                 " has a strided one");
    LS_CHECK_ARG(grads.empty() || g.dtype() == grads[0].dtype(), "clip_grad_norm_",
                 "expected gradients of one dtype, got ", dtype_name(grads[0].dtype()), " and ", dtype_name(g.dtype()),
                 " (parameter ", i, ")");
    grads.push_back(g);
  }
  if (grads.empty()) return 0.0;
  if (grads[0].dtype() == DType::f32) return clip_impl<float>(grads, max_norm, norm_type, error_if_nonfinite);
  return clip_impl<double>(grads, max_norm, norm_type, error_if_nonfinite);
}

}  // namespace lockstep::optim
