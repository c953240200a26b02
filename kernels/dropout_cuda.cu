// CUDA dropout (kernels/dropout.h). Thread b owns Philox block b of the positions
// pos0 = (step << 40) + offset onwards, i.e. elements 4b - lead .. 4b - lead + 3 with
// lead = pos0 mod 4, and takes its four words in order: the CPU's blocks, so the mask is
// the CPU's bit for bit (both equal dropout_keep() at position pos0 + i).
#include "kernels/cuda_common.cuh"
#include "kernels/dropout.h"

namespace lockstep {
namespace {

using namespace cuda_detail;

// p == 0 (keep: bits copied) or p == 1 (drop: x * 0): no draws.
template <typename T>
__global__ void dropout_const_kernel(T* y, uint8_t* mask, const T* x, int64_t n, bool keep) {
  LS_CUDA_FOR(i, n) {
    y[i] = keep ? x[i] : x[i] * T(0);
    if (mask) mask[i] = static_cast<uint8_t>(keep);
  }
}

template <typename T>
__global__ void dropout_forward_kernel(T* y, uint8_t* mask, const T* x, int64_t n, float p, T scale, uint64_t seed,
                                       uint64_t stream, uint64_t first_block, int64_t lead) {
  LS_CUDA_FOR(blk, (n + lead + 3) / 4) {
    const Philox4x32 w = philox_block(seed, stream, first_block + static_cast<uint64_t>(blk));
    for (int64_t k = 0; k < 4; ++k) {
      const int64_t i = 4 * blk + k - lead;
      if (i < 0 || i >= n) continue;
      const bool keep = uint32_to_uniform01f(philox_word(w, static_cast<uint32_t>(k))) >= p;  // word k, as the CPU
      y[i] = x[i] * (keep ? scale : T(0));
      if (mask) mask[i] = static_cast<uint8_t>(keep);
    }
  }
}

template <typename T>
__global__ void dropout_backward_kernel(T* dx, const T* dy, const uint8_t* mask, int64_t n, bool identity, T scale) {
  LS_CUDA_FOR(i, n) dx[i] = identity ? dy[i] : dy[i] * (mask[i] ? scale : T(0));
}

// The CPU's scale, computed on the host in T.
inline float scale_of(float p, float) { return 1.0f / (1.0f - p); }
inline double scale_of(float p, double) { return 1.0 / (1.0 - static_cast<double>(p)); }

template <typename T>
void forward_impl(T* y, uint8_t* mask, const T* x, int64_t n, float p, uint64_t seed, uint64_t stream, uint64_t step,
                  uint64_t offset) {
  if (n <= 0) return;
  cudaStream_t s = cuda_stream();
  if (p == 0.0f || p == 1.0f) {
    LS_LAUNCH(dropout_const_kernel, grid_for(n), kThreads, 0, s, y, mask, x, n, p == 0.0f);
    CUDA_CHECK_LAUNCH("dropout_const_kernel");
    return;
  }
  const uint64_t pos0 = (step << kDropoutStepShift) + offset;
  const int64_t lead = static_cast<int64_t>(pos0 & 3);
  LS_LAUNCH(dropout_forward_kernel, grid_for((n + lead + 3) / 4), kThreads, 0, s, y, mask, x, n, p, scale_of(p, T()),
            seed, stream, pos0 >> 2, lead);
  CUDA_CHECK_LAUNCH("dropout_forward_kernel");
}

template <typename T>
void backward_impl(T* dx, const T* dy, const uint8_t* mask, int64_t n, float p) {
  if (n <= 0) return;
  const T scale = p < 1.0f ? scale_of(p, T()) : T(0);
  LS_LAUNCH(dropout_backward_kernel, grid_for(n), kThreads, 0, cuda_stream(), dx, dy, mask, n, p == 0.0f, scale);
  CUDA_CHECK_LAUNCH("dropout_backward_kernel");
}

}  // namespace

template <typename T>
void dropout_forward_cuda(const Exec&, T* y, uint8_t* mask, const T* x, int64_t n, float p, uint64_t seed,
                          uint64_t stream, uint64_t step, uint64_t offset) {
  forward_impl(y, mask, x, n, p, seed, stream, step, offset);
}
template <typename T>
void dropout_backward_cuda(const Exec&, T* dx, const T* dy, const uint8_t* mask, int64_t n, float p) {
  backward_impl(dx, dy, mask, n, p);
}

#define LS_DROPOUT(T)                                                                                      \
  template void dropout_forward_cuda<T>(const Exec&, T*, uint8_t*, const T*, int64_t, float, uint64_t, \
                                        uint64_t, uint64_t, uint64_t);                                   \
  template void dropout_backward_cuda<T>(const Exec&, T*, const T*, const uint8_t*, int64_t, float);
LS_DROPOUT(float)
LS_DROPOUT(double)
#undef LS_DROPOUT

}  // namespace lockstep
