// Elementwise binary ops, comparisons, where, axpy and the arithmetic operators, with NumPy
// broadcasting (kernels/elementwise.h has the exact semantics of each op):
//   out[i] = a[ia] op b[ib], shapes right-aligned, a dim of size 1 (or a missing one)
//   repeats along the other operand's dim.
// Elementwise results are deterministic in both modes, so there is no fast variant.
//
// Backward (g = d loss / d out; sum_to_shape undoes broadcasting in the batch order):
//   add: da = g, db = g        sub: da = g, db = -g        axpy: dx = alpha g, dy = g
//   mul: da = g b, db = g a    div: da = g / b, db = -(g out) / b
//   maximum / minimum: g goes to the operand the forward picked (ties: b)
//   where: g goes to a where cond holds, to b elsewhere; comparisons have no gradient.
#include <algorithm>

#include "core/autograd.h"
#include "core/ops/dispatch.h"
#include "core/tensor.h"
#include "kernels/elementwise.h"

namespace lockstep {
namespace {

void check_defined(const char* op, std::initializer_list<const Tensor*> ts) {
  for (const Tensor* t : ts) LS_CHECK_ARG(t->defined(), op, "expected defined tensors");
}

// Tensors have at most kMaxDims dims, so every broadcast fits the kernels' box.
static_assert(kMaxBroadcastDims >= kMaxDims, "the broadcast box must hold any tensor");

// Float operands of one dtype, on one device.
void check_float_pair(const char* op, const Tensor& a, const Tensor& b) {
  check_defined(op, {&a, &b});
  LS_CHECK_ARG(is_floating(a.dtype()) && is_floating(b.dtype()), op,
               "expected float32 or float64 operands, got ", dtype_name(a.dtype()), " and ", dtype_name(b.dtype()));
  LS_CHECK_ARG(a.dtype() == b.dtype(), op, "dtypes differ: ", dtype_name(a.dtype()), " and ",
               dtype_name(b.dtype()), " (shapes ", shape_str(a.shape()), " and ", shape_str(b.shape()), ")");
  LS_CHECK_ARG(a.device() == b.device(), op, "devices differ: ", device_name(a.device()), " and ",
               device_name(b.device()));
}

void check_float(const char* op, const Tensor& a) {
  check_defined(op, {&a});
  LS_CHECK_ARG(is_floating(a.dtype()), op, "expected a float32 or float64 tensor, got ", dtype_name(a.dtype()),
               " ", shape_str(a.shape()));
}

// The broadcast shape of a and b, or an error naming both.
Shape broadcast_shape(const char* op, const Shape& a, const Shape& b) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {  // i counts from the right
    const int64_t da = i < a.size() ? a[a.size() - 1 - i] : 1;
    const int64_t db = i < b.size() ? b[b.size() - 1 - i] : 1;
    LS_CHECK_ARG(da == db || da == 1 || db == 1, op, "shapes ", shape_str(a), " and ", shape_str(b),
                 " cannot broadcast");
    out[n - 1 - i] = da == 1 ? db : da;
  }
  return out;
}

Broadcast box_for(const Shape& out, std::initializer_list<const Tensor*> ins) {
  const int64_t* shapes[3] = {};
  int ndims[3] = {};
  int k = 0;
  for (const Tensor* t : ins) {
    shapes[k] = t->shape().data();
    ndims[k] = static_cast<int>(t->dim());
    ++k;
  }
  return make_broadcast(out.data(), static_cast<int>(out.size()), shapes, ndims, k);
}

Tensor binary_forward(BinaryOp op, const Tensor& a_in, const Tensor& b_in) {
  const char* name = binary_op_name(op);
  check_float_pair(name, a_in, b_in);
  const Shape shape = broadcast_shape(name, a_in.shape(), b_in.shape());
  Tensor out = Tensor::empty(shape, a_in.dtype(), a_in.device());
  if (out.numel() == 0) return out;
  const Tensor a = a_in.contiguous(), b = b_in.contiguous();
  const Broadcast bc = box_for(shape, {&a, &b});
  dispatch_float(name, a.device(), a.dtype(), [&](auto on, auto t) {
    using T = decltype(t);
    LS_KERNEL(on, binary, op, out.data<T>(), a.data<T>(), b.data<T>(), bc);
  });
  return out;
}

Tensor binary_scalar_forward(BinaryOp op, const char* name, const Tensor& a_in, double s) {
  check_float(name, a_in);
  Tensor out = Tensor::empty(a_in.shape(), a_in.dtype(), a_in.device());
  if (out.numel() == 0) return out;
  const Tensor a = a_in.contiguous();
  dispatch_float(name, a.device(), a.dtype(), [&](auto on, auto t) {
    using T = decltype(t);
    const T st = static_cast<T>(s);  // the scalar is rounded to the tensor's dtype first
    LS_KERNEL(on, binary_scalar, op, out.data<T>(), a.data<T>(), st, a.numel());
  });
  return out;
}

Tensor compare(CompareOp op, const Tensor& a_in, const Tensor& b_in) {
  const char* name = compare_op_name(op);
  check_defined(name, {&a_in, &b_in});
  const DType t = a_in.dtype();
  LS_CHECK_ARG(is_floating(t) || t == DType::i64, name, "expected float32, float64 or int64 operands, got ",
               dtype_name(t), " and ", dtype_name(b_in.dtype()));
  LS_CHECK_ARG(b_in.dtype() == t, name, "dtypes differ: ", dtype_name(t), " and ", dtype_name(b_in.dtype()),
               " (shapes ", shape_str(a_in.shape()), " and ", shape_str(b_in.shape()), ")");
  LS_CHECK_ARG(a_in.device() == b_in.device(), name, "devices differ: ", device_name(a_in.device()), " and ",
               device_name(b_in.device()));
  const Shape shape = broadcast_shape(name, a_in.shape(), b_in.shape());
  Tensor out = Tensor::empty(shape, DType::u8, a_in.device());
  if (out.numel() == 0) return out;
  const Tensor a = a_in.contiguous(), b = b_in.contiguous();
  const Broadcast bc = box_for(shape, {&a, &b});
  dispatch_any(name, a.device(), t, [&](auto on, auto tag) {
    using T = decltype(tag);
    // uint8 was rejected above: compare has no uint8 build (kernels/elementwise.h)
    if constexpr (!std::is_same_v<T, uint8_t>)
      LS_KERNEL(on, compare, op, out.data<uint8_t>(), a.data<T>(), b.data<T>(), bc);
  });
  return out;
}

Tensor axpy_forward(double alpha, const Tensor& x_in, const Tensor& y_in) {
  const char* name = "axpy";
  check_float_pair(name, x_in, y_in);
  const Shape shape = broadcast_shape(name, x_in.shape(), y_in.shape());
  Tensor out = Tensor::empty(shape, x_in.dtype(), x_in.device());
  if (out.numel() == 0) return out;
  const Tensor x = x_in.contiguous(), y = y_in.contiguous();
  const Broadcast bc = box_for(shape, {&x, &y});
  dispatch_float(name, x.device(), x.dtype(), [&](auto on, auto t) {
    using T = decltype(t);
    const T al = static_cast<T>(alpha);
    LS_KERNEL(on, axpy, out.data<T>(), al, x.data<T>(), y.data<T>(), bc);
  });
  return out;
}

Tensor where_forward(const Tensor& cond_in, const Tensor& a_in, const Tensor& b_in) {
  const char* name = "where";
  check_defined(name, {&cond_in, &a_in, &b_in});
  LS_CHECK_ARG(cond_in.dtype() == DType::u8, name, "expected a uint8 condition, got ", dtype_name(cond_in.dtype()),
               " ", shape_str(cond_in.shape()));
  LS_CHECK_ARG(a_in.dtype() == b_in.dtype(), name, "dtypes differ: ", dtype_name(a_in.dtype()), " and ",
               dtype_name(b_in.dtype()), " (shapes ", shape_str(a_in.shape()), " and ", shape_str(b_in.shape()), ")");
  LS_CHECK_ARG(cond_in.device() == a_in.device() && a_in.device() == b_in.device(), name,
               "devices differ: cond on ", device_name(cond_in.device()), ", a on ", device_name(a_in.device()),
               ", b on ", device_name(b_in.device()));
  const Shape shape = broadcast_shape(name, cond_in.shape(), broadcast_shape(name, a_in.shape(), b_in.shape()));
  Tensor out = Tensor::empty(shape, a_in.dtype(), a_in.device());
  if (out.numel() == 0) return out;
  const Tensor cond = cond_in.contiguous(), a = a_in.contiguous(), b = b_in.contiguous();
  const Broadcast bc = box_for(shape, {&a, &b, &cond});
  dispatch_any(name, a.device(), a.dtype(), [&](auto on, auto t) {
    using T = decltype(t);
    LS_KERNEL(on, where, out.data<T>(), cond.data<uint8_t>(), a.data<T>(), b.data<T>(), bc);
  });
  return out;
}

Tensor zero_like_scalar(const Tensor& t) { return Tensor::zeros({}, t.dtype(), t.device()); }

// 1 where maximum (or minimum) took a: a beats b, or a is NaN.
Tensor picked_a(BinaryOp op, const Tensor& a, const Tensor& b) {
  Tensor one = Tensor::ones({}, DType::u8, a.device());
  return where_forward(ne(a, a), one, op == BinaryOp::maximum ? gt(a, b) : lt(a, b));
}

Tensor binary(BinaryOp op, const Tensor& a_in, const Tensor& b_in) {
  Tensor out = binary_forward(op, a_in, b_in);
  if (!should_record({&a_in, &b_in})) return out;
  const Tensor a = a_in.detach(), b = b_in.detach(), y = out.detach();
  const Shape sa = a.shape(), sb = b.shape();
  BackwardFn fn;
  switch (op) {
    case BinaryOp::add:
      fn = [sa, sb](const Tensor& g) { return std::vector<Tensor>{sum_to_shape(g, sa), sum_to_shape(g, sb)}; };
      break;
    case BinaryOp::sub:
      fn = [sa, sb](const Tensor& g) { return std::vector<Tensor>{sum_to_shape(g, sa), sum_to_shape(neg(g), sb)}; };
      break;
    case BinaryOp::mul:
      fn = [a, b](const Tensor& g) {
        return std::vector<Tensor>{sum_to_shape(mul(g, b), a.shape()), sum_to_shape(mul(g, a), b.shape())};
      };
      break;
    case BinaryOp::div:
      fn = [b, y, sa](const Tensor& g) {
        return std::vector<Tensor>{sum_to_shape(div(g, b), sa), sum_to_shape(neg(div(mul(g, y), b)), b.shape())};
      };
      break;
    case BinaryOp::maximum:
    case BinaryOp::minimum:
      fn = [op, a, b](const Tensor& g) {
        const Tensor mask = picked_a(op, a, b), zero = zero_like_scalar(g);
        return std::vector<Tensor>{sum_to_shape(where_forward(mask, g, zero), a.shape()),
                                   sum_to_shape(where_forward(mask, zero, g), b.shape())};
      };
      break;
  }
  record(out, binary_op_name(op), {a_in, b_in}, std::move(fn));
  return out;
}

Tensor binary_scalar(BinaryOp op, const char* name, const Tensor& a_in, double s) {
  Tensor out = binary_scalar_forward(op, name, a_in, s);
  if (should_record({&a_in})) {
    if (op == BinaryOp::add)
      record(out, name, {a_in}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
    else
      record(out, name, {a_in}, [s](const Tensor& g) { return std::vector<Tensor>{mul(g, s)}; });
  }
  return out;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return binary(BinaryOp::add, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary(BinaryOp::sub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary(BinaryOp::mul, a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return binary(BinaryOp::div, a, b); }
Tensor maximum(const Tensor& a, const Tensor& b) { return binary(BinaryOp::maximum, a, b); }
Tensor minimum(const Tensor& a, const Tensor& b) { return binary(BinaryOp::minimum, a, b); }

Tensor add(const Tensor& a, double s) { return binary_scalar(BinaryOp::add, "add", a, s); }
Tensor mul(const Tensor& a, double s) { return binary_scalar(BinaryOp::mul, "mul", a, s); }
Tensor scale(const Tensor& a, double s) { return binary_scalar(BinaryOp::mul, "scale", a, s); }

Tensor axpy(double alpha, const Tensor& x_in, const Tensor& y_in) {
  Tensor out = axpy_forward(alpha, x_in, y_in);
  if (should_record({&x_in, &y_in})) {
    record(out, "axpy", {x_in, y_in}, [alpha, sx = x_in.shape(), sy = y_in.shape()](const Tensor& g) {
      return std::vector<Tensor>{sum_to_shape(mul(g, alpha), sx), sum_to_shape(g, sy)};
    });
  }
  return out;
}

Tensor where(const Tensor& cond_in, const Tensor& a_in, const Tensor& b_in) {
  Tensor out = where_forward(cond_in, a_in, b_in);
  if (should_record({&a_in, &b_in})) {
    const Tensor cond = cond_in.detach();
    record(out, "where", {cond_in, a_in, b_in}, [cond, sa = a_in.shape(), sb = b_in.shape()](const Tensor& g) {
      const Tensor zero = zero_like_scalar(g);
      return std::vector<Tensor>{Tensor(), sum_to_shape(where_forward(cond, g, zero), sa),
                                 sum_to_shape(where_forward(cond, zero, g), sb)};
    });
  }
  return out;
}

Tensor gt(const Tensor& a, const Tensor& b) { return compare(CompareOp::gt, a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return compare(CompareOp::lt, a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return compare(CompareOp::ge, a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return compare(CompareOp::le, a, b); }
Tensor eq(const Tensor& a, const Tensor& b) { return compare(CompareOp::eq, a, b); }
Tensor ne(const Tensor& a, const Tensor& b) { return compare(CompareOp::ne, a, b); }

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator+(const Tensor& a, double s) { return add(a, s); }
Tensor operator*(const Tensor& a, double s) { return mul(a, s); }
Tensor operator*(double s, const Tensor& a) { return mul(a, s); }

}  // namespace lockstep
