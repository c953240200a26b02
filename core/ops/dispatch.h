// The one place an op chooses device x dtype x mode. An op front end checks its arguments,
// allocates, then calls its kernel once:
//
//   dispatch_float("softmax", x, [&](auto on, auto t) {
//     using T = decltype(t);
//     LS_KERNEL(on, softmax_forward, out.data<T>(), x.data<T>(), rows, cols);
//   });
//
// `on` says where the kernel runs (OnCpu or OnCuda) and carries on.exec, the Exec the
// kernel is given (base/exec.h: mode, SIMD level, TF32), read from the process-wide
// settings once per call. `t` is a value of the element type (float or double).
// LS_KERNEL(on, name, args...) calls name_cpu(on.exec, args...) or name_cuda(on.exec,
// args...). A build without CUDA never makes an OnCuda, so the CUDA branch is never
// compiled there and the CUDA kernels need no stubs: a CUDA tensor in such a build is an
// error here, naming the op.
//
// Where fast mode picks another algorithm (gemm_fast, sum_fast), the op says so next to its
// one LS_KERNEL line (`on.exec.fast() ? ... : ...`); where it only changes a step inside a
// kernel, the kernel reads exec.mode. Either way no kernel reads a global.
#pragma once
#include <type_traits>

#include "base/dtype.h"
#include "base/error.h"
#include "base/exec.h"
#include "lockstep/config.h"

namespace lockstep {

struct OnCpu {
  static constexpr Device device = Device::cpu;
  Exec exec;
};
struct OnCuda {
  static constexpr Device device = Device::cuda;
  Exec exec;
};

namespace ops_detail {

[[noreturn]] inline void no_cuda(const char* op) {
  throw std::runtime_error(str_cat("[", op, "] lockstep was built without CUDA"));
}

template <typename T, typename Fn>
decltype(auto) on_device(const char* op, Device device, Fn&& fn) {
  if (device == Device::cuda) {
    if constexpr (LOCKSTEP_HAS_CUDA) return fn(OnCuda{Exec::current()}, T{});
    else no_cuda(op);
  }
  return fn(OnCpu{Exec::current()}, T{});
}

}  // namespace ops_detail

// fn(on, T{}) for T = float or double, as dtype says; any other dtype is a caller error.
template <typename Fn>
decltype(auto) dispatch_float(const char* op, Device device, DType dtype, Fn&& fn) {
  if (dtype == DType::f64) return ops_detail::on_device<double>(op, device, fn);
  LS_CHECK_ARG(dtype == DType::f32, op, "expected float32 or float64, got ", dtype_name(dtype));
  return ops_detail::on_device<float>(op, device, fn);
}

// The same over every dtype a kernel may be instantiated for (float, double, int64, uint8).
template <typename Fn>
decltype(auto) dispatch_any(const char* op, Device device, DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::f64: return ops_detail::on_device<double>(op, device, fn);
    case DType::i64: return ops_detail::on_device<int64_t>(op, device, fn);
    case DType::u8: return ops_detail::on_device<uint8_t>(op, device, fn);
    case DType::f32: break;
  }
  return ops_detail::on_device<float>(op, device, fn);
}

}  // namespace lockstep

// Calls name##_cpu(on.exec, ...) or name##_cuda(on.exec, ...) for the device tag `on`.
#define LS_KERNEL(on, name, ...)                                                           \
  do {                                                                                     \
    if constexpr (std::decay_t<decltype(on)>::device == ::lockstep::Device::cuda)          \
      name##_cuda((on).exec, __VA_ARGS__);                                                 \
    else                                                                                   \
      name##_cpu((on).exec, __VA_ARGS__);                                                  \
  } while (0)
