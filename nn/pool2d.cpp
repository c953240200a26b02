#include "nn/pool2d.h"

#include "core/tensor.h"

namespace lockstep::nn {
namespace {
Size2 or_kernel(Size2 stride, Size2 kernel) { return stride[0] == 0 && stride[1] == 0 ? kernel : stride; }
std::string pair_str(Size2 v) { return v[0] == v[1] ? str_cat(v[0]) : str_cat("(", v[0], ", ", v[1], ")"); }
// A negative dim counts from the end (PyTorch); out of range is an error naming the module.
int64_t wrap_dim(const char* who, int64_t d, int64_t rank) {
  const int64_t w = d < 0 ? d + rank : d;
  LS_CHECK_ARG(w >= 0 && w < rank, who, "dim ", d, " is out of range for an input of rank ", rank);
  return w;
}
}  // namespace

MaxPool2d::MaxPool2d(Size2 kernel, Size2 stride, Size2 padding)
    : Module("MaxPool2d"), k_(kernel), s_(or_kernel(stride, kernel)), p_(padding) {}
std::string MaxPool2d::extra_repr() const {
  return str_cat("kernel_size=", pair_str(k_), ", stride=", pair_str(s_), ", padding=", pair_str(p_),
                 ", dilation=1, ceil_mode=False");
}

AvgPool2d::AvgPool2d(Size2 kernel, Size2 stride, Size2 padding, bool count_include_pad)
    : Module("AvgPool2d"), k_(kernel), s_(or_kernel(stride, kernel)), p_(padding),
      count_include_pad_(count_include_pad) {}
std::string AvgPool2d::extra_repr() const {
  return str_cat("kernel_size=", pair_str(k_), ", stride=", pair_str(s_), ", padding=", pair_str(p_),
                 count_include_pad_ ? "" : ", count_include_pad=False");
}

AdaptiveAvgPool2d::AdaptiveAvgPool2d(Size2 output_size) : Module("AdaptiveAvgPool2d"), out_(output_size) {}
std::string AdaptiveAvgPool2d::extra_repr() const { return str_cat("output_size=", pair_str(out_)); }

Flatten::Flatten(int64_t start_dim, int64_t end_dim) : Module("Flatten"), start_(start_dim), end_(end_dim) {}
Tensor Flatten::forward(const Tensor& x) {
  LS_CHECK_ARG(x.defined(), "Flatten", "expected a defined input");
  const int64_t rank = std::max<int64_t>(x.dim(), 1);
  const int64_t s = wrap_dim("Flatten", start_, rank), e = wrap_dim("Flatten", end_, rank);
  LS_CHECK_ARG(s <= e, "Flatten", "start_dim ", start_, " comes after end_dim ", end_, " for an input of rank ", rank);
  if (x.dim() == 0) return x.reshape({1});
  Shape out;
  for (int64_t d = 0; d < s; ++d) out.push_back(x.size(d));
  int64_t m = 1;
  for (int64_t d = s; d <= e; ++d) m *= x.size(d);
  out.push_back(m);
  for (int64_t d = e + 1; d < x.dim(); ++d) out.push_back(x.size(d));
  return x.reshape(out);
}
std::string Flatten::extra_repr() const { return str_cat("start_dim=", start_, ", end_dim=", end_); }

Unflatten::Unflatten(int64_t dim, Shape sizes) : Module("Unflatten"), dim_(dim), sizes_(std::move(sizes)) {
  LS_CHECK_ARG(!sizes_.empty(), "Unflatten", "expected at least one size");
}
Tensor Unflatten::forward(const Tensor& x) {
  LS_CHECK_ARG(x.defined() && x.dim() >= 1, "Unflatten", "expected an input with at least one dim");
  const int64_t d = wrap_dim("Unflatten", dim_, x.dim());
  int64_t m = 1;
  for (int64_t v : sizes_) m *= v;
  LS_CHECK_ARG(m == x.size(d), "Unflatten", "sizes ", shape_str(sizes_), " have ", m, " elements, dim ", dim_,
               " of the input ", shape_str(x.shape()), " has ", x.size(d));
  Shape out;
  for (int64_t i = 0; i < d; ++i) out.push_back(x.size(i));
  out.insert(out.end(), sizes_.begin(), sizes_.end());
  for (int64_t i = d + 1; i < x.dim(); ++i) out.push_back(x.size(i));
  return x.reshape(out);
}
std::string Unflatten::extra_repr() const { return str_cat("dim=", dim_, ", unflattened_size=", shape_str(sizes_)); }

}  // namespace lockstep::nn
