#include "core/random.h"

#include "base/parallel.h"
#include "base/philox.h"

namespace lockstep {

uint64_t stream_id(const std::string& name) {
  uint64_t x = 1469598103934665603ull;  // FNV-1a 64
  for (unsigned char c : name) {
    x ^= c;
    x *= 1099511628211ull;
  }
  return x;
}

namespace {

void check_fill(const char* op, const Tensor& t) {
  LS_CHECK_ARG(t.defined() && t.is_contiguous() && t.device() == Device::cpu, op,
               "expected a contiguous CPU tensor, got ", t.str());
  LS_CHECK_ARG(is_floating(t.dtype()), op, "expected float32 or float64, got ", dtype_name(t.dtype()));
}

// Each element is a pure function of its position, so any partition gives the same bits.
template <typename F>
void for_each_position(int64_t n, F&& f) {
  parallel_for(n, 1 << 14, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) f(i);
  });
}

}  // namespace

void fill_uniform(Tensor& t, double lo, double hi, uint64_t seed, uint64_t stream, uint64_t position) {
  check_fill("fill_uniform", t);
  LS_CHECK_ARG(lo <= hi, "fill_uniform", "expected lo <= hi, got lo=", lo, ", hi=", hi);
  if (t.dtype() == DType::f32) {
    float* p = t.data<float>();
    const float l = static_cast<float>(lo), w = static_cast<float>(hi) - l;
    for_each_position(t.numel(), [&](int64_t i) { p[i] = uniform_f32(seed, stream, position + i) * w + l; });
  } else {
    double* p = t.data<double>();
    const double w = hi - lo;
    for_each_position(t.numel(), [&](int64_t i) { p[i] = uniform_f64(seed, stream, position + i) * w + lo; });
  }
}

// float64 tensors get float32 Box–Muller normals widened to double (the project's own
// transcendentals are float32 for sin/cos): documented in docs/determinism.md.
void fill_normal(Tensor& t, double mean, double std, uint64_t seed, uint64_t stream, uint64_t position) {
  check_fill("fill_normal", t);
  LS_CHECK_ARG(std >= 0.0, "fill_normal", "expected std >= 0, got ", std);
  if (t.dtype() == DType::f32) {
    float* p = t.data<float>();
    const float m = static_cast<float>(mean), s = static_cast<float>(std);
    for_each_position(t.numel(), [&](int64_t i) { p[i] = m + s * normal_f32(seed, stream, position + i); });
  } else {
    double* p = t.data<double>();
    for_each_position(t.numel(), [&](int64_t i) {
      p[i] = mean + std * static_cast<double>(normal_f32(seed, stream, position + i));
    });
  }
}

}  // namespace lockstep
