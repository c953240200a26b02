// Losses (formulas and orders in kernels/loss.h):
//   cross_entropy: loss_i = (1-eps) (-logp[t_i]) + eps/C sum_j (-logp[j]); mean = sum / N
//     d logits = (softmax - q) * w
//   mse_loss: (x - y)^2, mean over all elements; dx = 2 (x - y) * g / (N D)
#include "core/autograd.h"
#include "core/ops/dispatch.h"
#include "core/tensor.h"
#include "kernels/loss.h"

namespace lockstep {
namespace {

Shape reduced_shape(Reduction r, const Shape& none_shape) { return r == Reduction::none ? none_shape : Shape{}; }

}  // namespace

Tensor cross_entropy(const Tensor& logits_in, const Tensor& target_in, Reduction reduction, double label_smoothing) {
  const char* op = "cross_entropy";
  LS_CHECK_ARG(logits_in.defined() && target_in.defined(), op, "expected defined tensors");
  LS_CHECK_ARG(logits_in.dim() == 2, op, "expected logits of shape N x C, got ", shape_str(logits_in.shape()));
  LS_CHECK_ARG(is_floating(logits_in.dtype()), op, "logits must be float32 or float64, got ",
               dtype_name(logits_in.dtype()));
  LS_CHECK_ARG(target_in.dtype() == DType::i64, op, "targets must be int64 class indices, got ",
               dtype_name(target_in.dtype()));
  LS_CHECK_ARG(target_in.dim() == 1 && target_in.size(0) == logits_in.size(0), op, "logits are ",
               shape_str(logits_in.shape()), ", targets are ", shape_str(target_in.shape()),
               ": expected one target per row");
  LS_CHECK_ARG(logits_in.size(1) >= 1, op, "expected at least one class, got ", shape_str(logits_in.shape()));
  LS_CHECK_ARG(label_smoothing >= 0.0 && label_smoothing <= 1.0, op, "label_smoothing must be in [0, 1], got ",
               label_smoothing);
  LS_CHECK_ARG(logits_in.device() == target_in.device(), op, "logits are on ", device_name(logits_in.device()),
               ", targets on ", device_name(target_in.device()));
  const int64_t N = logits_in.size(0), C = logits_in.size(1);
  const Device dev = logits_in.device();
  Tensor logits = logits_in.contiguous().detach(), target = target_in.contiguous();
  {
    // The range check reads the targets on the host (on CUDA: one copy of N int64s).
    const Tensor host = target.to(Device::cpu);
    const int64_t* th = host.data<int64_t>();
    for (int64_t i = 0; i < N; ++i)
      LS_CHECK_ARG(th[i] >= 0 && th[i] < C, op, "target[", i, "] = ", th[i], " is out of range for ", C, " classes");
  }
  Tensor out = Tensor::empty(reduced_shape(reduction, {N}), logits.dtype(), dev);
  dispatch_float(op, dev, logits.dtype(), [&](auto on, auto t) {
    using T = decltype(t);
    const T eps = static_cast<T>(label_smoothing);
    const int64_t* tg = target.data<int64_t>();
    LS_KERNEL(on, cross_entropy_forward, out.data<T>(), logits.data<T>(), tg, N, C, eps, reduction);
  });
  if (should_record({&logits_in})) {
    record(out, op, {logits_in}, [logits, target, N, C, label_smoothing, reduction](const Tensor& g_in) {
      Tensor g = g_in.contiguous();
      Tensor d = Tensor::empty({N, C}, logits.dtype(), logits.device());
      dispatch_float("cross_entropy_backward", logits.device(), logits.dtype(), [&](auto on, auto t) {
        using T = decltype(t);
        const T eps = static_cast<T>(label_smoothing);
        const int64_t* tg = target.data<int64_t>();
        LS_KERNEL(on, cross_entropy_backward, d.data<T>(), g.data<T>(), logits.data<T>(), tg, N, C, eps, reduction);
      });
      return std::vector<Tensor>{d};
    });
  }
  return out;
}

Tensor mse_loss(const Tensor& x_in, const Tensor& y_in, Reduction reduction) {
  const char* op = "mse_loss";
  LS_CHECK_ARG(x_in.defined() && y_in.defined(), op, "expected defined tensors");
  LS_CHECK_ARG(x_in.shape() == y_in.shape(), op, "input is ", shape_str(x_in.shape()), ", target is ",
               shape_str(y_in.shape()), ": shapes must match");
  LS_CHECK_ARG(is_floating(x_in.dtype()) && x_in.dtype() == y_in.dtype(), op,
               "expected float inputs of one dtype, got ", dtype_name(x_in.dtype()), " and ", dtype_name(y_in.dtype()));
  LS_CHECK_ARG(x_in.device() == y_in.device(), op, "input is on ", device_name(x_in.device()), ", target on ",
               device_name(y_in.device()));
  Tensor x = x_in.contiguous().detach(), y = y_in.contiguous().detach();
  const int64_t N = x.dim() == 0 ? 1 : x.size(0);
  const int64_t D = N == 0 ? 0 : x.numel() / N;
  Tensor out = Tensor::empty(reduced_shape(reduction, x.shape()), x.dtype(), x.device());
  dispatch_float(op, x.device(), x.dtype(), [&](auto on, auto t) {
    using T = decltype(t);
    LS_KERNEL(on, mse_forward, out.data<T>(), x.data<T>(), y.data<T>(), N, D, reduction);
  });
  if (should_record({&x_in})) {
    record(out, op, {x_in}, [x, y, N, D, reduction](const Tensor& g_in) {
      Tensor g = g_in.contiguous();
      Tensor dx = Tensor::empty(x.shape(), x.dtype(), x.device());
      dispatch_float("mse_loss_backward", x.device(), x.dtype(), [&](auto on, auto t) {
        using T = decltype(t);
        T* no_dy = nullptr;  // the target gets no gradient
        LS_KERNEL(on, mse_backward, dx.data<T>(), no_dy, g.data<T>(), x.data<T>(), y.data<T>(), N, D, reduction);
      });
      return std::vector<Tensor>{dx};
    });
  }
  return out;
}

}  // namespace lockstep
