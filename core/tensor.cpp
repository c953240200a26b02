#include "core/tensor.h"

#include <algorithm>
#include <climits>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "base/parallel.h"
#include "core/autograd.h"
#include "kernels/memory.h"

namespace lockstep {

std::string shape_str(const Shape& s) {
  if (s.empty()) return "[]";
  std::ostringstream os;
  for (size_t i = 0; i < s.size(); ++i) os << (i ? "x" : "") << s[i];
  return os.str();
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s)
    if (__builtin_mul_overflow(n, d, &n))
      throw std::invalid_argument(str_cat("[shape] ", shape_str(s), " has more elements than an int64 holds"));
  return n;
}

namespace {

Shape contiguous_strides(const Shape& shape) {
  Shape st(shape.size());
  int64_t s = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    st[i] = s;
    s *= shape[i];
  }
  return st;
}

bool strides_are_contiguous(const Shape& shape, const Shape& strides) {
  int64_t s = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    if (shape[i] != 1 && strides[i] != s) return false;
    s *= shape[i];
  }
  return true;
}

void check_shape(const Shape& shape, const char* op) {
  LS_CHECK_ARG(shape.size() <= static_cast<size_t>(kMaxDims), op, "expected at most ", kMaxDims,
               " dims, got ", shape.size());
  for (int64_t d : shape) LS_CHECK_ARG(d >= 0, op, "expected non-negative sizes, got ", shape_str(shape));
  // Shapes come from files too: the strides (products of the sizes, zeros counted as 1)
  // and the byte count must fit, or later arithmetic would wrap.
  int64_t span = 1;
  for (int64_t d : shape)
    LS_CHECK_ARG(!__builtin_mul_overflow(span, std::max<int64_t>(d, 1), &span), op, "shape ", shape_str(shape),
                 " is too large: its strides overflow int64");
}

// Reads element i (row-major index into a contiguous CPU buffer) as double.
double load_as_double(const void* p, DType t, int64_t i) {
  switch (t) {
    case DType::f32: return static_cast<const float*>(p)[i];
    case DType::f64: return static_cast<const double*>(p)[i];
    case DType::i64: return static_cast<double>(static_cast<const int64_t*>(p)[i]);
    case DType::u8: return static_cast<const uint8_t*>(p)[i];
  }
  return 0;
}

// Writes v to element i converted like a C++ static_cast (floats to integers truncate).
void store_from_double(void* p, DType t, int64_t i, double v) {
  switch (t) {
    case DType::f32: static_cast<float*>(p)[i] = static_cast<float>(v); break;
    case DType::f64: static_cast<double*>(p)[i] = v; break;
    case DType::i64: static_cast<int64_t*>(p)[i] = static_cast<int64_t>(v); break;
    case DType::u8: static_cast<uint8_t*>(p)[i] = static_cast<uint8_t>(v); break;
  }
}

template <typename T>
Tensor make_from(const std::vector<T>& values, const Shape& shape) {
  check_shape(shape, "from_vector");
  LS_CHECK_ARG(static_cast<int64_t>(values.size()) == shape_numel(shape), "from_vector", "expected ",
               shape_numel(shape), " values for shape ", shape_str(shape), ", got ", values.size());
  Tensor t = Tensor::empty(shape, dtype_of<T>());
  if (!values.empty()) std::memcpy(t.raw_data(), values.data(), values.size() * sizeof(T));
  return t;
}

}  // namespace

// ---- creation ----

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  check_shape(shape, "empty");
  LS_CHECK_ARG(shape_numel(shape) <= INT64_MAX / static_cast<int64_t>(dtype_size(dtype)), "empty", "shape ",
               shape_str(shape), " of ", dtype_name(dtype), " is too large: its byte count overflows int64");
  if (device == Device::cuda && !cuda_device_available())
    throw std::runtime_error("[empty] no CUDA device is available");
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  impl->storage = std::make_shared<Storage>(static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype), device);
  return Tensor(std::move(impl));
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill_(0.0);
  return t;
}

Tensor Tensor::ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1.0, dtype, device); }

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill_(value);
  return t;
}

Tensor Tensor::scalar(double value, DType dtype) { return full({}, value, dtype); }

Tensor Tensor::from_vector(const std::vector<float>& v, const Shape& s) { return make_from(v, s); }
Tensor Tensor::from_vector(const std::vector<double>& v, const Shape& s) { return make_from(v, s); }
Tensor Tensor::from_vector(const std::vector<int64_t>& v, const Shape& s) { return make_from(v, s); }
Tensor Tensor::from_vector(const std::vector<uint8_t>& v, const Shape& s) { return make_from(v, s); }

Tensor Tensor::arange(int64_t n, DType dtype) {
  LS_CHECK_ARG(n >= 0, "arange", "expected n >= 0, got ", n);
  Tensor t = empty({n}, dtype);
  for (int64_t i = 0; i < n; ++i) store_from_double(t.raw_data(), dtype, i, static_cast<double>(i));
  return t;
}

// ---- properties ----

void Tensor::require_defined(const char* op) const {
  if (!impl_) throw std::invalid_argument(str_cat("[", op, "] expected a defined tensor, got an undefined one"));
}

const Shape& Tensor::shape() const {
  require_defined("shape");
  return impl_->shape;
}
const Shape& Tensor::strides() const {
  require_defined("strides");
  return impl_->strides;
}

int64_t Tensor::size(int64_t d) const {
  int64_t n = dim();
  LS_CHECK_ARG(d >= -n && d < n, "size", "dim ", d, " out of range for a ", n, "-d tensor");
  return shape()[d < 0 ? d + n : d];
}

int64_t Tensor::numel() const { return shape_numel(shape()); }
DType Tensor::dtype() const {
  require_defined("dtype");
  return impl_->dtype;
}
Device Tensor::device() const {
  require_defined("device");
  return impl_->storage->device();
}
bool Tensor::is_contiguous() const {
  require_defined("is_contiguous");
  return impl_->contiguous;
}

std::string Tensor::str() const {
  if (!impl_) return "undefined";
  return str_cat(dtype_name(dtype()), " ", shape_str(shape()), " ", device_name(device()));
}

void* Tensor::raw_data() const {
  require_defined("data");
  return static_cast<char*>(impl_->storage->data()) + impl_->offset * static_cast<int64_t>(dtype_size(impl_->dtype));
}

template <typename T>
T* Tensor::data() {
  require_defined("data");
  LS_CHECK_ARG(impl_->dtype == dtype_of<T>(), "data", "expected dtype ", dtype_name(dtype_of<T>()),
               ", got ", dtype_name(impl_->dtype));
  return static_cast<T*>(raw_data());
}
template <typename T>
const T* Tensor::data() const {
  return const_cast<Tensor*>(this)->data<T>();
}
template float* Tensor::data<float>();
template double* Tensor::data<double>();
template int64_t* Tensor::data<int64_t>();
template uint8_t* Tensor::data<uint8_t>();
template const float* Tensor::data<float>() const;
template const double* Tensor::data<double>() const;
template const int64_t* Tensor::data<int64_t>() const;
template const uint8_t* Tensor::data<uint8_t>() const;

// ---- copies, views, conversions ----

Tensor Tensor::clone() const {
  require_defined("clone");
  Tensor out = empty(shape(), dtype(), device());
  out.copy_(*this);
  if (should_record({this})) record(out, "clone", {*this}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
  return out;
}

Tensor Tensor::contiguous() const {
  require_defined("contiguous");
  return is_contiguous() ? *this : clone();
}

Tensor Tensor::reshape(const Shape& new_shape) const {
  require_defined("reshape");
  Shape s = new_shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      LS_CHECK_ARG(infer < 0, "reshape", "only one dim may be -1, got ", shape_str(new_shape));
      infer = static_cast<int64_t>(i);
    } else {
      LS_CHECK_ARG(s[i] >= 0, "reshape", "expected sizes >= 0 or -1, got ", shape_str(new_shape));
      known *= s[i];
    }
  }
  if (infer >= 0) {
    LS_CHECK_ARG(known != 0 && numel() % known == 0, "reshape", "cannot reshape ", shape_str(shape()),
                 " into ", shape_str(new_shape));
    s[infer] = numel() / known;
  }
  check_shape(s, "reshape");
  LS_CHECK_ARG(shape_numel(s) == numel(), "reshape", "cannot reshape ", shape_str(shape()), " (", numel(),
               " elements) into ", shape_str(s), " (", shape_numel(s), " elements)");
  Tensor base = contiguous();
  auto impl = std::make_shared<TensorImpl>(*base.impl_);
  impl->shape = s;
  impl->strides = contiguous_strides(s);
  impl->contiguous = true;
  impl->autograd = AutogradMeta{};
  Tensor out(std::move(impl));
  if (should_record({&base})) {
    Shape in_shape = shape();
    record(out, "reshape", {base}, [in_shape](const Tensor& g) { return std::vector<Tensor>{g.reshape(in_shape)}; });
  }
  return out;
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  int64_t n = dim();
  LS_CHECK_ARG(d0 >= -n && d0 < n && d1 >= -n && d1 < n, "transpose", "dims ", d0, ", ", d1,
               " out of range for a ", n, "-d tensor");
  if (d0 < 0) d0 += n;
  if (d1 < 0) d1 += n;
  auto impl = std::make_shared<TensorImpl>(*impl_);
  std::swap(impl->shape[d0], impl->shape[d1]);
  std::swap(impl->strides[d0], impl->strides[d1]);
  impl->contiguous = strides_are_contiguous(impl->shape, impl->strides);
  impl->autograd = AutogradMeta{};
  Tensor out(std::move(impl));
  if (should_record({this}))
    record(out, "transpose", {*this}, [d0, d1](const Tensor& g) { return std::vector<Tensor>{g.transpose(d0, d1)}; });
  return out;
}

Tensor Tensor::permute(const std::vector<int64_t>& dims_in) const {
  require_defined("permute");
  const int64_t n = dim();
  LS_CHECK_ARG(static_cast<int64_t>(dims_in.size()) == n, "permute", "expected ", n, " dims for a ",
               shape_str(shape()), " tensor, got ", dims_in.size());
  std::vector<int64_t> dims(dims_in);
  std::vector<bool> seen(static_cast<size_t>(n), false);
  for (auto& d : dims) {
    LS_CHECK_ARG(d >= -n && d < n, "permute", "dim ", d, " out of range for a ", n, "-d tensor");
    if (d < 0) d += n;
    LS_CHECK_ARG(!seen[static_cast<size_t>(d)], "permute", "dim ", d, " appears twice");
    seen[static_cast<size_t>(d)] = true;
  }
  auto impl = std::make_shared<TensorImpl>(*impl_);
  for (int64_t i = 0; i < n; ++i) {
    impl->shape[i] = impl_->shape[dims[i]];
    impl->strides[i] = impl_->strides[dims[i]];
  }
  impl->contiguous = strides_are_contiguous(impl->shape, impl->strides);
  impl->autograd = AutogradMeta{};
  Tensor out(std::move(impl));
  if (should_record({this})) {
    std::vector<int64_t> inv(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) inv[static_cast<size_t>(dims[i])] = i;
    record(out, "permute", {*this}, [inv](const Tensor& g) { return std::vector<Tensor>{g.permute(inv)}; });
  }
  return out;
}

Tensor Tensor::t() const {
  LS_CHECK_ARG(dim() == 2, "t", "expected a 2-d tensor, got ", shape_str(shape()));
  return transpose(0, 1);
}

Tensor Tensor::to(Device target) const {
  require_defined("to");
  if (device() == target) return *this;
  Tensor out = empty(shape(), dtype(), target);
  out.copy_(*this);
  return out;
}

Tensor Tensor::to(DType target) const {
  require_defined("to");
  if (dtype() == target) return *this;
  Tensor src = contiguous().to(Device::cpu);
  Tensor out = empty(shape(), target);
  const int64_t n = numel();
  for (int64_t i = 0; i < n; ++i)
    store_from_double(out.raw_data(), target, i, load_as_double(src.raw_data(), src.dtype(), i));
  return out.to(device());
}

namespace {

// dst (contiguous, row-major) = the view of src with `shape` and element `strides`, for
// elements of es bytes. A copy: the bits are the source's. Threads take ranges of rows
// (the last dim), at least kCopyGrain bytes each.
void gather_strided(void* dst, const void* src, size_t es, const Shape& shape, const Shape& strides) {
  constexpr int64_t kCopyGrain = 1 << 18;
  const int64_t nd = static_cast<int64_t>(shape.size());
  const int64_t n = shape_numel(shape);
  if (n == 0) return;
  if (nd == 0) {
    std::memcpy(dst, src, es);
    return;
  }
  const int64_t inner = shape[nd - 1], step = strides[nd - 1], rows = n / inner;
  const int64_t e = static_cast<int64_t>(es);
  parallel_for(rows, std::max<int64_t>(1, kCopyGrain / (inner * e)), [&](int64_t r0, int64_t r1) {
    // The odometer over dims nd-2 .. 0 at row r0, and the element offset of its start.
    std::vector<int64_t> idx(static_cast<size_t>(nd), 0);
    int64_t off = 0;
    for (int64_t k = nd - 2, r = r0; k >= 0; --k) {
      idx[k] = r % shape[k];
      off += idx[k] * strides[k];
      r /= shape[k];
    }
    const char* s = static_cast<const char*>(src);
    char* d = static_cast<char*>(dst) + r0 * inner * e;
    for (int64_t r = r0; r < r1; ++r, d += inner * e) {
      const char* row = s + off * e;
      if (step == 1) {
        std::memcpy(d, row, static_cast<size_t>(inner * e));
      } else if (es == 4) {
        uint32_t* o = reinterpret_cast<uint32_t*>(d);
        for (int64_t j = 0; j < inner; ++j) std::memcpy(o + j, row + j * step * 4, 4);
      } else {
        for (int64_t j = 0; j < inner; ++j) std::memcpy(d + j * e, row + j * step * e, es);
      }
      // Next row: advance the odometer.
      for (int64_t k = nd - 2; k >= 0; --k) {
        off += strides[k];
        if (++idx[k] < shape[k]) break;
        off -= strides[k] * shape[k];
        idx[k] = 0;
      }
    }
  });
}

}  // namespace

void Tensor::copy_(const Tensor& src) {
  require_defined("copy_");
  LS_CHECK_ARG(src.defined(), "copy_", "expected a defined source tensor");
  LS_CHECK_ARG(src.shape() == shape(), "copy_", "shapes differ: destination ", shape_str(shape()),
               ", source ", shape_str(src.shape()));
  LS_CHECK_ARG(src.dtype() == dtype(), "copy_", "dtypes differ: destination ", dtype_name(dtype()),
               ", source ", dtype_name(src.dtype()));
  LS_CHECK_ARG(is_contiguous(), "copy_", "expected a contiguous destination");
  const size_t es = dtype_size(dtype());
  if (!src.is_contiguous()) {
    if (src.device() == Device::cuda) {
      // Pack the view on the device, then copy the packed tensor.
      Tensor packed = empty(shape(), dtype(), Device::cuda);
      cuda_strided_copy(packed.raw_data(), src.raw_data(), es, static_cast<int>(src.dim()), src.shape().data(),
                        src.strides().data());
      copy_(packed);
      return;
    }
    // Gather a strided CPU view in row-major order: an odometer over all dims but the last,
    // whose run is one memcpy when it is contiguous, else a typed strided loop. Into a
    // scratch tensor first when the two share storage (a view copied onto its own base) or
    // the destination is on the device.
    Tensor packed = same_storage(src) || device() != Device::cpu ? empty(shape(), dtype()) : *this;
    gather_strided(packed.raw_data(), src.raw_data(), es, shape(), src.strides());
    if (!packed.same_storage(*this)) copy_(packed);
    return;
  }
  const size_t nb = nbytes();
  if (nb == 0) return;
  if (device() == Device::cpu && src.device() == Device::cpu)
    std::memcpy(raw_data(), src.raw_data(), nb);
  else if (device() == Device::cuda && src.device() == Device::cpu)
    cuda_copy_to_device(raw_data(), src.raw_data(), nb);
  else if (device() == Device::cpu && src.device() == Device::cuda)
    cuda_copy_to_host(raw_data(), src.raw_data(), nb);
  else
    cuda_copy_device_to_device(raw_data(), src.raw_data(), nb);
}

void Tensor::fill_(double value) {
  require_defined("fill_");
  LS_CHECK_ARG(is_contiguous(), "fill_", "expected a contiguous tensor");
  const int64_t n = numel();
  if (device() == Device::cuda) {
    // One element converted on the host, then a fill kernel: no host copy of the tensor.
    alignas(8) unsigned char bits[8] = {};
    store_from_double(bits, dtype(), 0, value);
    cuda_fill(raw_data(), bits, dtype_size(dtype()), n);
    return;
  }
  if (value == 0.0 && !std::signbit(value)) {
    std::memset(raw_data(), 0, nbytes());
    return;
  }
  for (int64_t i = 0; i < n; ++i) store_from_double(raw_data(), dtype(), i, value);
}

// ---- host access ----

double Tensor::item() const {
  LS_CHECK_ARG(defined() && numel() == 1, "item", "expected a one-element tensor, got ",
               defined() ? shape_str(shape()) : "undefined");
  Tensor h = to(Device::cpu);
  return load_as_double(h.raw_data(), h.dtype(), 0);
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  require_defined("to_vector");
  LS_CHECK_ARG(dtype() == dtype_of<T>(), "to_vector", "expected dtype ", dtype_name(dtype_of<T>()),
               ", got ", dtype_name(dtype()));
  Tensor h = contiguous().to(Device::cpu);
  std::vector<T> v(static_cast<size_t>(numel()));
  if (!v.empty()) std::memcpy(v.data(), h.raw_data(), v.size() * sizeof(T));
  return v;
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;
template std::vector<uint8_t> Tensor::to_vector<uint8_t>() const;

bool Tensor::same_storage(const Tensor& other) const {
  return impl_ && other.impl_ && impl_->storage == other.impl_->storage;
}

// ---- whole-tensor comparisons ----

bool equal_bits(const Tensor& a, const Tensor& b) {
  if (!a.defined() || !b.defined()) return a.defined() == b.defined();
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  Tensor ha = a.contiguous().to(Device::cpu), hb = b.contiguous().to(Device::cpu);
  return a.nbytes() == 0 || std::memcmp(ha.raw_data(), hb.raw_data(), a.nbytes()) == 0;
}

std::string hash_hex(const Tensor& t) {
  Tensor h = t.contiguous().to(Device::cpu);
  const auto* p = static_cast<const unsigned char*>(h.raw_data());
  uint64_t x = 1469598103934665603ull;  // FNV-1a 64
  for (size_t i = 0; i < h.nbytes(); ++i) {
    x ^= p[i];
    x *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(x));
  return buf;
}

}  // namespace lockstep
