// CPU activation backward kernels (kernels/activation.h): one loop per op, threads split
// the elements. The formulas and their order of operations are at the top of the header.
#include "kernels/activation.h"

#include "base/parallel.h"
#include "lockstep/config.h"

namespace lockstep {
namespace {

constexpr int64_t kActGrain = 32768;     // elements per task for the cheap ops
constexpr int64_t kActGrainMath = 4096;  // for gelu, which calls tanh

// dx[i] = f(dy[i], v[i]) for i < n.
template <typename T, typename F>
void map2(T* dx, const T* dy, const T* v, int64_t n, int64_t grain, const F& f) {
  parallel_for(n, grain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) dx[i] = f(dy[i], v[i]);
  });
}

using act::gelu_grad;
using act::silu_grad;
using act::relu_grad;
using act::sigmoid_grad;
using act::tanh_grad;

}  // namespace

template <typename T>
void relu_backward_cpu(const Exec&, T* dx, const T* dy, const T* x, int64_t n) {
  map2(dx, dy, x, n, kActGrain, [](T a, T b) { return relu_grad(a, b); });
}
template <typename T>
void tanh_backward_cpu(const Exec&, T* dx, const T* dy, const T* y, int64_t n) {
  map2(dx, dy, y, n, kActGrain, [](T a, T b) { return tanh_grad(a, b); });
}
template <typename T>
void sigmoid_backward_cpu(const Exec&, T* dx, const T* dy, const T* y, int64_t n) {
  map2(dx, dy, y, n, kActGrain, [](T a, T b) { return sigmoid_grad(a, b); });
}
// gelu and silu call ls_tanhf / ls_sigmoidf: with AVX2 (AVX-512) each task runs the vectorised
// loop of activation_avx2.cpp (activation_avx512.cpp; same bits), which the portable build
// cannot (a call per std::fma).
template <typename T>
void gelu_backward_cpu(const Exec& ex, T* dx, const T* dy, const T* x, int64_t n) {
#if LOCKSTEP_HAVE_AVX512
  if (ex.avx512())
    return parallel_for(n, kActGrainMath,
                        [&](int64_t b, int64_t e) { gelu_backward_avx512(dx + b, dy + b, x + b, e - b); });
#endif
#if LOCKSTEP_HAVE_AVX2
  if (ex.avx2())
    return parallel_for(n, kActGrainMath, [&](int64_t b, int64_t e) { gelu_backward_avx2(dx + b, dy + b, x + b, e - b); });
#endif
  (void)ex;
  map2(dx, dy, x, n, kActGrainMath, [](T a, T b) { return gelu_grad(a, b); });
}

template <typename T>
void silu_backward_cpu(const Exec& ex, T* dx, const T* dy, const T* x, int64_t n) {
#if LOCKSTEP_HAVE_AVX512
  if (ex.avx512())
    return parallel_for(n, kActGrainMath,
                        [&](int64_t b, int64_t e) { silu_backward_avx512(dx + b, dy + b, x + b, e - b); });
#endif
#if LOCKSTEP_HAVE_AVX2
  if (ex.avx2())
    return parallel_for(n, kActGrainMath, [&](int64_t b, int64_t e) { silu_backward_avx2(dx + b, dy + b, x + b, e - b); });
#endif
  (void)ex;
  map2(dx, dy, x, n, kActGrainMath, [](T a, T b) { return silu_grad(a, b); });
}

template <typename T>
void gelu_forward_keep_cpu(const Exec& ex, T* y, T* t, const T* x, int64_t n) {
  parallel_for(n, kActGrainMath, [&](int64_t b, int64_t e) {
#if LOCKSTEP_HAVE_AVX512
    if (ex.avx512()) return gelu_forward_keep_avx512(y + b, t + b, x + b, e - b);
#endif
#if LOCKSTEP_HAVE_AVX2
    if (ex.avx2()) return gelu_forward_keep_avx2(y + b, t + b, x + b, e - b);
#endif
    (void)ex;
    for (int64_t i = b; i < e; ++i) {
      t[i] = act::gelu_tanh(x[i]);
      y[i] = act::gelu_from_t(x[i], t[i]);
    }
  });
}

template <typename T>
void gelu_backward_kept_cpu(const Exec& ex, T* dx, const T* dy, const T* x, const T* t, int64_t n) {
  parallel_for(n, kActGrain, [&](int64_t b, int64_t e) {
#if LOCKSTEP_HAVE_AVX512
    if (ex.avx512()) return gelu_backward_kept_avx512(dx + b, dy + b, x + b, t + b, e - b);
#endif
#if LOCKSTEP_HAVE_AVX2
    if (ex.avx2()) return gelu_backward_kept_avx2(dx + b, dy + b, x + b, t + b, e - b);
#endif
    (void)ex;
    for (int64_t i = b; i < e; ++i) dx[i] = act::gelu_grad_t(dy[i], x[i], t[i]);
  });
}

#define LS_ACTIVATION(T)                                                                \
  template void relu_backward_cpu<T>(const Exec&, T*, const T*, const T*, int64_t);    \
  template void tanh_backward_cpu<T>(const Exec&, T*, const T*, const T*, int64_t);    \
  template void sigmoid_backward_cpu<T>(const Exec&, T*, const T*, const T*, int64_t); \
  template void gelu_backward_cpu<T>(const Exec&, T*, const T*, const T*, int64_t);    \
  template void silu_backward_cpu<T>(const Exec&, T*, const T*, const T*, int64_t);    \
  template void gelu_forward_keep_cpu<T>(const Exec&, T*, T*, const T*, int64_t);       \
  template void gelu_backward_kept_cpu<T>(const Exec&, T*, const T*, const T*, const T*, int64_t);
LS_ACTIVATION(float)
LS_ACTIVATION(double)
#undef LS_ACTIVATION

}  // namespace lockstep
