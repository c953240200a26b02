// Helpers of the CUDA tests: host vectors to device tensors and back, so a test can call a
// *_cpu kernel and its *_cuda twin on the same inputs and compare the bytes.
#pragma once
#include <vector>

#include "core/tensor.h"
#include "kernels/memory.h"
#include "test_util.h"

namespace lockstep_cuda_test {

using lockstep::Device;
using lockstep::Tensor;

// A device copy of v (shape {n}).
template <typename T>
inline Tensor dev(const std::vector<T>& v) {
  return Tensor::from_vector(v, {static_cast<int64_t>(v.size())}).to(Device::cuda);
}

// An uninitialised device buffer of n elements of T (at least one, so the pointer is valid).
template <typename T>
inline Tensor dev_empty(int64_t n) {
  return Tensor::empty({n > 0 ? n : 1}, lockstep::dtype_of<T>(), Device::cuda);
}

// The device tensor's first n elements on the host.
template <typename T>
inline std::vector<T> host(const Tensor& t, int64_t n) {
  std::vector<T> v = t.to(Device::cpu).to_vector<T>();
  v.resize(static_cast<size_t>(n));
  return v;
}

template <typename T>
inline T* ptr(Tensor& t) {
  return t.data<T>();
}

inline std::vector<double> to_double(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

}  // namespace lockstep_cuda_test
