// 2-d convolution (kernels/conv2d.h), NCHW:
//   y[n, o, oh, ow] = sum over (c, i, j) of w[o, c, i, j] x[n, g C/G + c, oh s - p + i d, ow s - p + j d]
//                     (+ bias[o])
//   dx = the transposed convolution of dy with w (each input sums the outputs that read it);
//   dw[o, c, i, j] = sum over (n, oh, ow) of dy[n, o, oh, ow] x_tap;  db[o] = sum of dy[n, o, :, :]
// Forward and grad-input in the per-output orders of kernels/conv2d.h, grad-weight and
// grad-bias in the batch order (chunks of 32 samples, tree_sum). Fast mode runs the forward
// algorithm the autotuner picked (or the one pinned by set_conv2d_algo) and the library GEMM.
#include <atomic>

#include "core/autograd.h"
#include "core/ops.h"
#include "core/ops/dispatch.h"
#include "core/tensor.h"
#include "kernels/conv2d.h"

namespace lockstep {
namespace {

std::atomic<Conv2dAlgo> g_algo{Conv2dAlgo::autotune};
std::atomic<Conv2dAlgo> g_last{Conv2dAlgo::canonical};

Conv2dDims check_conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dArgs& a) {
  const char* op = "conv2d";
  LS_CHECK_ARG(x.defined() && w.defined(), op, "expected defined input and weight tensors");
  LS_CHECK_ARG(is_floating(x.dtype()), op, "expected a float32 or float64 input, got ", dtype_name(x.dtype()));
  LS_CHECK_ARG(w.dtype() == x.dtype(), op, "expected the weight's dtype ", dtype_name(x.dtype()), ", got ",
               dtype_name(w.dtype()));
  LS_CHECK_ARG(w.device() == x.device(), op, "expected the weight on ", device_name(x.device()), ", got ",
               device_name(w.device()));
  LS_CHECK_ARG(x.dim() == 4, op, "expected a 4-d input (N, C, H, W), got ", shape_str(x.shape()));
  LS_CHECK_ARG(w.dim() == 4, op, "expected a 4-d weight (O, C/groups, kH, kW), got ", shape_str(w.shape()));
  LS_CHECK_ARG(a.stride[0] >= 1 && a.stride[1] >= 1, op, "expected stride >= 1, got ", a.stride[0], "x",
               a.stride[1]);
  LS_CHECK_ARG(a.dilation[0] >= 1 && a.dilation[1] >= 1, op, "expected dilation >= 1, got ", a.dilation[0], "x",
               a.dilation[1]);
  LS_CHECK_ARG(a.padding[0] >= 0 && a.padding[1] >= 0, op, "expected padding >= 0, got ", a.padding[0], "x",
               a.padding[1]);
  LS_CHECK_ARG(a.groups >= 1, op, "expected groups >= 1, got ", a.groups);
  Conv2dDims d;
  d.N = x.size(0), d.C = x.size(1), d.H = x.size(2), d.W = x.size(3);
  d.O = w.size(0), d.KH = w.size(2), d.KW = w.size(3);
  d.stride_h = a.stride[0], d.stride_w = a.stride[1], d.pad_h = a.padding[0], d.pad_w = a.padding[1];
  d.dil_h = a.dilation[0], d.dil_w = a.dilation[1], d.groups = a.groups;
  LS_CHECK_ARG(d.C % d.groups == 0 && d.O % d.groups == 0, op, "expected groups (", d.groups,
               ") to divide the input channels (", d.C, ") and the output channels (", d.O, "), got input ",
               shape_str(x.shape()), " and weight ", shape_str(w.shape()));
  LS_CHECK_ARG(w.size(1) * d.groups == d.C, op, "expected the weight's dim 1 to be C/groups = ", d.C / d.groups,
               " (input ", shape_str(x.shape()), ", groups ", d.groups, "), got weight ", shape_str(w.shape()));
  const int64_t eff_h = d.dil_h * (d.KH - 1) + 1, eff_w = d.dil_w * (d.KW - 1) + 1;
  LS_CHECK_ARG(d.KH >= 1 && d.KW >= 1 && eff_h <= d.H + 2 * d.pad_h && eff_w <= d.W + 2 * d.pad_w, op,
               "expected a kernel no larger than the padded input, got kernel ", d.KH, "x", d.KW, " (dilated ",
               eff_h, "x", eff_w, ") on input ", d.H, "x", d.W, " with padding ", d.pad_h, "x", d.pad_w);
  d.OH = (d.H + 2 * d.pad_h - eff_h) / d.stride_h + 1;
  d.OW = (d.W + 2 * d.pad_w - eff_w) / d.stride_w + 1;
  LS_CHECK_ARG(d.N >= 1 && d.O >= 1 && d.C >= 1, op, "expected a non-empty output, got output ",
               shape_str({d.N, d.O, d.OH, d.OW}), " from input ", shape_str(x.shape()), " and weight ",
               shape_str(w.shape()));
  if (b.defined()) {
    LS_CHECK_ARG(b.dtype() == x.dtype() && b.device() == x.device(), op, "expected a bias of dtype ",
                 dtype_name(x.dtype()), " on ", device_name(x.device()), ", got ", dtype_name(b.dtype()), " on ",
                 device_name(b.device()));
    LS_CHECK_ARG(b.dim() == 1 && b.size(0) == d.O, op, "expected a bias of shape ", d.O, ", got ",
                 shape_str(b.shape()));
  }
  return d;
}

}  // namespace

void set_conv2d_algo(Conv2dAlgo algo) { g_algo.store(algo); }
Conv2dAlgo conv2d_algo() { return g_algo.load(); }
Conv2dAlgo conv2d_last_algo() { return g_last.load(); }

Tensor conv2d(const Tensor& x_in, const Tensor& w_in, const Tensor& b_in, const Conv2dArgs& args) {
  const char* op = "conv2d";
  const Conv2dDims d = check_conv2d(x_in, w_in, b_in, args);
  Tensor x = x_in.contiguous().detach(), w = w_in.contiguous().detach();
  Tensor b = b_in.defined() ? b_in.contiguous().detach() : Tensor();
  Tensor y = Tensor::empty({d.N, d.O, d.OH, d.OW}, x.dtype(), x.device());
  const Conv2dAlgo want = g_algo.load();
  dispatch_float(op, x.device(), x.dtype(), [&](auto on, auto t) {
    using T = decltype(t);
    const T* bp = b.defined() ? b.data<T>() : nullptr;
    if constexpr (std::decay_t<decltype(on)>::device == Device::cpu) {
      if (on.exec.fast()) {
        g_last.store(conv2d_forward_fast_cpu(on.exec, want, d, y.data<T>(), x.data<T>(), w.data<T>(), bp));
        return;
      }
    }
    // Deterministic mode, and CUDA in both modes (one forward algorithm there).
    g_last.store(Conv2dAlgo::canonical);
    LS_KERNEL(on, conv2d_forward, d, y.data<T>(), x.data<T>(), w.data<T>(), bp);
  });
  if (should_record({&x_in, &w_in, &b_in})) {
    const bool need_dx = x_in.requires_grad(), need_dw = w_in.requires_grad();
    const bool need_db = b.defined() && b_in.requires_grad();
    record(y, op, {x_in, w_in, b_in}, [x, w, d, need_dx, need_dw, need_db](const Tensor& g_in) {
      Tensor g = g_in.contiguous();
      Tensor dx = need_dx ? Tensor::empty(x.shape(), x.dtype(), x.device()) : Tensor();
      Tensor dw = need_dw || need_db ? Tensor::empty(w.shape(), w.dtype(), w.device()) : Tensor();
      Tensor db = need_db ? Tensor::empty({d.O}, w.dtype(), w.device()) : Tensor();
      dispatch_float("conv2d_backward", x.device(), x.dtype(), [&](auto on, auto t) {
        using T = decltype(t);
        constexpr bool cpu = std::decay_t<decltype(on)>::device == Device::cpu;
        T* dbp = need_db ? db.data<T>() : nullptr;
        if (need_dx) {
          if (cpu && on.exec.fast())
            conv2d_backward_input_fast_cpu(on.exec, d, dx.data<T>(), g.data<T>(), w.data<T>());
          else
            LS_KERNEL(on, conv2d_backward_input, d, dx.data<T>(), g.data<T>(), w.data<T>());
        }
        if (need_dw || need_db) {
          if (cpu && on.exec.fast())
            conv2d_backward_weight_fast_cpu(on.exec, d, dw.data<T>(), dbp, g.data<T>(), x.data<T>());
          else  // CUDA fast mode: the kernel adds the chunk partials with atomics
            LS_KERNEL(on, conv2d_backward_weight, d, dw.data<T>(), dbp, g.data<T>(), x.data<T>());
        }
      });
      return std::vector<Tensor>{dx, need_dw ? dw : Tensor(), db};
    });
  }
  return y;
}

}  // namespace lockstep
