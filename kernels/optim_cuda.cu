// CUDA optimizer kernels (kernels/optim.h). Updates: one thread per element runs the body
// of optim_elem's loops with the same scalars (SgdScalars / AdamScalars, rounded to T on
// the host exactly as the CPU rounds them) and the same operations: fma written out,
// IEEE sqrt and division. Norms: sum_squares and sum_abs are the contiguous-order sum
// over the transformed values (reduce_cuda.cuh), max_abs is exact with a canonical NaN.
#include "base/math.h"
#include "kernels/optim.h"
#include "kernels/reduce_cuda.cuh"

namespace lockstep {
namespace {

using namespace cuda_detail;
using namespace cuda_reduce;

__device__ float sqrt_of(float v) { return sqrtf(v); }  // IEEE: --prec-sqrt=true
__device__ double sqrt_of(double v) { return sqrt(v); }

template <typename T>
__global__ void sgd_kernel(T* p, T* b, const T* g, int64_t n, optim_elem::SgdScalars<T> s, bool wd, bool mom,
                           bool first, bool nest) {
  LS_CUDA_FOR(i, n) {
    T gi = g[i];
    if (wd) gi = fma_t(p[i], s.weight_decay, gi);
    if (mom) {
      const T bi = first ? gi : fma_t(gi, s.one_minus_dampening, b[i] * s.momentum);
      b[i] = bi;
      gi = nest ? fma_t(bi, s.momentum, gi) : bi;
    }
    p[i] = fma_t(gi, s.neg_lr, p[i]);
  }
}

template <typename T>
__global__ void adam_kernel(T* p, T* m, T* v, T* vmax, const T* g, int64_t n, optim_elem::AdamScalars<T> s,
                            bool decoupled, bool wd, bool ams) {
  LS_CUDA_FOR(i, n) {
    T pi = p[i], gi = g[i];
    if (decoupled) pi = pi * s.decay_factor;
    if (wd) gi = fma_t(pi, s.weight_decay, gi);
    const T mi = fma_t(s.lerp_coeff, gi - m[i], s.small ? m[i] : gi);
    const T vi = v[i] * s.beta2 + (s.one_minus_beta2 * gi) * gi;
    m[i] = mi;
    v[i] = vi;
    T vh = vi;
    if (ams) {
      const T a = vmax[i];
      vh = (a > vi || a != a) ? a : vi;  // torch.maximum(vmax, v)
      vmax[i] = vh;
    }
    const T denom = sqrt_of(vh) / s.bc2_sqrt + s.eps;
    p[i] = pi + (s.neg_step_size * mi) / denom;
  }
}

template <typename T>
void sgd_impl(T* p, T* b, const T* g, int64_t n, const SgdStep& s) {
  if (n <= 0) return;
  LS_LAUNCH(sgd_kernel, grid_for(n), kThreads, 0, cuda_stream(), p, b, g, n, optim_elem::SgdScalars<T>(s),
            s.weight_decay != 0, s.momentum != 0, s.first, s.nesterov);
  CUDA_CHECK_LAUNCH("sgd_kernel");
}

template <typename T>
void adam_impl(T* p, T* m, T* v, T* vmax, const T* g, int64_t n, const AdamStep& s) {
  if (n <= 0) return;
  LS_LAUNCH(adam_kernel, grid_for(n), kThreads, 0, cuda_stream(), p, m, v, vmax, g, n, optim_elem::AdamScalars<T>(s),
            s.decoupled, s.weight_decay != 0, s.amsgrad);
  CUDA_CHECK_LAUNCH("adam_kernel");
}

// max |x| by one block of 256 threads: each thread scans a strided share, then a tree in
// shared memory. The maximum is exact, so the split cannot change it; NaN sticks and is
// written as the canonical NaN.
template <typename T>
__global__ void max_abs_kernel(T* out, const T* x, int64_t n) {
  __shared__ T buf[256];
  T m = T(0);
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const T a = Abs{}(x[i]);
    m = (a > m || a != a) ? a : m;
  }
  buf[threadIdx.x] = m;
  __syncthreads();
  for (int s = 128; s >= 1; s /= 2) {
    if (threadIdx.x < s) {
      const T a = buf[threadIdx.x + s], c = buf[threadIdx.x];
      buf[threadIdx.x] = (a > c || a != a) ? a : c;
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    const T r = buf[0];
    out[0] = r != r ? static_cast<T>(ls_nan()) : r;
  }
}

template <typename T>
void norm_impl(T* out, const T* x, int64_t n, NormKind kind) {
  if (n == 0) {
    cuda_memset_zero(out, sizeof(T));
    return;
  }
  if (kind == NormKind::sum_squares) return contig_rows(out, x, 1, n, Square{});
  if (kind == NormKind::sum_abs) return contig_rows(out, x, 1, n, Abs{});
  LS_LAUNCH(max_abs_kernel, 1, 256, 0, cuda_stream(), out, x, n);
  CUDA_CHECK_LAUNCH("max_abs_kernel");
}

}  // namespace

template <typename T>
void sgd_step_cuda(const Exec&, T* param, T* momentum_buffer, const T* grad, int64_t n, const SgdStep& s) {
  sgd_impl(param, momentum_buffer, grad, n, s);
}
template <typename T>
void adam_step_cuda(const Exec&, T* param, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq, const T* grad,
                    int64_t n, const AdamStep& s) {
  adam_impl(param, exp_avg, exp_avg_sq, max_exp_avg_sq, grad, n, s);
}
template <typename T>
void norm_reduce_cuda(const Exec&, T* out, const T* x, int64_t n, NormKind kind) {
  norm_impl(out, x, n, kind);
}

template void sgd_step_cuda<float>(const Exec&, float*, float*, const float*, int64_t, const SgdStep&);
template void sgd_step_cuda<double>(const Exec&, double*, double*, const double*, int64_t, const SgdStep&);
template void adam_step_cuda<float>(const Exec&, float*, float*, float*, float*, const float*, int64_t,
                                    const AdamStep&);
template void adam_step_cuda<double>(const Exec&, double*, double*, double*, double*, const double*, int64_t,
                                     const AdamStep&);
template void norm_reduce_cuda<float>(const Exec&, float*, const float*, int64_t, NormKind);
template void norm_reduce_cuda<double>(const Exec&, double*, const double*, int64_t, NormKind);

}  // namespace lockstep
