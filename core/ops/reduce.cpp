// Reductions. A tensor reduced over dim is seen as outer x d x inner (d the reduced size):
//   sum(x)             all elements in the contiguous order            -> 0-d
//   sum(x, last dim)   each row of d in the contiguous order           (kernels/reduce.h)
//   sum(x, other dim)  over d in the batch order, for each (outer, inner)
//   mean = sum / n, one division in the tensor's dtype (n converted to it; 0 / 0 is NaN)
//   max, argmax        exact; NaN propagates, ties go to the first index
// Fast mode swaps the sums for the completion-order kernels (*_fast_*); max is exact anyway.
//
// Backward: sum spreads g over the reduced elements, mean spreads g / n; max sends g to the
// element argmax picked (the first maximum), zero elsewhere; argmax has no gradient.
#include <algorithm>

#include "core/autograd.h"
#include "core/ops/dispatch.h"
#include "core/tensor.h"
#include "kernels/elementwise.h"
#include "kernels/reduce.h"

namespace lockstep {
namespace {

void check_float(const char* op, const Tensor& x) {
  LS_CHECK_ARG(x.defined(), op, "expected a defined tensor");
  LS_CHECK_ARG(is_floating(x.dtype()), op, "expected a float32 or float64 tensor, got ", dtype_name(x.dtype()),
               " ", shape_str(x.shape()));
}

// The reduced dim of x as outer x d x inner, and the output shape.
struct DimSplit {
  int64_t outer = 1, d = 1, inner = 1;
  bool last = true;  // the reduced dim is the last one (or x is 0-d)
  Shape out_shape;
};

DimSplit split_dim(const char* op, const Tensor& x, int64_t dim, bool keepdim) {
  const int64_t nd = x.dim();
  const int64_t span = std::max<int64_t>(nd, 1);  // a 0-d tensor accepts dim 0 and -1
  LS_CHECK_ARG(dim >= -span && dim < span, op, "dim ", dim, " is out of range for a ", nd, "-d tensor (shape ",
               shape_str(x.shape()), ")");
  DimSplit s;
  if (nd == 0) return s;  // one element, output 0-d
  if (dim < 0) dim += nd;
  const Shape& sh = x.shape();
  for (int64_t i = 0; i < dim; ++i) s.outer *= sh[i];
  s.d = sh[dim];
  for (int64_t i = dim + 1; i < nd; ++i) s.inner *= sh[i];
  s.last = dim == nd - 1;
  for (int64_t i = 0; i < nd; ++i) {
    if (i != dim)
      s.out_shape.push_back(sh[i]);
    else if (keepdim)
      s.out_shape.push_back(1);
  }
  return s;
}

// out = out / n in place (mean), in the tensor's dtype.
void divide_by(Tensor& out, int64_t n) {
  if (out.numel() == 0) return;
  dispatch_float("mean", out.device(), out.dtype(), [&](auto on, auto t) {
    using T = decltype(t);
    T* p = out.data<T>();
    LS_KERNEL(on, binary_scalar, BinaryOp::div, p, p, static_cast<T>(n), out.numel());
  });
}

Tensor sum_all(const char* op, const Tensor& x_in) {
  check_float(op, x_in);
  const Tensor x = x_in.contiguous();
  Tensor out = Tensor::empty({}, x.dtype(), x.device());
  dispatch_float(op, x.device(), x.dtype(), [&](auto on, auto t) {
    using T = decltype(t);
    if (on.exec.fast())
      LS_KERNEL(on, sum_fast, out.data<T>(), x.data<T>(), x.numel());
    else
      LS_KERNEL(on, sum, out.data<T>(), x.data<T>(), x.numel());
  });
  return out;
}

Tensor sum_over(const char* op, const Tensor& x_in, int64_t dim, bool keepdim, int64_t* count) {
  check_float(op, x_in);
  const DimSplit s = split_dim(op, x_in, dim, keepdim);
  *count = s.d;
  Tensor out = Tensor::empty(s.out_shape, x_in.dtype(), x_in.device());
  if (out.numel() == 0) return out;
  const Tensor x = x_in.contiguous();
  dispatch_float(op, x.device(), x.dtype(), [&](auto on, auto t) {
    using T = decltype(t);
    T* y = out.data<T>();
    const T* px = x.data<T>();
    // The last dim: rows in the contiguous order; any other dim: the batch order.
    if (s.last && on.exec.fast())
      LS_KERNEL(on, sum_rows_fast, y, px, s.outer, s.d);
    else if (s.last)
      LS_KERNEL(on, sum_rows, y, px, s.outer, s.d);
    else if (on.exec.fast())
      LS_KERNEL(on, sum_mid_fast, y, px, s.outer, s.d, s.inner);
    else
      LS_KERNEL(on, sum_mid, y, px, s.outer, s.d, s.inner);
  });
  return out;
}

// max (values) or argmax (indices) over dim.
Tensor max_over(const char* op, const Tensor& x_in, int64_t dim, bool keepdim, bool want_index) {
  check_float(op, x_in);
  const DimSplit s = split_dim(op, x_in, dim, keepdim);
  LS_CHECK_ARG(s.d > 0, op, "cannot reduce over dim ", dim, " of size 0 (shape ", shape_str(x_in.shape()), ")");
  Tensor out = Tensor::empty(s.out_shape, want_index ? DType::i64 : x_in.dtype(), x_in.device());
  if (out.numel() == 0) return out;
  const Tensor x = x_in.contiguous();
  dispatch_float(op, x.device(), x.dtype(), [&](auto on, auto t) {
    using T = decltype(t);
    if (want_index)
      LS_KERNEL(on, argmax, out.data<int64_t>(), x.data<T>(), s.outer, s.d, s.inner);
    else
      LS_KERNEL(on, max, out.data<T>(), x.data<T>(), s.outer, s.d, s.inner);
  });
  return out;
}

// x's shape with the reduced dim kept as 1 (all ones when dim is null: a full reduction).
Shape kept_shape(const Shape& x, const int64_t* dim) {
  Shape s = x;
  const int64_t nd = static_cast<int64_t>(x.size());
  for (int64_t i = 0; i < nd; ++i)
    if (!dim || i == (*dim < 0 ? *dim + nd : *dim)) s[i] = 1;
  return s;
}

// g (the reduced shape) divided by n when n > 0, broadcast back to x's shape: g * 1 is exact.
Tensor spread(const Tensor& g, const Shape& kept, const Shape& x_shape, int64_t n) {
  Tensor gk = g.contiguous().reshape(kept);
  if (n > 0) gk = div(gk, Tensor::full({}, static_cast<double>(n), g.dtype(), g.device()));
  return mul(gk, Tensor::ones(x_shape, g.dtype(), g.device()));
}

// Records the backward of sum or mean (divide: mean) over dim (null: all elements).
void record_sum(Tensor& out, const char* op, const Tensor& x, const int64_t* dim, int64_t count, bool divide) {
  if (!should_record({&x})) return;
  const Shape kept = kept_shape(x.shape(), dim), shape = x.shape();
  const int64_t n = divide ? count : 0;
  record(out, op, {x}, [kept, shape, n](const Tensor& g) { return std::vector<Tensor>{spread(g, kept, shape, n)}; });
}

}  // namespace

Tensor sum(const Tensor& x) {
  Tensor out = sum_all("sum", x);
  record_sum(out, "sum", x, nullptr, x.numel(), false);
  return out;
}

Tensor mean(const Tensor& x) {
  Tensor out = sum_all("mean", x);
  divide_by(out, x.numel());
  record_sum(out, "mean", x, nullptr, x.numel(), true);
  return out;
}

Tensor sum(const Tensor& x, int64_t dim, bool keepdim) {
  int64_t n = 0;
  Tensor out = sum_over("sum", x, dim, keepdim, &n);
  record_sum(out, "sum", x, &dim, n, false);
  return out;
}

Tensor mean(const Tensor& x, int64_t dim, bool keepdim) {
  int64_t n = 0;
  Tensor out = sum_over("mean", x, dim, keepdim, &n);
  divide_by(out, n);
  record_sum(out, "mean", x, &dim, n, true);
  return out;
}

Tensor max(const Tensor& x_in, int64_t dim, bool keepdim) {
  Tensor out = max_over("max", x_in, dim, keepdim, false);
  if (should_record({&x_in})) {
    const Tensor x = x_in.detach();
    record(out, "max", {x_in}, [x, dim](const Tensor& g) {
      // one-hot of the argmax along dim: an index ramp along dim compared with argmax
      const Shape kept = kept_shape(x.shape(), &dim);
      Shape ramp_shape(x.shape().size(), 1);
      const int64_t nd = x.dim();
      if (nd > 0) ramp_shape[dim < 0 ? dim + nd : dim] = x.size(dim);
      const Tensor ramp = Tensor::arange(nd > 0 ? x.size(dim) : 1, DType::i64).reshape(ramp_shape).to(x.device());
      const Tensor pick = eq(ramp, argmax(x, dim, true));
      const Tensor zero = Tensor::zeros({}, g.dtype(), g.device());
      return std::vector<Tensor>{where(pick, g.contiguous().reshape(kept), zero)};
    });
  }
  return out;
}
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) { return max_over("argmax", x, dim, keepdim, true); }

}  // namespace lockstep
