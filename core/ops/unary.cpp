// Unary math, elementwise (kernels/elementwise.h states how each is evaluated):
//   neg -x, abs |x|, sqrt, relu max(x, 0), exp, log, tanh (the project's own, base/math.h),
//   sigmoid 1 / (1 + exp(-x)), gelu 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))),
//   silu x sigmoid(x).
// Deterministic in both modes; float32 and float64, any shape (0-d and empty included).
//
// Backward (g = d loss / d out, y = out): neg -g; abs g sign(x) (0 at 0); sqrt g / (2 y);
// exp g y; log g / x; relu, tanh, sigmoid, gelu, silu by the kernels of kernels/activation.h
// (relu, gelu and silu from x, tanh and sigmoid from y; formulas and rounding order there).
#include "core/autograd.h"
#include "core/ops/dispatch.h"
#include "core/tensor.h"
#include "kernels/activation.h"
#include "kernels/elementwise.h"

namespace lockstep {
namespace {

Tensor unary_forward(UnaryOp op, const Tensor& x_in) {
  const char* name = unary_op_name(op);
  LS_CHECK_ARG(x_in.defined(), name, "expected a defined tensor");
  LS_CHECK_ARG(is_floating(x_in.dtype()), name, "expected a float32 or float64 tensor, got ",
               dtype_name(x_in.dtype()), " ", shape_str(x_in.shape()));
  Tensor out = Tensor::empty(x_in.shape(), x_in.dtype(), x_in.device());
  if (out.numel() == 0) return out;
  const Tensor x = x_in.contiguous();
  dispatch_float(name, x.device(), x.dtype(), [&](auto on, auto t) {
    using T = decltype(t);
    LS_KERNEL(on, unary, op, out.data<T>(), x.data<T>(), x.numel());
  });
  return out;
}

enum class Activation { relu, tanh, sigmoid, gelu, silu };

// dx = activation'(.) * g by the activation backward kernels; s is x or y (see above).
Tensor activation_backward(Activation act, const Tensor& g_in, const Tensor& s) {
  const Tensor g = g_in.contiguous();
  Tensor dx = Tensor::empty(s.shape(), s.dtype(), s.device());
  if (dx.numel() == 0) return dx;
  dispatch_float("activation_backward", s.device(), s.dtype(), [&](auto on, auto t) {
    using T = decltype(t);
    T* d = dx.data<T>();
    const T* dy = g.data<T>();
    const T* p = s.data<T>();
    const int64_t n = s.numel();
    switch (act) {
      case Activation::relu: LS_KERNEL(on, relu_backward, d, dy, p, n); return;
      case Activation::tanh: LS_KERNEL(on, tanh_backward, d, dy, p, n); return;
      case Activation::sigmoid: LS_KERNEL(on, sigmoid_backward, d, dy, p, n); return;
      case Activation::gelu: LS_KERNEL(on, gelu_backward, d, dy, p, n); return;
      case Activation::silu: LS_KERNEL(on, silu_backward, d, dy, p, n); return;
    }
  });
  return dx;
}

// gelu on the CPU while recording: the forward keeps t = tanh(u) and the backward reads it
// (kernels/activation.h, gelu_forward_keep_cpu): the same bits as unary gelu and
// gelu_backward_cpu, one ls_tanh per element instead of two.
Tensor gelu_kept(const Tensor& x_in) {
  const Tensor x = x_in.contiguous().detach();
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor t = Tensor::empty(x.shape(), x.dtype(), x.device());
  const Exec ex = Exec::current();
  if (x.dtype() == DType::f32)
    gelu_forward_keep_cpu(ex, out.data<float>(), t.data<float>(), x.data<float>(), x.numel());
  else
    gelu_forward_keep_cpu(ex, out.data<double>(), t.data<double>(), x.data<double>(), x.numel());
  record(out, unary_op_name(UnaryOp::gelu), {x_in}, [x, t](const Tensor& g_in) {
    const Tensor g = g_in.contiguous();
    Tensor dx = Tensor::empty(x.shape(), x.dtype(), x.device());
    const Exec e = Exec::current();
    if (x.dtype() == DType::f32)
      gelu_backward_kept_cpu(e, dx.data<float>(), g.data<float>(), x.data<float>(), t.data<float>(), x.numel());
    else
      gelu_backward_kept_cpu(e, dx.data<double>(), g.data<double>(), x.data<double>(), t.data<double>(), x.numel());
    return std::vector<Tensor>{dx};
  });
  return out;
}

Tensor unary(UnaryOp op, const Tensor& x_in) {
  if (op == UnaryOp::gelu && x_in.defined() && is_floating(x_in.dtype()) && x_in.device() == Device::cpu &&
      x_in.numel() > 0 && should_record({&x_in}))
    return gelu_kept(x_in);
  Tensor out = unary_forward(op, x_in);
  if (!should_record({&x_in})) return out;
  const Tensor x = x_in.contiguous().detach(), y = out.detach();
  BackwardFn fn;
  switch (op) {
    case UnaryOp::neg: fn = [](const Tensor& g) { return std::vector<Tensor>{neg(g)}; }; break;
    case UnaryOp::abs:
      fn = [x](const Tensor& g) {
        const Tensor zero = Tensor::zeros({}, g.dtype(), g.device());
        return std::vector<Tensor>{where(gt(x, zero), g, where(lt(x, zero), neg(g), zero))};
      };
      break;
    case UnaryOp::sqrt: fn = [y](const Tensor& g) { return std::vector<Tensor>{div(g, mul(y, 2.0))}; }; break;
    case UnaryOp::exp: fn = [y](const Tensor& g) { return std::vector<Tensor>{mul(g, y)}; }; break;
    case UnaryOp::log: fn = [x](const Tensor& g) { return std::vector<Tensor>{div(g, x)}; }; break;
    case UnaryOp::relu:
      fn = [x](const Tensor& g) { return std::vector<Tensor>{activation_backward(Activation::relu, g, x)}; };
      break;
    case UnaryOp::tanh:
      fn = [y](const Tensor& g) { return std::vector<Tensor>{activation_backward(Activation::tanh, g, y)}; };
      break;
    case UnaryOp::sigmoid:
      fn = [y](const Tensor& g) { return std::vector<Tensor>{activation_backward(Activation::sigmoid, g, y)}; };
      break;
    case UnaryOp::gelu:
      fn = [x](const Tensor& g) { return std::vector<Tensor>{activation_backward(Activation::gelu, g, x)}; };
      break;
    case UnaryOp::silu:
      fn = [x](const Tensor& g) { return std::vector<Tensor>{activation_backward(Activation::silu, g, x)}; };
      break;
  }
  record(out, unary_op_name(op), {x_in}, std::move(fn));
  return out;
}

}  // namespace

Tensor neg(const Tensor& x) { return unary(UnaryOp::neg, x); }
Tensor abs(const Tensor& x) { return unary(UnaryOp::abs, x); }
Tensor sqrt(const Tensor& x) { return unary(UnaryOp::sqrt, x); }
Tensor relu(const Tensor& x) { return unary(UnaryOp::relu, x); }
Tensor exp(const Tensor& x) { return unary(UnaryOp::exp, x); }
Tensor log(const Tensor& x) { return unary(UnaryOp::log, x); }
Tensor tanh(const Tensor& x) { return unary(UnaryOp::tanh, x); }
Tensor sigmoid(const Tensor& x) { return unary(UnaryOp::sigmoid, x); }
Tensor gelu(const Tensor& x) { return unary(UnaryOp::gelu, x); }
Tensor silu(const Tensor& x) { return unary(UnaryOp::silu, x); }

Tensor operator-(const Tensor& a) { return neg(a); }

}  // namespace lockstep
