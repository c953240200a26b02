// CUDA activation backward kernels (kernels/activation.h): one thread per element, the
// formulas of namespace act (shared with activation_cpu.cpp), so the bits are the CPU's.
#include "kernels/activation.h"
#include "kernels/cuda_common.cuh"

namespace lockstep {
namespace {

using namespace cuda_detail;

enum class Act { relu, tanh, sigmoid, gelu, silu };

template <Act A, typename T>
__global__ void act_backward_kernel(T* dx, const T* dy, const T* v, int64_t n) {
  LS_CUDA_FOR(i, n) {
    if constexpr (A == Act::relu) dx[i] = act::relu_grad(dy[i], v[i]);
    if constexpr (A == Act::tanh) dx[i] = act::tanh_grad(dy[i], v[i]);
    if constexpr (A == Act::sigmoid) dx[i] = act::sigmoid_grad(dy[i], v[i]);
    if constexpr (A == Act::gelu) dx[i] = act::gelu_grad(dy[i], v[i]);
    if constexpr (A == Act::silu) dx[i] = act::silu_grad(dy[i], v[i]);
  }
}

template <Act A, typename T>
void launch(T* dx, const T* dy, const T* v, int64_t n) {
  if (n <= 0) return;
  LS_LAUNCH(act_backward_kernel<A>, grid_for(n), kThreads, 0, cuda_stream(), dx, dy, v, n);
  CUDA_CHECK_LAUNCH("act_backward_kernel");
}

}  // namespace

template <typename T>
void relu_backward_cuda(const Exec&, T* dx, const T* dy, const T* x, int64_t n) {
  launch<Act::relu>(dx, dy, x, n);
}
template <typename T>
void tanh_backward_cuda(const Exec&, T* dx, const T* dy, const T* y, int64_t n) {
  launch<Act::tanh>(dx, dy, y, n);
}
template <typename T>
void sigmoid_backward_cuda(const Exec&, T* dx, const T* dy, const T* y, int64_t n) {
  launch<Act::sigmoid>(dx, dy, y, n);
}
template <typename T>
void gelu_backward_cuda(const Exec&, T* dx, const T* dy, const T* x, int64_t n) {
  launch<Act::gelu>(dx, dy, x, n);
}

template <typename T>
void silu_backward_cuda(const Exec&, T* dx, const T* dy, const T* x, int64_t n) {
  launch<Act::silu>(dx, dy, x, n);
}

#define LS_ACTIVATION(T)                                                                 \
  template void relu_backward_cuda<T>(const Exec&, T*, const T*, const T*, int64_t);    \
  template void tanh_backward_cuda<T>(const Exec&, T*, const T*, const T*, int64_t);    \
  template void sigmoid_backward_cuda<T>(const Exec&, T*, const T*, const T*, int64_t); \
  template void gelu_backward_cuda<T>(const Exec&, T*, const T*, const T*, int64_t);    \
  template void silu_backward_cuda<T>(const Exec&, T*, const T*, const T*, int64_t);
LS_ACTIVATION(float)
LS_ACTIVATION(double)
#undef LS_ACTIVATION

}  // namespace lockstep
