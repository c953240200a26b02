// CUDA losses (kernels/loss.h). Cross-entropy: one warp per row computes the row's m and s
// as softmax does (softmax_cuda.cuh) and the loss or gradient from them, element by element
// as the CPU writes it; the per-row losses are then summed in batch order (reduce_cuda.cuh,
// an N x 1 column). MSE: squares elementwise, rows in the contiguous order, rows combined in
// batch order. No atomics; the bits are the CPU kernels' bits.
// Fast mode (ex.fast(), the Exec's mode): the sum over the rows (and MSE's sums within a row)
// use float atomics instead (the bits may then change from run to run).
#include "kernels/loss.h"
#include "kernels/reduce.h"
#include "kernels/softmax_cuda.cuh"

namespace lockstep {
namespace {

using namespace cuda_detail;
using namespace cuda_reduce;
using namespace cuda_softmax;

template <typename T>
__global__ void ce_rows_kernel(T* loss, const T* logits, const int64_t* target, int64_t N, int64_t C, T eps) {
  const int64_t i = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  if (i >= N) return;  // whole warps
  const T* x = logits + i * C;
  const RowStats<T> st = warp_row_stats(x, C);
  const T log_s = elem::log(st.s);
  const T nll = -((x[target[i]] - st.m) - log_s);
  T li = nll;
  if (eps != T(0)) {
    const T a = T(1) - eps, b = eps / static_cast<T>(C);
    const T smooth = -warp_row_sum(x, C, LogSoftmaxOf<T>{st.m, log_s});
    li = a * nll + smooth * b;
  }
  if ((threadIdx.x & 31) == 0) loss[i] = li;
}

template <typename T>
__global__ void ce_backward_kernel(T* dlogits, const T* dout, const T* logits, const int64_t* target, int64_t N,
                                   int64_t C, T eps, Reduction red) {
  const int64_t i = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  if (i >= N) return;
  const int lane = threadIdx.x & 31;
  const T a = T(1) - eps, b = eps / static_cast<T>(C);
  const T w = red == Reduction::none ? dout[i] : red == Reduction::mean ? dout[0] / static_cast<T>(N) : dout[0];
  const T* x = logits + i * C;
  const RowStats<T> st = warp_row_stats(x, C);
  const int64_t t = target[i];
  for (int64_t j = lane; j < C; j += 32) {
    const T p = elem::exp(x[j] - st.m) / st.s;
    dlogits[i * C + j] = (p - (j == t ? a + b : b)) * w;
  }
}

// Step over an N x 1 column of per-row values; Finish: out[0] = total (/ div for the mean).
template <typename T>
struct ScaleFinish {
  T* out;
  bool mean;
  T div;
  __device__ void operator()(int64_t, int64_t, T total) const { out[0] = mean ? total / div : total; }
};

template <typename T>
void reduce_rows(bool fast, T* out, const T* v, int64_t n, Reduction red, T div) {
  batch_reduce_mode<T>(fast, 1, n, 1, SumRowStep<T>{v, n, 1},
                       ScaleFinish<T>{out, red == Reduction::mean, div});
}

template <typename T>
void ce_forward(bool fast, T* out, const T* logits, const int64_t* target, int64_t N, int64_t C, T eps, Reduction red) {
  DeviceBuffer<T> buf(red == Reduction::none ? 1 : N);
  T* loss = red == Reduction::none ? out : buf.get();
  if (N > 0) {
    LS_LAUNCH(ce_rows_kernel, static_cast<unsigned>(ceil_div(N, kRowsPerBlock)), kRowsPerBlock * 32, 0, cuda_stream(),
              loss, logits, target, N, C, eps);
    CUDA_CHECK_LAUNCH("ce_rows_kernel");
  }
  if (red != Reduction::none) reduce_rows(fast, out, loss, N, red, static_cast<T>(N));
}

template <typename T>
void ce_backward(T* dlogits, const T* dout, const T* logits, const int64_t* target, int64_t N, int64_t C, T eps,
                 Reduction red) {
  if (N <= 0) return;
  LS_LAUNCH(ce_backward_kernel, static_cast<unsigned>(ceil_div(N, kRowsPerBlock)), kRowsPerBlock * 32, 0, cuda_stream(),
            dlogits, dout, logits, target, N, C, eps, red);
  CUDA_CHECK_LAUNCH("ce_backward_kernel");
}

template <typename T>
__global__ void square_diff_kernel(T* sq, const T* x, const T* y, int64_t n) {
  LS_CUDA_FOR(k, n) {
    const T d = x[k] - y[k];
    sq[k] = d * d;
  }
}

template <typename T>
__global__ void mse_backward_kernel(T* dx, T* dy, const T* dout, const T* x, const T* y, int64_t n, T norm,
                                    bool per_element) {
  LS_CUDA_FOR(k, n) {
    const T g = per_element ? dout[k] : dout[0];
    const T v = (norm * (x[k] - y[k])) * g;
    dx[k] = v;
    if (dy) dy[k] = -v;
  }
}

template <typename T>
void mse_forward(const Exec& ex, T* out, const T* x, const T* y, int64_t N, int64_t D, Reduction red) {
  const int64_t n = N * D;
  DeviceBuffer<T> sq_buf(red == Reduction::none ? 1 : n);
  T* sq = red == Reduction::none ? out : sq_buf.get();
  if (n > 0) {
    LS_LAUNCH(square_diff_kernel, grid_for(n), kThreads, 0, cuda_stream(), sq, x, y, n);
    CUDA_CHECK_LAUNCH("square_diff_kernel");
  }
  if (red == Reduction::none) return;
  DeviceBuffer<T> row_sum(N);
  if (ex.fast())
    sum_rows_fast_cuda(ex, row_sum.get(), sq, N, D);
  else
    sum_rows_cuda(ex, row_sum.get(), sq, N, D);
  reduce_rows(ex.fast(), out, row_sum.get(), N, red, static_cast<T>(N * D));
}

template <typename T>
void mse_backward(T* dx, T* dy, const T* dout, const T* x, const T* y, int64_t N, int64_t D, Reduction red) {
  const int64_t n = N * D;
  if (n <= 0) return;
  const T norm = red == Reduction::mean ? T(2) / static_cast<T>(N * D) : T(2);
  LS_LAUNCH(mse_backward_kernel, grid_for(n), kThreads, 0, cuda_stream(), dx, dy, dout, x, y, n, norm,
            red == Reduction::none);
  CUDA_CHECK_LAUNCH("mse_backward_kernel");
}

}  // namespace

template <typename T>
void cross_entropy_forward_cuda(const Exec& ex, T* out, const T* logits, const int64_t* target, int64_t N,
                                int64_t C, T label_smoothing, Reduction reduction) {
  ce_forward(ex.fast(), out, logits, target, N, C, label_smoothing, reduction);
}
template <typename T>
void cross_entropy_backward_cuda(const Exec&, T* dlogits, const T* dout, const T* logits, const int64_t* target,
                                 int64_t N, int64_t C, T label_smoothing, Reduction reduction) {
  ce_backward(dlogits, dout, logits, target, N, C, label_smoothing, reduction);
}
template <typename T>
void mse_forward_cuda(const Exec& ex, T* out, const T* x, const T* y, int64_t N, int64_t D, Reduction reduction) {
  mse_forward(ex, out, x, y, N, D, reduction);
}
template <typename T>
void mse_backward_cuda(const Exec&, T* dx, T* dy, const T* dout, const T* x, const T* y, int64_t N, int64_t D,
                       Reduction reduction) {
  mse_backward(dx, dy, dout, x, y, N, D, reduction);
}

#define LS_LOSS(T)                                                                                             \
  template void cross_entropy_forward_cuda<T>(const Exec&, T*, const T*, const int64_t*, int64_t, int64_t, T,  \
                                              Reduction);                                                      \
  template void cross_entropy_backward_cuda<T>(const Exec&, T*, const T*, const T*, const int64_t*, int64_t,   \
                                               int64_t, T, Reduction);                                         \
  template void mse_forward_cuda<T>(const Exec&, T*, const T*, const T*, int64_t, int64_t, Reduction);         \
  template void mse_backward_cuda<T>(const Exec&, T*, T*, const T*, const T*, const T*, int64_t, int64_t,      \
                                     Reduction);
LS_LOSS(float)
LS_LOSS(double)
#undef LS_LOSS

}  // namespace lockstep
