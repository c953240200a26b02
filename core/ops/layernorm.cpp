// LayerNorm and RMSNorm over the last dim (formulas and orders in kernels/layernorm.h):
//   layer_norm: y = (x - mean) rstd w + b;  dx = ((g - mean(g)) - xhat mean(g xhat)) rstd, g = dy w
//               dw = sum over rows of dy xhat;  db = sum over rows of dy   (batch order)
//   rms_norm:   y = x rstd w, rstd = 1 / sqrt(mean(x^2) + eps);  dx = (g - xhat mean(g xhat)) rstd
// x: any shape [..., C]; every leading index is a row.
#include "core/autograd.h"
#include "core/ops/dispatch.h"
#include "core/tensor.h"
#include "kernels/layernorm.h"

namespace lockstep {
namespace {

void check_args(const char* op, const Tensor& x, const Tensor& w, const Tensor& b, double eps) {
  LS_CHECK_ARG(x.defined() && x.dim() >= 1, op, "expected an input of at least 1 dim, got ",
               x.defined() ? shape_str(x.shape()) : "undefined");
  LS_CHECK_ARG(is_floating(x.dtype()), op, "expected a float input, got ", dtype_name(x.dtype()));
  const int64_t C = x.size(-1);
  auto vec = [&](const Tensor& t, const char* name) {
    if (!t.defined()) return;
    LS_CHECK_ARG(t.dim() == 1 && t.size(0) == C && t.dtype() == x.dtype(), op, name, " must be a ",
                 dtype_name(x.dtype()), " vector of ", C, " (the input's last dim), got ", t.str());
    LS_CHECK_ARG(t.device() == x.device(), op, name, " is on ", device_name(t.device()), ", the input on ",
                 device_name(x.device()));
  };
  vec(w, "weight");
  vec(b, "bias");
  LS_CHECK_ARG(eps >= 0, op, "expected eps >= 0, got ", eps);
}

Tensor opt(const Tensor& t) { return t.defined() ? t.contiguous().detach() : Tensor(); }

}  // namespace

Tensor layer_norm(const Tensor& x_in, const Tensor& weight, const Tensor& bias, double eps) {
  const char* op = "layer_norm";
  check_args(op, x_in, weight, bias, eps);
  const int64_t C = x_in.size(-1), rows = C ? x_in.numel() / C : 0;
  const Tensor x = x_in.contiguous().detach(), w = opt(weight), b = opt(bias);
  const Device dev = x.device();
  Tensor y = Tensor::empty(x.shape(), x.dtype(), dev);
  Tensor mean = Tensor::empty({rows}, x.dtype(), dev), rstd = Tensor::empty({rows}, x.dtype(), dev);
  if (y.numel() > 0)
    dispatch_float(op, dev, x.dtype(), [&](auto on, auto t) {
      using T = decltype(t);
      auto p = [](const Tensor& v) { return v.defined() ? v.data<T>() : nullptr; };
      LS_KERNEL(on, layer_norm_forward, y.data<T>(), mean.data<T>(), rstd.data<T>(), x.data<T>(), p(w), p(b), rows,
                C, static_cast<T>(eps));
    });
  if (should_record({&x_in, &weight, &bias})) {
    const bool need_dx = x_in.requires_grad(), need_dw = w.defined() && weight.requires_grad();
    const bool need_db = b.defined() && bias.requires_grad();
    record(y, op, {x_in, weight, bias}, [=](const Tensor& g_in) {
      const Tensor g = g_in.contiguous();
      Tensor dx = need_dx ? Tensor::empty(x.shape(), x.dtype(), dev) : Tensor();
      Tensor dw = need_dw ? Tensor::empty({C}, x.dtype(), dev) : Tensor();
      Tensor db = need_db ? Tensor::empty({C}, x.dtype(), dev) : Tensor();
      if (x.numel() > 0 || need_dw || need_db)
        dispatch_float("layer_norm_backward", dev, x.dtype(), [&](auto on, auto t) {
          using T = decltype(t);
          auto p = [](const Tensor& v) { return v.defined() ? const_cast<T*>(v.data<T>()) : nullptr; };
          LS_KERNEL(on, layer_norm_backward, p(dx), p(dw), p(db), g.data<T>(), x.data<T>(), mean.data<T>(),
                    rstd.data<T>(), p(w), rows, C);
        });
      return std::vector<Tensor>{dx, dw, db};
    });
  }
  return y;
}

Tensor rms_norm(const Tensor& x_in, const Tensor& weight, double eps) {
  const char* op = "rms_norm";
  check_args(op, x_in, weight, Tensor(), eps);
  const int64_t C = x_in.size(-1), rows = C ? x_in.numel() / C : 0;
  const Tensor x = x_in.contiguous().detach(), w = opt(weight);
  const Device dev = x.device();
  Tensor y = Tensor::empty(x.shape(), x.dtype(), dev);
  Tensor rstd = Tensor::empty({rows}, x.dtype(), dev);
  if (y.numel() > 0)
    dispatch_float(op, dev, x.dtype(), [&](auto on, auto t) {
      using T = decltype(t);
      LS_KERNEL(on, rms_norm_forward, y.data<T>(), rstd.data<T>(), x.data<T>(), w.defined() ? w.data<T>() : nullptr,
                rows, C, static_cast<T>(eps));
    });
  if (should_record({&x_in, &weight})) {
    const bool need_dx = x_in.requires_grad(), need_dw = w.defined() && weight.requires_grad();
    record(y, op, {x_in, weight}, [=](const Tensor& g_in) {
      const Tensor g = g_in.contiguous();
      Tensor dx = need_dx ? Tensor::empty(x.shape(), x.dtype(), dev) : Tensor();
      Tensor dw = need_dw ? Tensor::empty({C}, x.dtype(), dev) : Tensor();
      if (x.numel() > 0 || need_dw)
        dispatch_float("rms_norm_backward", dev, x.dtype(), [&](auto on, auto t) {
          using T = decltype(t);
          auto p = [](const Tensor& v) { return v.defined() ? const_cast<T*>(v.data<T>()) : nullptr; };
          LS_KERNEL(on, rms_norm_backward, p(dx), p(dw), g.data<T>(), x.data<T>(), rstd.data<T>(), p(w), rows, C);
        });
      return std::vector<Tensor>{dx, dw};
    });
  }
  return y;
}

}  // namespace lockstep
