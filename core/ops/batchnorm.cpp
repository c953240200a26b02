// BatchNorm over N x C (formulas and orders in kernels/batchnorm.h):
//   y = (x - mean) * rstd * gamma + beta, batch statistics in training
//   dx = ((dy - mean(dy)) - xhat * mean(dy xhat)) * rstd * gamma; dgamma = sum dy xhat; dbeta = sum dy
#include "core/autograd.h"
#include "core/ops/dispatch.h"
#include "core/tensor.h"
#include "kernels/batchnorm.h"

namespace lockstep {

Tensor batch_norm(const Tensor& x_in, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps) {
  const char* op = "batch_norm";
  LS_CHECK_ARG(x_in.defined() && x_in.dim() == 2, op, "expected input of shape N x C, got ",
               x_in.defined() ? shape_str(x_in.shape()) : "undefined");
  LS_CHECK_ARG(is_floating(x_in.dtype()), op, "expected a float input, got ", dtype_name(x_in.dtype()));
  const int64_t N = x_in.size(0), C = x_in.size(1);
  auto check_vec = [&](const Tensor& t, const char* name) {
    if (!t.defined()) return;
    LS_CHECK_ARG(t.dim() == 1 && t.size(0) == C && t.dtype() == x_in.dtype() && t.is_contiguous(), op, name,
                 " must be a contiguous ", dtype_name(x_in.dtype()), " vector of ", C, " features, got ", t.str());
    LS_CHECK_ARG(t.device() == x_in.device(), op, name, " is on ", device_name(t.device()), ", the input on ",
                 device_name(x_in.device()));
  };
  check_vec(running_mean, "running_mean");
  check_vec(running_var, "running_var");
  check_vec(weight, "weight");
  check_vec(bias, "bias");
  LS_CHECK_ARG(running_mean.defined() == running_var.defined(), op,
               "running_mean and running_var must both be given or both be absent");
  const bool batch_stats = training || !running_mean.defined();
  if (batch_stats) batchnorm_check_train(N, C);

  Tensor x = x_in.contiguous().detach();
  Tensor w = weight.defined() ? weight.detach() : Tensor(), b = bias.defined() ? bias.detach() : Tensor();
  const Device dev = x.device();
  Tensor y = Tensor::empty({N, C}, x.dtype(), dev), mean = Tensor::empty({C}, x.dtype(), dev),
         rstd = Tensor::empty({C}, x.dtype(), dev);
  // Given running statistics are updated in training and used in eval; eval without them
  // normalises with the batch statistics and updates nothing (PyTorch).
  dispatch_float(op, dev, x.dtype(), [&](auto on, auto t) {
    using T = decltype(t);
    auto p = [](const Tensor& v) { return v.defined() ? const_cast<T*>(v.data<T>()) : nullptr; };
    LS_KERNEL(on, batchnorm_forward, y.data<T>(), mean.data<T>(), rstd.data<T>(), p(running_mean), p(running_var),
              x.data<T>(), p(w), p(b), N, C, batch_stats, static_cast<T>(eps), static_cast<T>(momentum));
  });
  if (should_record({&x_in, &weight, &bias})) {
    record(y, op, {x_in, weight, bias}, [x, w, mean, rstd, N, C, batch_stats, has_b = b.defined()](const Tensor& g_in) {
      Tensor g = g_in.contiguous();
      const Device dev = x.device();
      Tensor dx = Tensor::empty({N, C}, x.dtype(), dev);
      Tensor dw = w.defined() ? Tensor::empty({C}, x.dtype(), dev) : Tensor();
      Tensor db = has_b ? Tensor::empty({C}, x.dtype(), dev) : Tensor();
      dispatch_float("batch_norm_backward", dev, x.dtype(), [&](auto on, auto t) {
        using T = decltype(t);
        auto p = [](const Tensor& v) { return v.defined() ? const_cast<T*>(v.data<T>()) : nullptr; };
        LS_KERNEL(on, batchnorm_backward, dx.data<T>(), p(dw), p(db), g.data<T>(), x.data<T>(), mean.data<T>(),
                  rstd.data<T>(), p(w), N, C, batch_stats);
      });
      return std::vector<Tensor>{dx, dw, db};
    });
  }
  return y;
}

}  // namespace lockstep
