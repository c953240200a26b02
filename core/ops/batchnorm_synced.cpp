// Synchronised BatchNorm (training): the batch statistics and the backward sums of a batch
// split across processes, combined by `combine` in the batch order (formulas in
// kernels/batchnorm.h, which the cut kernels follow expression for expression):
//   S1 = combine(sum x);  mean = S1 / N;  S2 = combine(sum (x - mean)^2);  rstd = 1/sqrt(S2/N + eps)
//   y = (x - mean) * rstd * gamma + beta
//   [B1, B2] = combine([sum dy, sum dy xhat]);  dx = ((dy - B1/N) - xhat B2/N) * rstd * gamma
//   dgamma, dbeta = this process's partial sum dy xhat, sum dy (combined later with the gradients)
#include "core/autograd.h"
#include "core/ops/batch_sums.h"
#include "core/tensor.h"
#include "kernels/batchnorm.h"

namespace lockstep {
Tensor batch_norm_synced(const Tensor& x_in, const Tensor& running_mean, const Tensor& running_var,
                         const Tensor& weight, const Tensor& bias, double momentum, double eps, int64_t global_rows,
                         const BatchSumCombine& combine) {
  const char* op = "batch_norm_synced";
  LS_CHECK_ARG(x_in.defined() && x_in.dim() == 2, op, "expected input of shape N x C, got ",
               x_in.defined() ? shape_str(x_in.shape()) : "undefined");
  LS_CHECK_ARG(x_in.dtype() == DType::f32 && x_in.device() == Device::cpu, op,
               "expected a float32 CPU input, got ", x_in.str());
  LS_CHECK_ARG(static_cast<bool>(combine), op, "expected a combine function");
  const int64_t N = x_in.size(0), C = x_in.size(1);
  LS_CHECK_ARG(global_rows >= N, op, "global batch of ", global_rows, " rows is smaller than this process's ", N);
  batchnorm_check_train(global_rows, C);
  auto check_vec = [&](const Tensor& t, const char* name) {
    if (!t.defined()) return;
    LS_CHECK_ARG(t.dim() == 1 && t.size(0) == C && t.dtype() == DType::f32 && t.is_contiguous(), op, name,
                 " must be a contiguous float32 vector of ", C, " features, got ", t.str());
  };
  check_vec(running_mean, "running_mean");
  check_vec(running_var, "running_var");
  check_vec(weight, "weight");
  check_vec(bias, "bias");
  LS_CHECK_ARG(running_mean.defined() == running_var.defined(), op,
               "running_mean and running_var must both be given or both be absent");

  Tensor x = x_in.contiguous().detach();
  Tensor w = weight.defined() ? weight.detach() : Tensor(), b = bias.defined() ? bias.detach() : Tensor();
  auto p = [](const Tensor& t) { return t.defined() ? const_cast<float*>(t.data<float>()) : nullptr; };
  // CPU and float32 only, so no dispatch: the cut kernels run under the settings in force now.
  const Exec ex = Exec::current();
  Tensor s = Tensor::empty({C}, DType::f32), mean = Tensor::empty({C}, DType::f32);
  Tensor rstd = Tensor::empty({C}, DType::f32), y = Tensor::empty({N, C}, DType::f32);
  batchnorm_sum_cpu(ex, s.data<float>(), x.data<float>(), N, C);
  Tensor s1 = combined_batch_sums(op, combine, s, "sum x");
  batchnorm_mean_cpu(ex, mean.data<float>(), s1.data<float>(), global_rows, C);
  batchnorm_sqdev_sum_cpu(ex, s.data<float>(), x.data<float>(), mean.data<float>(), N, C);
  Tensor s2 = combined_batch_sums(op, combine, s, "sum (x - mean)^2");
  batchnorm_finish_stats_cpu(ex, rstd.data<float>(), p(running_mean), p(running_var), mean.data<float>(),
                             s2.data<float>(), global_rows, C, static_cast<float>(eps), static_cast<float>(momentum));
  batchnorm_normalize_cpu(ex, y.data<float>(), x.data<float>(), mean.data<float>(), rstd.data<float>(), p(w), p(b), N,
                          C);

  if (should_record({&x_in, &weight, &bias})) {
    record(y, op, {x_in, weight, bias},
           [x, w, mean, rstd, N, C, global_rows, combine, has_b = b.defined()](const Tensor& g_in) {
             Tensor g = g_in.contiguous();
             const Exec ex = Exec::current();  // the backward's settings, as a dispatch would read them
             Tensor local = Tensor::empty({2 * C}, DType::f32);
             batchnorm_backward_sums_cpu(ex, local.data<float>(), g.data<float>(), x.data<float>(),
                                         mean.data<float>(), rstd.data<float>(), N, C);
             Tensor total = combined_batch_sums("batch_norm_synced", combine, local, "sum dy, sum dy xhat");
             Tensor dx = Tensor::empty({N, C}, DType::f32);
             batchnorm_backward_dx_cpu(ex, dx.data<float>(), g.data<float>(), x.data<float>(), mean.data<float>(),
                                       rstd.data<float>(), w.defined() ? w.data<float>() : nullptr,
                                       total.data<float>(), N, global_rows, C);
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
