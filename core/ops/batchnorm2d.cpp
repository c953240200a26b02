// BatchNorm2d over N x C x H x W (formulas and the per-channel order in kernels/batchnorm2d.h):
//   y = (x - mean) * rstd * gamma + beta, statistics over the N * H * W values of a channel
//   dx = ((dy - mean(dy)) - xhat * mean(dy xhat)) * rstd * gamma; dgamma = sum dy xhat; dbeta = sum dy
// batch_norm2d_synced: the same in training over this process's samples of a batch split
// across processes, the sums combined by `combine` (as batch_norm_synced, core/ops/batchnorm_synced.cpp).
#include "core/autograd.h"
#include "core/ops/batch_sums.h"
#include "core/ops/dispatch.h"
#include "core/tensor.h"
#include "kernels/batchnorm.h"
#include "kernels/batchnorm2d.h"

namespace lockstep {
namespace {

// Checks x and the four channel vectors (each may be undefined); returns C.
int64_t check_bn2d(const char* op, const Tensor& x, const Tensor& rm, const Tensor& rv, const Tensor& w,
                   const Tensor& b) {
  LS_CHECK_ARG(x.defined() && x.dim() == 4, op, "expected input of shape N x C x H x W, got ",
               x.defined() ? shape_str(x.shape()) : "undefined");
  LS_CHECK_ARG(is_floating(x.dtype()), op, "expected a float input, got ", dtype_name(x.dtype()));
  const int64_t C = x.size(1);
  auto check_vec = [&](const Tensor& t, const char* name) {
    if (!t.defined()) return;
    LS_CHECK_ARG(t.dim() == 1 && t.size(0) == C && t.dtype() == x.dtype() && t.is_contiguous(), op, name,
                 " must be a contiguous ", dtype_name(x.dtype()), " vector of ", C, " channels, got ", t.str());
    LS_CHECK_ARG(t.device() == x.device(), op, name, " is on ", device_name(t.device()), ", the input on ",
                 device_name(x.device()));
  };
  check_vec(rm, "running_mean");
  check_vec(rv, "running_var");
  check_vec(w, "weight");
  check_vec(b, "bias");
  LS_CHECK_ARG(rm.defined() == rv.defined(), op, "running_mean and running_var must both be given or both be absent");
  return C;
}

void check_train_count(const char* op, int64_t count, const Tensor& x) {
  LS_CHECK_ARG(count > 1, op, "expected more than 1 value per channel when training, got input of size ",
               shape_str(x.shape()));
}

}  // namespace

Tensor batch_norm2d(const Tensor& x_in, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                    const Tensor& bias, bool training, double momentum, double eps) {
  const char* op = "batch_norm2d";
  const int64_t C = check_bn2d(op, x_in, running_mean, running_var, weight, bias);
  const int64_t N = x_in.size(0), HW = x_in.size(2) * x_in.size(3);
  const bool batch_stats = training || !running_mean.defined();
  if (batch_stats) check_train_count(op, N * HW, x_in);

  Tensor x = x_in.contiguous().detach();
  Tensor w = weight.defined() ? weight.detach() : Tensor(), b = bias.defined() ? bias.detach() : Tensor();
  const Device dev = x.device();
  Tensor y = Tensor::empty(x.shape(), x.dtype(), dev), mean = Tensor::empty({C}, x.dtype(), dev),
         rstd = Tensor::empty({C}, x.dtype(), dev);
  dispatch_float(op, dev, x.dtype(), [&](auto on, auto t) {
    using T = decltype(t);
    auto p = [](const Tensor& v) { return v.defined() ? const_cast<T*>(v.data<T>()) : nullptr; };
    LS_KERNEL(on, batchnorm2d_forward, y.data<T>(), mean.data<T>(), rstd.data<T>(), p(running_mean), p(running_var),
              x.data<T>(), p(w), p(b), N, C, HW, batch_stats, static_cast<T>(eps), static_cast<T>(momentum));
  });
  if (should_record({&x_in, &weight, &bias})) {
    record(y, op, {x_in, weight, bias},
           [x, w, mean, rstd, N, C, HW, batch_stats, has_b = b.defined()](const Tensor& g_in) {
             Tensor g = g_in.contiguous();
             const Device dev = x.device();
             Tensor dx = Tensor::empty(x.shape(), x.dtype(), dev);
             Tensor dw = w.defined() ? Tensor::empty({C}, x.dtype(), dev) : Tensor();
             Tensor db = has_b ? Tensor::empty({C}, x.dtype(), dev) : Tensor();
             dispatch_float("batch_norm2d_backward", dev, x.dtype(), [&](auto on, auto t) {
               using T = decltype(t);
               auto p = [](const Tensor& v) { return v.defined() ? const_cast<T*>(v.data<T>()) : nullptr; };
               LS_KERNEL(on, batchnorm2d_backward, dx.data<T>(), p(dw), p(db), g.data<T>(), x.data<T>(),
                         mean.data<T>(), rstd.data<T>(), p(w), N, C, HW, batch_stats);
             });
             return std::vector<Tensor>{dx, dw, db};
           });
  }
  return y;
}

Tensor batch_norm2d_synced(const Tensor& x_in, const Tensor& running_mean, const Tensor& running_var,
                           const Tensor& weight, const Tensor& bias, double momentum, double eps,
                           int64_t global_rows, const BatchSumCombine& combine) {
  const char* op = "batch_norm2d_synced";
  const int64_t C = check_bn2d(op, x_in, running_mean, running_var, weight, bias);
  LS_CHECK_ARG(x_in.dtype() == DType::f32 && x_in.device() == Device::cpu, op, "expected a float32 CPU input, got ",
               x_in.str());
  LS_CHECK_ARG(static_cast<bool>(combine), op, "expected a combine function");
  const int64_t N = x_in.size(0), HW = x_in.size(2) * x_in.size(3);
  LS_CHECK_ARG(global_rows >= N, op, "global batch of ", global_rows, " samples is smaller than this process's ", N);
  const int64_t M = global_rows * HW;  // values per channel in the whole batch
  check_train_count(op, M, x_in);

  Tensor x = x_in.contiguous().detach();
  Tensor w = weight.defined() ? weight.detach() : Tensor(), b = bias.defined() ? bias.detach() : Tensor();
  auto p = [](const Tensor& t) { return t.defined() ? const_cast<float*>(t.data<float>()) : nullptr; };
  // CPU and float32 only, so no dispatch: the cut kernels run under the settings in force now.
  const Exec ex = Exec::current();
  Tensor s = Tensor::empty({C}, DType::f32), mean = Tensor::empty({C}, DType::f32);
  Tensor rstd = Tensor::empty({C}, DType::f32), y = Tensor::empty(x.shape(), DType::f32);
  batchnorm2d_sum_cpu(ex, s.data<float>(), x.data<float>(), N, C, HW);
  Tensor s1 = combined_batch_sums(op, combine, s, "sum x");
  batchnorm_mean_cpu(ex, mean.data<float>(), s1.data<float>(), M, C);
  batchnorm2d_sqdev_sum_cpu(ex, s.data<float>(), x.data<float>(), mean.data<float>(), N, C, HW);
  Tensor s2 = combined_batch_sums(op, combine, s, "sum (x - mean)^2");
  batchnorm_finish_stats_cpu(ex, rstd.data<float>(), p(running_mean), p(running_var), mean.data<float>(),
                             s2.data<float>(), M, C, static_cast<float>(eps), static_cast<float>(momentum));
  batchnorm2d_normalize_cpu(ex, y.data<float>(), x.data<float>(), mean.data<float>(), rstd.data<float>(), p(w), p(b),
                            N, C, HW);

  if (should_record({&x_in, &weight, &bias})) {
    record(y, op, {x_in, weight, bias}, [x, w, mean, rstd, N, C, HW, M, combine, has_b = b.defined()](
                                            const Tensor& g_in) {
      Tensor g = g_in.contiguous();
      const Exec ex = Exec::current();
      Tensor local = Tensor::empty({2 * C}, DType::f32);
      batchnorm2d_backward_sums_cpu(ex, local.data<float>(), g.data<float>(), x.data<float>(), mean.data<float>(),
                                    rstd.data<float>(), N, C, HW);
      Tensor total = combined_batch_sums("batch_norm2d_synced", combine, local, "sum dy, sum dy xhat");
      Tensor dx = Tensor::empty(x.shape(), DType::f32);
      batchnorm2d_backward_dx_cpu(ex, dx.data<float>(), g.data<float>(), x.data<float>(), mean.data<float>(),
                                  rstd.data<float>(), w.defined() ? w.data<float>() : nullptr, total.data<float>(),
                                  N, M, C, HW);
      // this process's partials: [0, C) sum dy -> dbeta, [C, 2C) sum dy xhat -> dgamma
      Tensor db = has_b ? Tensor::empty({C}, DType::f32) : Tensor();
      Tensor dw = w.defined() ? Tensor::empty({C}, DType::f32) : Tensor();
      const float* l = local.data<float>();
      if (db.defined()) std::copy(l, l + C, db.data<float>());
      if (dw.defined()) std::copy(l + C, l + 2 * C, dw.data<float>());
      return std::vector<Tensor>{dx, dw, db};
    });
  }
  return y;
}

}  // namespace lockstep
