// Pooling over NCHW (kernels/pool2d.h gives the windows, tie rule and orders):
//   max_pool2d:  y = max over the window (first maximum in window order; NaN propagates),
//                dx[i] = sum of dy[o] over the windows o that chose i (a gather)
//   avg_pool2d:  y = window sum / div (count_include_pad: the padded window's size),
//                dx[i] = sum of dy[o] / div[o] over the windows containing i
//   adaptive_avg_pool2d: windows [floor(o L / n), ceil((o + 1) L / n)) per dim, y = their mean
#include "core/autograd.h"
#include "core/ops/dispatch.h"
#include "core/tensor.h"
#include "kernels/pool2d.h"

namespace lockstep {
namespace {

// Checks x (N x C x H x W, float) and the window; returns the geometry.
Pool2dGeom pool_geom(const char* op, const Tensor& x, Size2 k, Size2 s, Size2 p) {
  LS_CHECK_ARG(x.defined() && x.dim() == 4, op, "expected input of shape N x C x H x W, got ",
               x.defined() ? shape_str(x.shape()) : "undefined");
  LS_CHECK_ARG(is_floating(x.dtype()), op, "expected a float input, got ", dtype_name(x.dtype()));
  LS_CHECK_ARG(k[0] > 0 && k[1] > 0, op, "expected a positive kernel size, got ", k[0], " x ", k[1]);
  LS_CHECK_ARG(s[0] > 0 && s[1] > 0, op, "expected a positive stride, got ", s[0], " x ", s[1]);
  LS_CHECK_ARG(p[0] >= 0 && p[1] >= 0 && p[0] <= k[0] / 2 && p[1] <= k[1] / 2, op,
               "expected padding between 0 and half the kernel size (", k[0] / 2, " x ", k[1] / 2, "), got ", p[0],
               " x ", p[1]);
  Pool2dGeom g;
  g.planes = x.size(0) * x.size(1);
  g.H = x.size(2), g.W = x.size(3);
  g.kh = k[0], g.kw = k[1], g.sh = s[0], g.sw = s[1], g.ph = p[0], g.pw = p[1];
  const int64_t hp = g.H + 2 * g.ph - g.kh, wp = g.W + 2 * g.pw - g.kw;
  LS_CHECK_ARG(hp >= 0 && wp >= 0, op, "kernel ", k[0], " x ", k[1], " is larger than the padded input ",
               g.H + 2 * g.ph, " x ", g.W + 2 * g.pw, " (input ", shape_str(x.shape()), ")");
  g.OH = hp / g.sh + 1, g.OW = wp / g.sw + 1;
  return g;
}

Shape out_shape(const Tensor& x, const Pool2dGeom& g) { return {x.size(0), x.size(1), g.OH, g.OW}; }

}  // namespace

std::pair<Tensor, Tensor> max_pool2d_with_indices(const Tensor& x_in, Size2 kernel, Size2 stride, Size2 padding) {
  const char* op = "max_pool2d";
  const Pool2dGeom g = pool_geom(op, x_in, kernel, stride, padding);
  Tensor x = x_in.contiguous().detach();
  const Device dev = x.device();
  Tensor y = Tensor::empty(out_shape(x, g), x.dtype(), dev), idx = Tensor::empty(out_shape(x, g), DType::i64, dev);
  dispatch_float(op, dev, x.dtype(), [&](auto on, auto t) {
    using T = decltype(t);
    LS_KERNEL(on, max_pool2d_forward, y.data<T>(), idx.data<int64_t>(), x.data<T>(), g);
  });
  if (should_record({&x_in})) {
    record(y, op, {x_in}, [idx, g, in_shape = x.shape(), dt = x.dtype(), dev](const Tensor& g_in) {
      Tensor gy = g_in.contiguous();
      Tensor dx = Tensor::empty(in_shape, dt, dev);
      dispatch_float("max_pool2d_backward", dev, dt, [&](auto on, auto t) {
        using T = decltype(t);
        LS_KERNEL(on, max_pool2d_backward, dx.data<T>(), gy.data<T>(), idx.data<int64_t>(), g);
      });
      return std::vector<Tensor>{dx};
    });
  }
  return {y, idx};
}

Tensor max_pool2d(const Tensor& x, Size2 kernel, Size2 stride, Size2 padding) {
  return max_pool2d_with_indices(x, kernel, stride, padding).first;
}

Tensor avg_pool2d(const Tensor& x_in, Size2 kernel, Size2 stride, Size2 padding, bool count_include_pad) {
  const char* op = "avg_pool2d";
  const Pool2dGeom g = pool_geom(op, x_in, kernel, stride, padding);
  Tensor x = x_in.contiguous().detach();
  const Device dev = x.device();
  Tensor y = Tensor::empty(out_shape(x, g), x.dtype(), dev);
  dispatch_float(op, dev, x.dtype(), [&](auto on, auto t) {
    using T = decltype(t);
    LS_KERNEL(on, avg_pool2d_forward, y.data<T>(), x.data<T>(), g, count_include_pad);
  });
  if (should_record({&x_in})) {
    record(y, op, {x_in}, [g, count_include_pad, in_shape = x.shape(), dt = x.dtype(), dev](const Tensor& g_in) {
      Tensor gy = g_in.contiguous();
      Tensor dx = Tensor::empty(in_shape, dt, dev);
      dispatch_float("avg_pool2d_backward", dev, dt, [&](auto on, auto t) {
        using T = decltype(t);
        LS_KERNEL(on, avg_pool2d_backward, dx.data<T>(), gy.data<T>(), g, count_include_pad);
      });
      return std::vector<Tensor>{dx};
    });
  }
  return y;
}

Tensor adaptive_avg_pool2d(const Tensor& x_in, Size2 output_size) {
  const char* op = "adaptive_avg_pool2d";
  LS_CHECK_ARG(x_in.defined() && x_in.dim() == 4, op, "expected input of shape N x C x H x W, got ",
               x_in.defined() ? shape_str(x_in.shape()) : "undefined");
  LS_CHECK_ARG(is_floating(x_in.dtype()), op, "expected a float input, got ", dtype_name(x_in.dtype()));
  LS_CHECK_ARG(output_size[0] > 0 && output_size[1] > 0, op, "expected a positive output size, got ",
               output_size[0], " x ", output_size[1]);
  LS_CHECK_ARG(x_in.size(2) > 0 && x_in.size(3) > 0, op, "expected a non-empty plane, got input ",
               shape_str(x_in.shape()));
  Pool2dGeom g;
  g.planes = x_in.size(0) * x_in.size(1);
  g.H = x_in.size(2), g.W = x_in.size(3), g.OH = output_size[0], g.OW = output_size[1];
  Tensor x = x_in.contiguous().detach();
  const Device dev = x.device();
  Tensor y = Tensor::empty(out_shape(x, g), x.dtype(), dev);
  dispatch_float(op, dev, x.dtype(), [&](auto on, auto t) {
    using T = decltype(t);
    LS_KERNEL(on, adaptive_avg_pool2d_forward, y.data<T>(), x.data<T>(), g);
  });
  if (should_record({&x_in})) {
    record(y, op, {x_in}, [g, in_shape = x.shape(), dt = x.dtype(), dev](const Tensor& g_in) {
      Tensor gy = g_in.contiguous();
      Tensor dx = Tensor::empty(in_shape, dt, dev);
      dispatch_float("adaptive_avg_pool2d_backward", dev, dt, [&](auto on, auto t) {
        using T = decltype(t);
        LS_KERNEL(on, adaptive_avg_pool2d_backward, dx.data<T>(), gy.data<T>(), g);
      });
      return std::vector<Tensor>{dx};
    });
  }
  return y;
}

}  // namespace lockstep
