// CPU softmax and log-softmax (kernels/softmax.h): rows split across threads; within a row,
// three passes (max; exp and the contiguous-order sum; normalise).
#include "kernels/softmax.h"

#include <algorithm>

#include "core/parallel.h"
#include "kernels/elementwise.h"
#include "kernels/reduce.h"

namespace lockstep {
namespace {

template <typename T, bool kLog>
void softmax_impl(T* out, const T* x, int64_t rows, int64_t cols) {
  if (cols <= 0) return;
  // four passes over a row, one of them exp: ~8K elements per task pay for a thread
  const int64_t grain = std::max<int64_t>(1, 8192 / cols);
  parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* xr = x + r * cols;
      T* yr = out + r * cols;
      const T m = xr[argmax_serial_cpu(xr, cols)];  // a NaN in the row gives NaN
      for (int64_t j = 0; j < cols; ++j) yr[j] = xr[j] - m;
      unary_serial_cpu(UnaryOp::exp, yr, yr, cols);  // vectorised ls_expf when simd_enabled()
      const T s = sum_serial_cpu(yr, cols);
      if (kLog) {
        const T log_s = elem::log(s);
        for (int64_t j = 0; j < cols; ++j) yr[j] = (xr[j] - m) - log_s;
      } else {
        for (int64_t j = 0; j < cols; ++j) yr[j] = yr[j] / s;
      }
    }
  });
}

}  // namespace

void softmax_forward_cpu(float* out, const float* x, int64_t rows, int64_t cols) {
  softmax_impl<float, false>(out, x, rows, cols);
}
void softmax_forward_cpu(double* out, const double* x, int64_t rows, int64_t cols) {
  softmax_impl<double, false>(out, x, rows, cols);
}
void log_softmax_forward_cpu(float* out, const float* x, int64_t rows, int64_t cols) {
  softmax_impl<float, true>(out, x, rows, cols);
}
void log_softmax_forward_cpu(double* out, const double* x, int64_t rows, int64_t cols) {
  softmax_impl<double, true>(out, x, rows, cols);
}

}  // namespace lockstep
