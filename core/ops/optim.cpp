// Optimizer updates and gradient norms on tensors (core/optim.h). Formulas and operation
// order: kernels/optim.h. Every tensor of one call has param's dtype, device and size and is
// contiguous, so a kernel sees n elements of one type; the update is in place.
#include "core/optim.h"

#include "core/ops/dispatch.h"
#include "core/tensor.h"
#include "kernels/optim.h"

namespace lockstep {
namespace {

// The kernels update tensors the caller holds by const handle.
template <typename T>
T* elems(const Tensor& t) {
  return t.defined() ? static_cast<T*>(t.raw_data()) : nullptr;
}

void check_param(const char* op, const Tensor& param) {
  LS_CHECK_ARG(param.defined(), op, "expected a defined param");
  LS_CHECK_ARG(param.is_contiguous(), op, "expected a contiguous param, got a strided ", shape_str(param.shape()));
}

// t must be a contiguous tensor of param's dtype, device and size.
void check_like(const char* op, const Tensor& param, const Tensor& t, const char* name) {
  LS_CHECK_ARG(t.defined(), op, "expected a defined ", name);
  LS_CHECK_ARG(t.dtype() == param.dtype() && t.device() == param.device() && t.numel() == param.numel(), op,
               "expected ", name, " like param (", dtype_name(param.dtype()), " ", shape_str(param.shape()), " on ",
               device_name(param.device()), "), got ", dtype_name(t.dtype()), " ", shape_str(t.shape()), " on ",
               device_name(t.device()));
  LS_CHECK_ARG(t.is_contiguous(), op, "expected a contiguous ", name, ", got a strided ", shape_str(t.shape()));
}

void check_range(const char* op, const Tensor& param, int64_t begin, int64_t end) {
  LS_CHECK_ARG(0 <= begin && begin <= end && end <= param.numel(), op, "expected a range in [0, ", param.numel(),
               "], got [", begin, ", ", end, ")");
}

}  // namespace

void sgd_step_(const Tensor& param, const Tensor& momentum_buffer, const Tensor& grad, const SgdStep& s) {
  LS_CHECK_ARG(param.defined(), "sgd_step_", "expected a defined param");
  sgd_step_(param, momentum_buffer, grad, s, 0, param.numel());
}

void sgd_step_(const Tensor& param, const Tensor& momentum_buffer, const Tensor& grad, const SgdStep& s,
               int64_t begin, int64_t end) {
  const char* op = "sgd_step_";
  check_param(op, param);
  check_like(op, param, grad, "grad");
  LS_CHECK_ARG(momentum_buffer.defined() == (s.momentum != 0), op, "expected a momentum_buffer exactly when ",
               "momentum != 0, got momentum ", s.momentum, momentum_buffer.defined() ? " with" : " without",
               " a buffer");
  if (momentum_buffer.defined()) check_like(op, param, momentum_buffer, "momentum_buffer");
  check_range(op, param, begin, end);
  if (begin == end) return;
  dispatch_float(op, param.device(), param.dtype(), [&](auto on, auto t) {
    using T = decltype(t);
    auto at = [&](const Tensor& x) { return x.defined() ? elems<T>(x) + begin : nullptr; };
    LS_KERNEL(on, sgd_step, at(param), at(momentum_buffer), at(grad), end - begin, s);
  });
}

void adam_step_(const Tensor& param, const Tensor& exp_avg, const Tensor& exp_avg_sq, const Tensor& max_exp_avg_sq,
                const Tensor& grad, const AdamStep& s) {
  LS_CHECK_ARG(param.defined(), "adam_step_", "expected a defined param");
  adam_step_(param, exp_avg, exp_avg_sq, max_exp_avg_sq, grad, s, 0, param.numel());
}

void adam_step_(const Tensor& param, const Tensor& exp_avg, const Tensor& exp_avg_sq, const Tensor& max_exp_avg_sq,
                const Tensor& grad, const AdamStep& s, int64_t begin, int64_t end) {
  const char* op = "adam_step_";
  check_param(op, param);
  check_like(op, param, grad, "grad");
  check_like(op, param, exp_avg, "exp_avg");
  check_like(op, param, exp_avg_sq, "exp_avg_sq");
  LS_CHECK_ARG(max_exp_avg_sq.defined() == s.amsgrad, op, "expected max_exp_avg_sq exactly when amsgrad, got amsgrad ",
               s.amsgrad ? "on" : "off", max_exp_avg_sq.defined() ? " with" : " without", " it");
  if (s.amsgrad) check_like(op, param, max_exp_avg_sq, "max_exp_avg_sq");
  check_range(op, param, begin, end);
  if (begin == end) return;
  dispatch_float(op, param.device(), param.dtype(), [&](auto on, auto t) {
    using T = decltype(t);
    auto at = [&](const Tensor& x) { return x.defined() ? elems<T>(x) + begin : nullptr; };
    LS_KERNEL(on, adam_step, at(param), at(exp_avg), at(exp_avg_sq), at(max_exp_avg_sq), at(grad), end - begin, s);
  });
}

Tensor norm_reduce(const Tensor& x, NormKind kind) {
  const char* op = "norm_reduce";
  check_param(op, x);
  Tensor out = Tensor::empty({}, x.dtype(), x.device());
  dispatch_float(op, x.device(), x.dtype(), [&](auto on, auto t) {
    using T = decltype(t);
    LS_KERNEL(on, norm_reduce, out.data<T>(), elems<T>(x), x.numel(), kind);
  });
  return out;
}

}  // namespace lockstep
