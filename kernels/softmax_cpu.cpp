// CPU softmax and log-softmax (kernels/softmax.h): rows split across threads; within a row,
// three passes (max; exp and the contiguous-order sum; normalise).
#include "kernels/softmax.h"

#include <algorithm>

#include "base/parallel.h"
#include "kernels/elementwise.h"
#include "kernels/reduce.h"

namespace lockstep {
namespace {

template <typename T, bool kLog>
void softmax_impl(const Exec& ex, T* out, const T* x, int64_t rows, int64_t cols) {
  if (cols <= 0) return;
  // four passes over a row, one of them exp: ~8K elements per task pay for a thread
  const int64_t grain = std::max<int64_t>(1, 8192 / cols);
  parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* xr = x + r * cols;
      T* yr = out + r * cols;
      const T m = xr[argmax_serial_cpu(xr, cols)];  // a NaN in the row gives NaN
      for (int64_t j = 0; j < cols; ++j) yr[j] = xr[j] - m;
      unary_serial_cpu(ex, UnaryOp::exp, yr, yr, cols);  // vectorised ls_expf at ex.simd >= avx2
      const T s = sum_serial_cpu(ex, yr, cols);
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

template <typename T>
void softmax_forward_cpu(const Exec& ex, T* out, const T* x, int64_t rows, int64_t cols) {
  softmax_impl<T, false>(ex, out, x, rows, cols);
}
template <typename T>
void log_softmax_forward_cpu(const Exec& ex, T* out, const T* x, int64_t rows, int64_t cols) {
  softmax_impl<T, true>(ex, out, x, rows, cols);
}
template void softmax_forward_cpu<float>(const Exec&, float*, const float*, int64_t, int64_t);
template void softmax_forward_cpu<double>(const Exec&, double*, const double*, int64_t, int64_t);
template void log_softmax_forward_cpu<float>(const Exec&, float*, const float*, int64_t, int64_t);
template void log_softmax_forward_cpu<double>(const Exec&, double*, const double*, int64_t, int64_t);

}  // namespace lockstep
