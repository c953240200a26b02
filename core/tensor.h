// Tensor: a handle to shared, device-resident, row-major storage.
// Copying a Tensor makes an alias; clone() makes a deep copy. Views (reshape, transpose)
// share storage; kernels see only contiguous data (ops call contiguous() first).
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "base/dtype.h"
#include "base/error.h"
#include "core/storage.h"

namespace lockstep {

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& s);  // "64x128", "[]" for a 0-d tensor
int64_t shape_numel(const Shape& s);

inline constexpr int kMaxDims = 8;

struct Node;  // core/autograd.h

// Autograd state of a tensor. A leaf (grad_fn == null) with requires_grad accumulates its
// gradient in `grad`; a non-leaf points at the node that made it.
struct AutogradMeta {
  bool requires_grad = false;
  std::shared_ptr<class Tensor> grad;
  std::shared_ptr<Node> grad_fn;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements
  Shape shape;
  Shape strides;       // in elements
  DType dtype = DType::f32;
  bool contiguous = true;
  AutogradMeta autograd;
};

class Tensor {
 public:
  Tensor() = default;  // undefined tensor (defined() == false)

  // ---- creation ----
  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu);
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu);
  static Tensor ones(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu);
  static Tensor full(const Shape& shape, double value, DType dtype = DType::f32,
                     Device device = Device::cpu);
  static Tensor scalar(double value, DType dtype = DType::f32);  // 0-d
  // Copies values in row-major order; values.size() must equal the shape's element count.
  static Tensor from_vector(const std::vector<float>& values, const Shape& shape);
  static Tensor from_vector(const std::vector<double>& values, const Shape& shape);
  static Tensor from_vector(const std::vector<int64_t>& values, const Shape& shape);
  static Tensor from_vector(const std::vector<uint8_t>& values, const Shape& shape);
  // Braced lists pick the element type exactly: from_vector({1.f, 2.f}, {2}) is float32.
  static Tensor from_vector(std::initializer_list<float> values, const Shape& shape) {
    return from_vector(std::vector<float>(values), shape);
  }
  static Tensor from_vector(std::initializer_list<double> values, const Shape& shape) {
    return from_vector(std::vector<double>(values), shape);
  }
  static Tensor arange(int64_t n, DType dtype = DType::f32);  // 0, 1, ..., n-1

  // ---- properties ----
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  const Shape& strides() const;
  int64_t dim() const { return static_cast<int64_t>(shape().size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const;
  DType dtype() const;
  Device device() const;
  bool is_contiguous() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype()); }
  std::string str() const;  // "float32 64x128 cpu"

  // Typed pointer to the first element; requires dtype T. data() requires a contiguous
  // CPU tensor for reading through it; raw pointers on CUDA tensors are device pointers.
  template <typename T> T* data();
  template <typename T> const T* data() const;
  void* raw_data() const;  // first element, any dtype and device

  // ---- copies, views, conversions ----
  Tensor clone() const;                      // deep copy, contiguous
  Tensor contiguous() const;                 // this if contiguous, else a packed copy
  Tensor reshape(const Shape& shape) const;  // view when contiguous; one dim may be -1
  Tensor flatten() const { return reshape({numel()}); }
  Tensor transpose(int64_t d0, int64_t d1) const;  // strided view
  Tensor t() const;                          // 2-D transpose view
  Tensor permute(const std::vector<int64_t>& dims) const;  // strided view: dim i of the result is dims[i]
  Tensor to(Device device) const;            // copy to a device (alias if already there)
  Tensor to(DType dtype) const;              // converted copy (alias if same dtype)
  void copy_(const Tensor& src);             // same shape and dtype; any devices
  void fill_(double value);
  void zero_() { fill_(0.0); }

  // ---- host access ----
  double item() const;  // one-element tensor as double
  template <typename T> std::vector<T> to_vector() const;  // row-major copy; dtype must be T

  // ---- autograd (core/autograd.h) ----
  bool requires_grad() const;
  Tensor& set_requires_grad(bool on = true);  // leaves only
  bool is_leaf() const;
  // The accumulated gradient of a leaf (undefined until a backward pass reaches it).
  Tensor grad() const;
  void set_grad(const Tensor& g);             // same shape/dtype/device, or undefined to clear
  void zero_grad();                           // clears the gradient (like set_to_none=True)
  // Reverse-mode pass from this tensor; grad_output defaults to 1 for a one-element tensor.
  void backward(const Tensor& grad_output = Tensor()) const;
  const std::shared_ptr<Node>& grad_fn() const;
  Tensor detach() const;                      // alias of the data, outside the graph

  bool same_storage(const Tensor& other) const;
  const std::shared_ptr<TensorImpl>& impl() const { return impl_; }

 private:
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}
  void require_defined(const char* op) const;
  std::shared_ptr<TensorImpl> impl_;
};

}  // namespace lockstep

#include "core/ops.h"
