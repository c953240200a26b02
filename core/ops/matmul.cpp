// Matrix products.
//   matmul:  C = op(A) op(B)                       (canonical K order, gemm.h)
//   linear:  y = x W^T + b                          (bias added after the K sum)
//   linear_grad_weight: dW (+)= dY^T x              (batch order over the rows of the batch)
// Backward of linear (issue 3): dx = dY W (matmul), dW via linear_grad_weight, db = sum over
// rows of dY (batch order).
#include <type_traits>

#include "base/parallel.h"
#include "core/autograd.h"
#include "core/frozen_weights.h"
#include "core/ops/dispatch.h"
#include "core/tensor.h"
#include "kernels/gemm.h"

namespace lockstep {
namespace {

void check_float_pair(const char* op, const Tensor& a, const Tensor& b, const char* an, const char* bn) {
  LS_CHECK_ARG(a.defined() && b.defined(), op, "expected defined tensors");
  LS_CHECK_ARG(is_floating(a.dtype()), op, an, " must be float32 or float64, got ", dtype_name(a.dtype()));
  LS_CHECK_ARG(a.dtype() == b.dtype(), op, "dtypes differ: ", an, " is ", dtype_name(a.dtype()), ", ", bn,
               " is ", dtype_name(b.dtype()));
  LS_CHECK_ARG(a.device() == b.device(), op, "devices differ: ", an, " is on ", device_name(a.device()), ", ",
               bn, " is on ", device_name(b.device()));
}

// Runs one GEMM on contiguous operands: float32 or float64, CPU or CUDA; fast mode takes
// the autotuned variant (float64 has none and runs the deterministic kernel there too).
void run_gemm(const char* op, const Tensor& a, const Tensor& b, Tensor& c, bool ta, bool tb, int64_t M,
              int64_t N, int64_t K, const Tensor& bias, bool accumulate, KOrder order) {
  dispatch_float(op, a.device(), a.dtype(), [&](auto on, auto t) {
    using T = decltype(t);
    GemmArgsT<T> g;
    g.trans_a = ta, g.trans_b = tb, g.M = M, g.N = N, g.K = K;
    g.A = a.data<T>(), g.lda = a.size(1);
    g.B = b.data<T>(), g.ldb = b.size(1);
    g.C = c.data<T>(), g.ldc = N;
    g.bias = bias.defined() ? bias.data<T>() : nullptr;
    g.accumulate = accumulate, g.order = order;
    // A frozen B (core/frozen_weights.h) comes packed: the deterministic CPU float GEMM only.
    if constexpr (std::is_same_v<T, float> && decltype(on)::device == Device::cpu)
      if (!on.exec.fast()) g.b_packed = frozen_packed_b(on.exec, g);
    if (on.exec.fast())
      LS_KERNEL(on, gemm_fast, g);
    else
      LS_KERNEL(on, gemm, g);
  });
}

// C = op(A) op(B) on contiguous operands with the given K order (no recording).
Tensor gemm_op(const Tensor& a, const Tensor& b, bool ta, bool tb, KOrder order) {
  const int64_t M = ta ? a.size(1) : a.size(0), K = ta ? a.size(0) : a.size(1);
  const int64_t N = tb ? b.size(0) : b.size(1);
  Tensor c = Tensor::empty({M, N}, a.dtype(), a.device());
  run_gemm("matmul", a, b, c, ta, tb, M, N, K, Tensor(), false, order);
  return c;
}

}  // namespace

Tensor matmul_batched(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b);  // core/ops/bmm.cpp

Tensor matmul(const Tensor& a_in, const Tensor& b_in, bool trans_a, bool trans_b) {
  const char* op = "matmul";
  check_float_pair(op, a_in, b_in, "a", "b");
  if (a_in.dim() > 2 || b_in.dim() > 2) return matmul_batched(a_in, b_in, trans_a, trans_b);
  LS_CHECK_ARG(a_in.dim() == 2 && b_in.dim() == 2, op, "expected 2-d operands, got a ",
               shape_str(a_in.shape()), " and b ", shape_str(b_in.shape()));
  const int64_t K = trans_a ? a_in.size(0) : a_in.size(1), Kb = trans_b ? b_in.size(1) : b_in.size(0);
  LS_CHECK_ARG(K == Kb, op, "a is ", shape_str(a_in.shape()), trans_a ? " (transposed)" : "", ", b is ",
               shape_str(b_in.shape()), trans_b ? " (transposed)" : "", ": inner dimensions differ (", K,
               " vs ", Kb, ")");
  Tensor a = a_in.contiguous().detach(), b = b_in.contiguous().detach();
  Tensor c = gemm_op(a, b, trans_a, trans_b, KOrder::sequential);
  if (should_record({&a_in, &b_in})) {
    // dA: a sum over N (sequential order); dB: a sum over M, the batch (batch order).
    const bool need_da = a_in.requires_grad(), need_db = b_in.requires_grad();
    record(c, "matmul", {a_in, b_in}, [a, b, trans_a, trans_b, need_da, need_db](const Tensor& g_in) {
      Tensor g = g_in.contiguous();
      Tensor da = !need_da  ? Tensor()
                  : trans_a ? gemm_op(b, g, trans_b, true, KOrder::sequential)
                            : gemm_op(g, b, false, !trans_b, KOrder::sequential);
      Tensor db = !need_db  ? Tensor()
                  : trans_b ? gemm_op(g, a, true, trans_a, KOrder::batch_chunked)
                            : gemm_op(a, g, !trans_a, false, KOrder::batch_chunked);
      return std::vector<Tensor>{da, db};
    });
  }
  return c;
}

Tensor linear(const Tensor& x_in, const Tensor& w_in, const Tensor& bias_in) {
  const char* op = "linear";
  check_float_pair(op, x_in, w_in, "input", "weight");
  LS_CHECK_ARG(x_in.dim() >= 1, op, "expected an input of at least 1 dim (... x features), got ",
               shape_str(x_in.shape()));
  if (x_in.dim() != 2) {  // [..., in]: the rows of a 2-D product, as torch's linear
    Shape s = x_in.shape();
    s.back() = w_in.dim() == 2 ? w_in.size(0) : -1;
    return linear(x_in.reshape({-1, x_in.size(-1)}), w_in, bias_in).reshape(s);
  }
  LS_CHECK_ARG(w_in.dim() == 2, op, "expected a 2-d weight (out x in), got ", shape_str(w_in.shape()));
  LS_CHECK_ARG(x_in.size(1) == w_in.size(1), op, "input has ", x_in.size(1), " features, weight expects ",
               w_in.size(1), " (input ", shape_str(x_in.shape()), ", weight ", shape_str(w_in.shape()), ")");
  if (bias_in.defined()) {
    check_float_pair(op, x_in, bias_in, "input", "bias");
    LS_CHECK_ARG(bias_in.dim() == 1 && bias_in.size(0) == w_in.size(0), op, "bias must have shape ",
                 w_in.size(0), ", got ", shape_str(bias_in.shape()));
  }
  Tensor x = x_in.contiguous().detach(), w = w_in.contiguous().detach();
  Tensor bias = bias_in.defined() ? bias_in.contiguous().detach() : Tensor();
  const int64_t B = x.size(0), out = w.size(0), in = x.size(1);
  Tensor y = Tensor::empty({B, out}, x.dtype(), x.device());
  run_gemm(op, x, w, y, false, true, B, out, in, bias, false, KOrder::sequential);
  if (should_record({&x_in, &w_in, &bias_in})) {
    // dx = dy W; dW = dy^T x and db = sum over rows of dy, both in batch order. A gradient
    // whose input did not require grad when the op ran is not computed (the first layer's dx
    // is a third of the step's GEMM work); the graph is fixed at that point, as in PyTorch.
    const bool need_dx = x_in.requires_grad(), need_dw = w_in.requires_grad();
    const bool need_db = bias.defined() && bias_in.requires_grad();
    record(y, "linear", {x_in, w_in, bias_in}, [x, w, need_dx, need_dw, need_db](const Tensor& g_in) {
      Tensor g = g_in.contiguous();
      Tensor dx, dw, db;
      auto grad_input = [&] {
        if (need_dx) dx = gemm_op(g, w, false, false, KOrder::sequential);
        if (need_db) db = sum(g, 0, false);
      };
      auto grad_weight = [&] {
        if (need_dw) dw = gemm_op(g, x, true, false, KOrder::batch_chunked);
      };
      if (need_dx && need_dw && g.device() == Device::cpu && num_threads() == 2) {
        // Two independent products of equal flops: one per thread, each on one thread
        // (a parallel_for inside a task runs on its thread), instead of each split in two.
        // Each product's bits do not depend on its thread count. With more threads each
        // product keeps the whole pool (the pool runs one job at a time).
        parallel_run(2, [&](int t) {
          NoGradGuard no_grad;  // backward formulas are not recorded, on a worker too
          t == 0 ? grad_input() : grad_weight();
        });
      } else {
        grad_input();
        grad_weight();
      }
      return std::vector<Tensor>{dx, dw, db};
    });
  }
  return y;
}

void linear_grad_weight(Tensor& grad_weight, const Tensor& grad_out_in, const Tensor& x_in, bool accumulate) {
  const char* op = "linear_grad_weight";
  check_float_pair(op, grad_out_in, x_in, "grad_out", "input");
  check_float_pair(op, grad_out_in, grad_weight, "grad_out", "grad_weight");
  LS_CHECK_ARG(grad_out_in.dim() == 2 && x_in.dim() == 2 && grad_out_in.size(0) == x_in.size(0), op,
               "expected grad_out (B x out) and input (B x in) with the same batch, got ",
               shape_str(grad_out_in.shape()), " and ", shape_str(x_in.shape()));
  LS_CHECK_ARG(grad_weight.dim() == 2 && grad_weight.size(0) == grad_out_in.size(1) &&
                   grad_weight.size(1) == x_in.size(1),
               op, "grad_weight must be ", grad_out_in.size(1), "x", x_in.size(1), ", got ",
               shape_str(grad_weight.shape()));
  LS_CHECK_ARG(grad_weight.is_contiguous(), op, "expected a contiguous grad_weight");
  Tensor dy = grad_out_in.contiguous(), x = x_in.contiguous();
  run_gemm(op, dy, x, grad_weight, true, false, dy.size(1), x.size(1), dy.size(0), Tensor(), accumulate,
           KOrder::batch_chunked);
}

}  // namespace lockstep
