// CUDA softmax / log-softmax (kernels/softmax.h): one warp per row; m and s as the CPU
// computes them (softmax_cuda.cuh), then each element exactly as the CPU writes it:
// softmax[j] = ls_exp(x[j] - m) / s;  log_softmax[j] = (x[j] - m) - ls_log(s).
#include "kernels/softmax.h"
#include "kernels/softmax_cuda.cuh"

namespace lockstep {
namespace {

using namespace cuda_detail;
using namespace cuda_softmax;

template <typename T, bool kLog>
__global__ void softmax_kernel(T* out, const T* x, int64_t rows, int64_t cols) {
  const int64_t r = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  if (r >= rows) return;  // whole warps
  const int lane = threadIdx.x & 31;
  const T* xr = x + r * cols;
  T* yr = out + r * cols;
  const RowStats<T> st = warp_row_stats(xr, cols);
  if (kLog) {
    const T log_s = elem::log(st.s);
    for (int64_t j = lane; j < cols; j += 32) yr[j] = (xr[j] - st.m) - log_s;
  } else {
    for (int64_t j = lane; j < cols; j += 32) yr[j] = elem::exp(xr[j] - st.m) / st.s;
  }
}

template <typename T, bool kLog>
void softmax_impl(T* out, const T* x, int64_t rows, int64_t cols) {
  if (cols <= 0 || rows <= 0) return;
  const unsigned grid = static_cast<unsigned>(ceil_div(rows, kRowsPerBlock));
  LS_LAUNCH((softmax_kernel<T, kLog>), grid, kRowsPerBlock * 32, 0, cuda_stream(), out, x, rows, cols);
  CUDA_CHECK_LAUNCH("softmax_kernel");
}

}  // namespace

template <typename T>
void softmax_forward_cuda(const Exec&, T* out, const T* x, int64_t rows, int64_t cols) {
  softmax_impl<T, false>(out, x, rows, cols);
}
template <typename T>
void log_softmax_forward_cuda(const Exec&, T* out, const T* x, int64_t rows, int64_t cols) {
  softmax_impl<T, true>(out, x, rows, cols);
}
template void softmax_forward_cuda<float>(const Exec&, float*, const float*, int64_t, int64_t);
template void softmax_forward_cuda<double>(const Exec&, double*, const double*, int64_t, int64_t);
template void log_softmax_forward_cuda<float>(const Exec&, float*, const float*, int64_t, int64_t);
template void log_softmax_forward_cuda<double>(const Exec&, double*, const double*, int64_t, int64_t);

}  // namespace lockstep
