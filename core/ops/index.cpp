// Indexing along a dim (kernels/index.h gives the layouts and the order of every sum):
//   index_select(x, dim, idx)      y[.., i, ..] = x[.., idx[i], ..]
//       backward: dx = index_add(0, dim, idx, dy)  (the batch order over i, per destination)
//   embedding(weight, ids)         y[ids.shape.., :] = weight[ids, :] (index_select on dim 0)
//   index_add(x, dim, idx, src)    y = x;  y[.., idx[i], ..] += src[.., i, ..]
//       backward: dx = dy;  dsrc = index_select(dy, dim, idx)
//   gather(x, dim, index)          y[.., j, ..] = x[.., index[.., j, ..], ..]
//       backward: dx = scatter_add(0, dim, index, dy)
//   scatter_add(x, dim, index, src)  y = x;  y[.., index[.., j, ..], ..] += src[.., j, ..]
//       backward: dx = dy;  dsrc = gather(dy, dim, index)
// Every id is checked against the indexed dim's size first (ids on the GPU are copied to the
// host for it): "[embedding] id 97 at position 5 is out of range [0, 96)".
#include "core/autograd.h"
#include "core/ops/dispatch.h"
#include "core/tensor.h"
#include "kernels/index.h"

namespace lockstep {
namespace {

struct Dims {
  int64_t outer = 1, n = 1, inner = 1;
};

int64_t norm_dim(const char* op, int64_t dim, int64_t nd) {
  LS_CHECK_ARG(dim >= -nd && dim < nd, op, "dim ", dim, " is out of range for a ", nd, "-d tensor");
  return dim < 0 ? dim + nd : dim;
}

Dims dims_of(const Shape& s, int64_t dim) {
  Dims d;
  for (int64_t i = 0; i < dim; ++i) d.outer *= s[i];
  d.n = s[dim];
  for (size_t i = dim + 1; i < s.size(); ++i) d.inner *= s[i];
  return d;
}

void check_float(const char* op, const Tensor& x, const char* name) {
  LS_CHECK_ARG(x.defined(), op, "expected a defined ", name);
  LS_CHECK_ARG(is_floating(x.dtype()), op, name, " must be float32 or float64, got ", dtype_name(x.dtype()));
}

// ids: int64, on x's device; every value in [0, n).
void check_ids(const char* op, const Tensor& ids, int64_t n, const Tensor& x, const char* name) {
  LS_CHECK_ARG(ids.defined() && ids.dtype() == DType::i64, op, name, " must be an int64 tensor, got ",
               ids.defined() ? ids.str() : "undefined");
  LS_CHECK_ARG(ids.device() == x.device(), op, name, " is on ", device_name(ids.device()), ", the input on ",
               device_name(x.device()));
  const Tensor h = ids.contiguous().to(Device::cpu);
  const int64_t* p = h.data<int64_t>();
  for (int64_t i = 0; i < h.numel(); ++i)
    LS_CHECK_ARG(p[i] >= 0 && p[i] < n, op, "id ", p[i], " at position ", i, " of ", name, " ",
                 shape_str(ids.shape()), " is out of range [0, ", n, ")");
}

// The kernels, with no recording: the forward and backward formulas share them.
Tensor select_raw(const Tensor& x, int64_t dim, const Tensor& idx) {
  const Dims d = dims_of(x.shape(), dim);
  const int64_t m = idx.numel();
  Shape s = x.shape();
  s[dim] = m;
  Tensor out = Tensor::empty(s, x.dtype(), x.device());
  if (out.numel() == 0) return out;
  dispatch_float("index_select", x.device(), x.dtype(), [&](auto on, auto t) {
    using T = decltype(t);
    LS_KERNEL(on, index_select, out.data<T>(), x.data<T>(), idx.data<int64_t>(), d.outer, d.n, m, d.inner);
  });
  return out;
}

// base (may be undefined: zeros) + the sums of src (outer x m x inner) into a tensor of shape s.
Tensor add_raw(const Shape& s, const Tensor& base, const Tensor& src, int64_t dim, const Tensor& idx, DType dt,
               Device dev) {
  const Dims d = dims_of(s, dim);
  const int64_t m = idx.numel();
  Tensor out = Tensor::empty(s, dt, dev);
  if (out.numel() == 0) return out;
  dispatch_float("index_add", dev, dt, [&](auto on, auto t) {
    using T = decltype(t);
    LS_KERNEL(on, index_add, out.data<T>(), base.defined() ? base.data<T>() : nullptr, src.data<T>(),
              idx.data<int64_t>(), d.outer, d.n, m, d.inner);
  });
  return out;
}

Tensor gather_raw(const Tensor& x, int64_t dim, const Tensor& index) {
  const Dims d = dims_of(x.shape(), dim);
  const int64_t m = index.size(dim);
  Tensor out = Tensor::empty(index.shape(), x.dtype(), x.device());
  if (out.numel() == 0) return out;
  dispatch_float("gather", x.device(), x.dtype(), [&](auto on, auto t) {
    using T = decltype(t);
    LS_KERNEL(on, gather, out.data<T>(), x.data<T>(), index.data<int64_t>(), d.outer, d.n, m, d.inner);
  });
  return out;
}

Tensor scatter_raw(const Shape& s, const Tensor& base, const Tensor& src, int64_t dim, const Tensor& index, DType dt,
                   Device dev) {
  const Dims d = dims_of(s, dim);
  const int64_t m = index.size(dim);
  Tensor out = Tensor::empty(s, dt, dev);
  if (out.numel() == 0) return out;
  dispatch_float("scatter_add", dev, dt, [&](auto on, auto t) {
    using T = decltype(t);
    LS_KERNEL(on, scatter_add, out.data<T>(), base.defined() ? base.data<T>() : nullptr, src.data<T>(),
              index.data<int64_t>(), d.outer, d.n, m, d.inner);
  });
  return out;
}

// index has x's rank and x's sizes on every dim but `dim`.
void check_index_shape(const char* op, const Tensor& index, const Shape& s, int64_t dim, const char* xname) {
  bool ok = index.dim() == static_cast<int64_t>(s.size());
  for (size_t i = 0; ok && i < s.size(); ++i)
    if (static_cast<int64_t>(i) != dim && index.size(static_cast<int64_t>(i)) != s[i]) ok = false;
  LS_CHECK_ARG(ok, op, "index ", shape_str(index.shape()), " must match ", xname, " ", shape_str(s),
               " on every dim but ", dim);
}

Tensor index_select_impl(const char* op, const Tensor& x_in, int64_t dim_in, const Tensor& idx_in,
                         const Shape& out_shape, bool embedding_shape) {
  check_float(op, x_in, embedding_shape ? "weight" : "input");
  LS_CHECK_ARG(x_in.dim() >= 1, op, "expected at least a 1-d input, got ", shape_str(x_in.shape()));
  const int64_t dim = norm_dim(op, dim_in, x_in.dim());
  check_ids(op, idx_in, x_in.size(dim), x_in, embedding_shape ? "ids" : "index");
  const Tensor x = x_in.contiguous().detach(), idx = idx_in.contiguous();
  Tensor out = select_raw(x, dim, idx);
  if (embedding_shape) out = out.reshape(out_shape);
  if (should_record({&x_in})) {
    const Shape xs = x.shape();
    const DType dt = x.dtype();
    const Device dev = x.device();
    record(out, op, {x_in}, [xs, dt, dev, dim, idx](const Tensor& g) {
      const Dims d = dims_of(xs, dim);
      Tensor gs = g.contiguous().reshape({d.outer, idx.numel(), d.inner});
      return std::vector<Tensor>{add_raw(xs, Tensor(), gs, dim, idx, dt, dev)};
    });
  }
  return out;
}

}  // namespace

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  LS_CHECK_ARG(index.defined() && index.dim() <= 1, "index_select", "expected a 0-d or 1-d index, got ",
               index.defined() ? shape_str(index.shape()) : "undefined");
  return index_select_impl("index_select", x, dim, index, {}, false);
}

Tensor embedding(const Tensor& weight, const Tensor& ids) {
  const char* op = "embedding";
  LS_CHECK_ARG(weight.defined() && weight.dim() == 2, op, "expected a 2-d weight (num_embeddings x dim), got ",
               weight.defined() ? shape_str(weight.shape()) : "undefined");
  LS_CHECK_ARG(ids.defined(), op, "expected defined ids");
  Shape s = ids.shape();
  s.push_back(weight.size(1));
  return index_select_impl(op, weight, 0, ids, s, true);
}

Tensor index_add(const Tensor& x_in, int64_t dim_in, const Tensor& idx_in, const Tensor& src_in) {
  const char* op = "index_add";
  check_float(op, x_in, "input");
  check_float(op, src_in, "source");
  LS_CHECK_ARG(x_in.dim() >= 1, op, "expected at least a 1-d input, got ", shape_str(x_in.shape()));
  const int64_t dim = norm_dim(op, dim_in, x_in.dim());
  LS_CHECK_ARG(idx_in.defined() && idx_in.dim() <= 1, op, "expected a 0-d or 1-d index, got ",
               idx_in.defined() ? shape_str(idx_in.shape()) : "undefined");
  LS_CHECK_ARG(src_in.dtype() == x_in.dtype() && src_in.device() == x_in.device(), op, "source ", src_in.str(),
               " must have the input's dtype and device (", x_in.str(), ")");
  Shape want = x_in.shape();
  want[dim] = idx_in.numel();
  LS_CHECK_ARG(src_in.shape() == want, op, "expected a source of shape ", shape_str(want), ", got ",
               shape_str(src_in.shape()));
  check_ids(op, idx_in, x_in.size(dim), x_in, "index");
  const Tensor x = x_in.contiguous().detach(), src = src_in.contiguous().detach(), idx = idx_in.contiguous();
  Tensor out = add_raw(x.shape(), x, src, dim, idx, x.dtype(), x.device());
  if (should_record({&x_in, &src_in})) {
    const bool need_src = src_in.requires_grad();
    record(out, op, {x_in, src_in}, [dim, idx, need_src](const Tensor& g) {
      Tensor gc = g.contiguous();
      return std::vector<Tensor>{gc, need_src ? select_raw(gc, dim, idx) : Tensor()};
    });
  }
  return out;
}

Tensor gather(const Tensor& x_in, int64_t dim_in, const Tensor& index_in) {
  const char* op = "gather";
  check_float(op, x_in, "input");
  LS_CHECK_ARG(x_in.dim() >= 1, op, "expected at least a 1-d input, got ", shape_str(x_in.shape()));
  const int64_t dim = norm_dim(op, dim_in, x_in.dim());
  LS_CHECK_ARG(index_in.defined(), op, "expected a defined index");
  check_index_shape(op, index_in, x_in.shape(), dim, "input");
  check_ids(op, index_in, x_in.size(dim), x_in, "index");
  const Tensor x = x_in.contiguous().detach(), index = index_in.contiguous();
  Tensor out = gather_raw(x, dim, index);
  if (should_record({&x_in})) {
    const Shape xs = x.shape();
    record(out, op, {x_in}, [xs, dim, index](const Tensor& g) {
      Tensor gc = g.contiguous();
      return std::vector<Tensor>{scatter_raw(xs, Tensor(), gc, dim, index, gc.dtype(), gc.device())};
    });
  }
  return out;
}

Tensor scatter_add(const Tensor& x_in, int64_t dim_in, const Tensor& index_in, const Tensor& src_in) {
  const char* op = "scatter_add";
  check_float(op, x_in, "input");
  check_float(op, src_in, "source");
  LS_CHECK_ARG(x_in.dim() >= 1, op, "expected at least a 1-d input, got ", shape_str(x_in.shape()));
  const int64_t dim = norm_dim(op, dim_in, x_in.dim());
  LS_CHECK_ARG(index_in.defined(), op, "expected a defined index");
  check_index_shape(op, index_in, x_in.shape(), dim, "input");
  LS_CHECK_ARG(src_in.shape() == index_in.shape(), op, "source ", shape_str(src_in.shape()),
               " must have the index's shape ", shape_str(index_in.shape()));
  LS_CHECK_ARG(src_in.dtype() == x_in.dtype() && src_in.device() == x_in.device(), op, "source ", src_in.str(),
               " must have the input's dtype and device (", x_in.str(), ")");
  check_ids(op, index_in, x_in.size(dim), x_in, "index");
  const Tensor x = x_in.contiguous().detach(), src = src_in.contiguous().detach(), index = index_in.contiguous();
  Tensor out = scatter_raw(x.shape(), x, src, dim, index, x.dtype(), x.device());
  if (should_record({&x_in, &src_in})) {
    const bool need_src = src_in.requires_grad();
    record(out, op, {x_in, src_in}, [dim, index, need_src](const Tensor& g) {
      Tensor gc = g.contiguous();
      return std::vector<Tensor>{gc, need_src ? gather_raw(gc, dim, index) : Tensor()};
    });
  }
  return out;
}

}  // namespace lockstep
