// Views and copies as free functions (torch.reshape / transpose / permute): Tensor's members
// (core/tensor.h), which record their backward (the inverse view). No arithmetic.
#include "core/tensor.h"

namespace lockstep {

Tensor reshape(const Tensor& x, const std::vector<int64_t>& shape) { return x.reshape(shape); }
Tensor transpose(const Tensor& x, int64_t d0, int64_t d1) { return x.transpose(d0, d1); }
Tensor permute(const Tensor& x, const std::vector<int64_t>& dims) { return x.permute(dims); }
Tensor contiguous(const Tensor& x) { return x.contiguous(); }

}  // namespace lockstep
