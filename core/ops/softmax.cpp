// Softmax family over the last dim, each row on its own (kernels/softmax.h):
//   y = softmax(x):      y_j = exp(x_j - m) / s,  m = max_j x_j,  s = sum_j exp(x_j - m)
//   y = log_softmax(x):  y_j = (x_j - m) - log(s)
// A tensor of any shape is rows x cols with cols its last dim (a 0-d tensor is one row of
// one). The kernels are deterministic in both modes (the row sum is the contiguous order).
// Backward, with g = d loss / d y and row sums over the last dim (contiguous order):
//   softmax:      dx = y * (g - sum(g * y))
//   log_softmax:  dx = g - exp(y) * sum(g)
#include "core/autograd.h"
#include "core/ops/dispatch.h"
#include "core/tensor.h"
#include "kernels/softmax.h"

namespace lockstep {
namespace {

Tensor softmax_forward(const char* op, const Tensor& x_in, bool log_form) {
  LS_CHECK_ARG(x_in.defined(), op, "expected a defined tensor");
  LS_CHECK_ARG(is_floating(x_in.dtype()), op, "expected a float32 or float64 tensor, got ",
               dtype_name(x_in.dtype()), " ", shape_str(x_in.shape()));
  Tensor out = Tensor::empty(x_in.shape(), x_in.dtype(), x_in.device());
  if (out.numel() == 0) return out;
  const Tensor x = x_in.contiguous();
  const int64_t cols = x.dim() == 0 ? 1 : x.size(-1);
  const int64_t rows = x.numel() / cols;
  dispatch_float(op, x.device(), x.dtype(), [&](auto on, auto t) {
    using T = decltype(t);
    if (log_form)
      LS_KERNEL(on, log_softmax_forward, out.data<T>(), x.data<T>(), rows, cols);
    else
      LS_KERNEL(on, softmax_forward, out.data<T>(), x.data<T>(), rows, cols);
  });
  return out;
}

Tensor softmax_family(const char* op, const Tensor& x, bool log_form) {
  Tensor out = softmax_forward(op, x, log_form);
  if (should_record({&x})) {
    const Tensor y = out.detach();
    record(out, op, {x}, [y, log_form](const Tensor& g) {
      if (log_form) return std::vector<Tensor>{sub(g, mul(exp(y), sum(g, -1, true)))};
      return std::vector<Tensor>{mul(y, sub(g, sum(mul(g, y), -1, true)))};
    });
  }
  return out;
}

}  // namespace

Tensor softmax(const Tensor& x) { return softmax_family("softmax", x, false); }
Tensor log_softmax(const Tensor& x) { return softmax_family("log_softmax", x, true); }

}  // namespace lockstep
