// CPU activation backward kernels (kernels/activation.h): one loop per op, threads split
// the elements. The formulas and their order of operations are at the top of the header.
#include "kernels/activation.h"

#include "core/parallel.h"
#include "kernels/math.h"

namespace lockstep {
namespace {

constexpr int64_t kGrain = 32768;     // elements per task for the cheap ops
constexpr int64_t kGrainMath = 4096;  // for gelu, which calls tanh

inline float fn_tanh(float x) { return ls_tanhf(x); }
inline double fn_tanh(double x) { return ls_tanh(x); }

// dx[i] = f(dy[i], v[i]) for i < n.
template <typename T, typename F>
void map2(T* dx, const T* dy, const T* v, int64_t n, int64_t grain, const F& f) {
  parallel_for(n, grain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) dx[i] = f(dy[i], v[i]);
  });
}

template <typename T>
T relu_grad(T dy, T x) {
  return x <= T(0) ? T(0) : dy;
}

template <typename T>
T tanh_grad(T dy, T y) {
  const T u = T(1) - y * y;
  return dy * u;
}

template <typename T>
T sigmoid_grad(T dy, T y) {
  const T v = dy * (T(1) - y);
  return v * y;
}

template <typename T>
T gelu_grad(T dy, T x) {
  const T c = static_cast<T>(0.79788456080286535588);  // sqrt(2/pi), as in the forward
  const T k = static_cast<T>(0.044715);
  const T x2 = x * x;
  const T x3 = x2 * x;
  const T u = c * (x + k * x3);
  const T t = fn_tanh(u);
  const T dleft = T(0.5) * (T(1) + t);  // d/dx of the 0.5 x factor, times (1 + t)
  const T dt = T(1) - t * t;            // tanh'(u)
  const T k3 = T(3) * k;
  const T du = c * (T(1) + k3 * x2);    // u'(x)
  const T dright = ((T(0.5) * x) * dt) * du;
  return dy * (dleft + dright);
}

}  // namespace

void relu_backward_cpu(float* dx, const float* dy, const float* x, int64_t n) {
  map2(dx, dy, x, n, kGrain, [](float a, float b) { return relu_grad(a, b); });
}
void relu_backward_cpu(double* dx, const double* dy, const double* x, int64_t n) {
  map2(dx, dy, x, n, kGrain, [](double a, double b) { return relu_grad(a, b); });
}
void tanh_backward_cpu(float* dx, const float* dy, const float* y, int64_t n) {
  map2(dx, dy, y, n, kGrain, [](float a, float b) { return tanh_grad(a, b); });
}
void tanh_backward_cpu(double* dx, const double* dy, const double* y, int64_t n) {
  map2(dx, dy, y, n, kGrain, [](double a, double b) { return tanh_grad(a, b); });
}
void sigmoid_backward_cpu(float* dx, const float* dy, const float* y, int64_t n) {
  map2(dx, dy, y, n, kGrain, [](float a, float b) { return sigmoid_grad(a, b); });
}
void sigmoid_backward_cpu(double* dx, const double* dy, const double* y, int64_t n) {
  map2(dx, dy, y, n, kGrain, [](double a, double b) { return sigmoid_grad(a, b); });
}
void gelu_backward_cpu(float* dx, const float* dy, const float* x, int64_t n) {
  map2(dx, dy, x, n, kGrainMath, [](float a, float b) { return gelu_grad(a, b); });
}
void gelu_backward_cpu(double* dx, const double* dy, const double* x, int64_t n) {
  map2(dx, dy, x, n, kGrainMath, [](double a, double b) { return gelu_grad(a, b); });
}

}  // namespace lockstep
