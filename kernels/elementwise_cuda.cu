// CUDA elementwise kernels (kernels/elementwise.h): one thread per output element in a
// grid-stride loop; each input's offset comes from the output index and its broadcast
// strides. The per-element functions are the CPU's (namespace elem, host+device, and the
// plain IEEE operators, which --fmad=false keeps unfused), so every element has the CPU's
// bits. No element depends on another, so no order to keep.
#include "kernels/cuda_common.cuh"
#include "kernels/elementwise.h"

namespace lockstep {
namespace {

using namespace cuda_detail;

// Offsets of inputs 0..2 for output element i of the box.
struct Offsets {
  int64_t k[3];
};
__device__ Offsets offsets_of(const Broadcast& bc, int64_t i) {
  Offsets o{{0, 0, 0}};
  for (int d = bc.ndim - 1; d >= 0; --d) {
    const int64_t idx = i % bc.shape[d];
    i /= bc.shape[d];
    o.k[0] += idx * bc.stride[0][d];
    o.k[1] += idx * bc.stride[1][d];
    o.k[2] += idx * bc.stride[2][d];
  }
  return o;
}

template <BinaryOp OP>
struct BinaryFn {
  template <typename T>
  __device__ T operator()(T x, T y) const {
    if constexpr (OP == BinaryOp::add) return x + y;
    if constexpr (OP == BinaryOp::sub) return x - y;
    if constexpr (OP == BinaryOp::mul) return x * y;
    if constexpr (OP == BinaryOp::div) return x / y;
    if constexpr (OP == BinaryOp::maximum) return (x > y || x != x) ? x : y;
    if constexpr (OP == BinaryOp::minimum) return (x < y || x != x) ? x : y;
  }
};

template <CompareOp OP>
struct CompareFn {
  template <typename T>
  __device__ uint8_t operator()(T x, T y) const {
    if constexpr (OP == CompareOp::gt) return static_cast<uint8_t>(x > y);
    if constexpr (OP == CompareOp::lt) return static_cast<uint8_t>(x < y);
    if constexpr (OP == CompareOp::ge) return static_cast<uint8_t>(x >= y);
    if constexpr (OP == CompareOp::le) return static_cast<uint8_t>(x <= y);
    if constexpr (OP == CompareOp::eq) return static_cast<uint8_t>(x == y);
    if constexpr (OP == CompareOp::ne) return static_cast<uint8_t>(x != y);
  }
};

template <typename T>
struct AxpyFn {
  T alpha;
  __device__ float fma_of(float x, float y) const { return fmaf(alpha, x, y); }
  __device__ double fma_of(double x, double y) const { return fma(alpha, x, y); }
  __device__ T operator()(T x, T y) const { return fma_of(x, y); }
};

template <UnaryOp OP>
struct UnaryFn {
  __device__ float abs_of(float x) const { return fabsf(x); }
  __device__ double abs_of(double x) const { return fabs(x); }
  __device__ float sqrt_of(float x) const { return sqrtf(x); }   // IEEE: --prec-sqrt=true
  __device__ double sqrt_of(double x) const { return sqrt(x); }
  template <typename T>
  __device__ T operator()(T x) const {
    if constexpr (OP == UnaryOp::neg) return -x;
    if constexpr (OP == UnaryOp::abs) return abs_of(x);
    if constexpr (OP == UnaryOp::sqrt) return sqrt_of(x);
    if constexpr (OP == UnaryOp::relu) return elem::relu(x);
    if constexpr (OP == UnaryOp::exp) return elem::exp(x);
    if constexpr (OP == UnaryOp::log) return elem::log(x);
    if constexpr (OP == UnaryOp::tanh) return elem::tanh(x);
    if constexpr (OP == UnaryOp::sigmoid) return elem::sigmoid(x);
    if constexpr (OP == UnaryOp::gelu) return elem::gelu(x);
    if constexpr (OP == UnaryOp::silu) return elem::silu(x);
  }
};

template <typename TO, typename TA, typename TB, typename F>
__global__ void apply2_kernel(TO* out, const TA* a, const TB* b, Broadcast bc, int64_t n, F f) {
  LS_CUDA_FOR(i, n) {
    const Offsets o = offsets_of(bc, i);
    out[i] = f(a[o.k[0]], b[o.k[1]]);
  }
}

template <typename T>
__global__ void where_kernel(T* out, const uint8_t* cond, const T* a, const T* b, Broadcast bc, int64_t n) {
  LS_CUDA_FOR(i, n) {
    const Offsets o = offsets_of(bc, i);
    out[i] = cond[o.k[2]] ? a[o.k[0]] : b[o.k[1]];
  }
}

template <typename T, typename F>
__global__ void scalar_kernel(T* out, const T* a, T s, int64_t n, F f) {
  LS_CUDA_FOR(i, n) out[i] = f(a[i], s);
}

template <typename T, typename F>
__global__ void unary_kernel(T* out, const T* x, int64_t n, F f) {
  LS_CUDA_FOR(i, n) out[i] = f(x[i]);
}

template <typename TO, typename TA, typename TB, typename F>
void apply2(TO* out, const TA* a, const TB* b, const Broadcast& bc, F f) {
  const int64_t n = bc.numel();
  if (n == 0) return;
  LS_LAUNCH(apply2_kernel, grid_for(n), kThreads, 0, cuda_stream(), out, a, b, bc, n, f);
  CUDA_CHECK_LAUNCH("apply2_kernel");
}

template <typename T>
void binary_impl(BinaryOp op, T* out, const T* a, const T* b, const Broadcast& bc) {
  switch (op) {
    case BinaryOp::add: return apply2(out, a, b, bc, BinaryFn<BinaryOp::add>{});
    case BinaryOp::sub: return apply2(out, a, b, bc, BinaryFn<BinaryOp::sub>{});
    case BinaryOp::mul: return apply2(out, a, b, bc, BinaryFn<BinaryOp::mul>{});
    case BinaryOp::div: return apply2(out, a, b, bc, BinaryFn<BinaryOp::div>{});
    case BinaryOp::maximum: return apply2(out, a, b, bc, BinaryFn<BinaryOp::maximum>{});
    case BinaryOp::minimum: return apply2(out, a, b, bc, BinaryFn<BinaryOp::minimum>{});
  }
}

template <typename T, typename F>
void scalar_launch(T* out, const T* a, T s, int64_t n, F f) {
  if (n <= 0) return;
  LS_LAUNCH(scalar_kernel, grid_for(n), kThreads, 0, cuda_stream(), out, a, s, n, f);
  CUDA_CHECK_LAUNCH("scalar_kernel");
}

template <typename T>
void binary_scalar_impl(BinaryOp op, T* out, const T* a, T s, int64_t n) {
  switch (op) {
    case BinaryOp::add: return scalar_launch(out, a, s, n, BinaryFn<BinaryOp::add>{});
    case BinaryOp::sub: return scalar_launch(out, a, s, n, BinaryFn<BinaryOp::sub>{});
    case BinaryOp::mul: return scalar_launch(out, a, s, n, BinaryFn<BinaryOp::mul>{});
    case BinaryOp::div: return scalar_launch(out, a, s, n, BinaryFn<BinaryOp::div>{});
    case BinaryOp::maximum: return scalar_launch(out, a, s, n, BinaryFn<BinaryOp::maximum>{});
    case BinaryOp::minimum: return scalar_launch(out, a, s, n, BinaryFn<BinaryOp::minimum>{});
  }
}

template <typename T>
void compare_impl(CompareOp op, uint8_t* out, const T* a, const T* b, const Broadcast& bc) {
  switch (op) {
    case CompareOp::gt: return apply2(out, a, b, bc, CompareFn<CompareOp::gt>{});
    case CompareOp::lt: return apply2(out, a, b, bc, CompareFn<CompareOp::lt>{});
    case CompareOp::ge: return apply2(out, a, b, bc, CompareFn<CompareOp::ge>{});
    case CompareOp::le: return apply2(out, a, b, bc, CompareFn<CompareOp::le>{});
    case CompareOp::eq: return apply2(out, a, b, bc, CompareFn<CompareOp::eq>{});
    case CompareOp::ne: return apply2(out, a, b, bc, CompareFn<CompareOp::ne>{});
  }
}

template <typename T>
void where_impl(T* out, const uint8_t* cond, const T* a, const T* b, const Broadcast& bc) {
  const int64_t n = bc.numel();
  if (n == 0) return;
  LS_LAUNCH(where_kernel, grid_for(n), kThreads, 0, cuda_stream(), out, cond, a, b, bc, n);
  CUDA_CHECK_LAUNCH("where_kernel");
}

template <typename T, typename F>
void unary_launch(T* out, const T* x, int64_t n, F f) {
  if (n <= 0) return;
  LS_LAUNCH(unary_kernel, grid_for(n), kThreads, 0, cuda_stream(), out, x, n, f);
  CUDA_CHECK_LAUNCH("unary_kernel");
}

template <typename T>
void unary_impl(UnaryOp op, T* out, const T* x, int64_t n) {
  switch (op) {
    case UnaryOp::neg: return unary_launch(out, x, n, UnaryFn<UnaryOp::neg>{});
    case UnaryOp::abs: return unary_launch(out, x, n, UnaryFn<UnaryOp::abs>{});
    case UnaryOp::sqrt: return unary_launch(out, x, n, UnaryFn<UnaryOp::sqrt>{});
    case UnaryOp::relu: return unary_launch(out, x, n, UnaryFn<UnaryOp::relu>{});
    case UnaryOp::exp: return unary_launch(out, x, n, UnaryFn<UnaryOp::exp>{});
    case UnaryOp::log: return unary_launch(out, x, n, UnaryFn<UnaryOp::log>{});
    case UnaryOp::tanh: return unary_launch(out, x, n, UnaryFn<UnaryOp::tanh>{});
    case UnaryOp::sigmoid: return unary_launch(out, x, n, UnaryFn<UnaryOp::sigmoid>{});
    case UnaryOp::gelu: return unary_launch(out, x, n, UnaryFn<UnaryOp::gelu>{});
    case UnaryOp::silu: return unary_launch(out, x, n, UnaryFn<UnaryOp::silu>{});
  }
}

}  // namespace

// The Exec is not read: no CUDA elementwise kernel varies by mode or SIMD level.
template <typename T>
void binary_cuda(const Exec&, BinaryOp op, T* out, const T* a, const T* b, const Broadcast& bc) {
  binary_impl(op, out, a, b, bc);
}
template <typename T>
void binary_scalar_cuda(const Exec&, BinaryOp op, T* out, const T* a, T s, int64_t n) {
  binary_scalar_impl(op, out, a, s, n);
}
template <typename T>
void compare_cuda(const Exec&, CompareOp op, uint8_t* out, const T* a, const T* b, const Broadcast& bc) {
  compare_impl(op, out, a, b, bc);
}
template <typename T>
void where_cuda(const Exec&, T* out, const uint8_t* cond, const T* a, const T* b, const Broadcast& bc) {
  where_impl(out, cond, a, b, bc);
}
template <typename T>
void axpy_cuda(const Exec&, T* out, T alpha, const T* x, const T* y, const Broadcast& bc) {
  apply2(out, x, y, bc, AxpyFn<T>{alpha});
}
template <typename T>
void unary_cuda(const Exec&, UnaryOp op, T* out, const T* x, int64_t n) {
  unary_impl(op, out, x, n);
}

// The instantiations of elementwise_cpu.cpp.
#define LS_ELEMENTWISE_FLOAT(T)                                                                   \
  template void binary_cuda<T>(const Exec&, BinaryOp, T*, const T*, const T*, const Broadcast&); \
  template void binary_scalar_cuda<T>(const Exec&, BinaryOp, T*, const T*, T, int64_t);          \
  template void axpy_cuda<T>(const Exec&, T*, T, const T*, const T*, const Broadcast&);          \
  template void unary_cuda<T>(const Exec&, UnaryOp, T*, const T*, int64_t);
#define LS_ELEMENTWISE_COMPARE(T) \
  template void compare_cuda<T>(const Exec&, CompareOp, uint8_t*, const T*, const T*, const Broadcast&);
#define LS_ELEMENTWISE_WHERE(T) \
  template void where_cuda<T>(const Exec&, T*, const uint8_t*, const T*, const T*, const Broadcast&);
LS_ELEMENTWISE_FLOAT(float)
LS_ELEMENTWISE_FLOAT(double)
LS_ELEMENTWISE_COMPARE(float)
LS_ELEMENTWISE_COMPARE(double)
LS_ELEMENTWISE_COMPARE(int64_t)
LS_ELEMENTWISE_WHERE(float)
LS_ELEMENTWISE_WHERE(double)
LS_ELEMENTWISE_WHERE(int64_t)
LS_ELEMENTWISE_WHERE(uint8_t)
#undef LS_ELEMENTWISE_FLOAT
#undef LS_ELEMENTWISE_COMPARE
#undef LS_ELEMENTWISE_WHERE

}  // namespace lockstep
