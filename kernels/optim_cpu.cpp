// CPU optimizer kernels (kernels/optim.h). Updates: threads split the elements into static
// ranges; each range runs the loop of optim_elem, compiled for AVX2+FMA (optim_avx2.cpp)
// when ex.avx2(), else portably; the operations, and so the bits, are the same.
// Norms: sum_squares and sum_abs reproduce sum_cpu's contiguous order over the transformed
// values: each 4096-element block is transformed into a buffer on the stack and summed
// by sum_serial_cpu (one block: its 32-lane partial), threads split the blocks, and the
// block partials are combined by tree_sum_inplace in index order on the calling thread.
#include "kernels/optim.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "base/parallel.h"
#include "base/math.h"
#include "kernels/reduce.h"
#include "kernels/reduce_order.h"
#include "lockstep/config.h"

namespace lockstep {
namespace {

// Least elements per task: an Adam element costs ~0.3 ns in the AVX2 build and handing a
// task to the pool ~5 us, so a task should hold tens of thousands of elements.
constexpr int64_t kOptimGrain = 1 << 15;

}  // namespace

template <typename T>
void sgd_step_cpu(const Exec& ex, T* p, T* b, const T* g, int64_t n, const SgdStep& s) {
  const bool simd = ex.avx2();
  parallel_for(n, kOptimGrain, [&](int64_t i0, int64_t i1) {
    T* bb = b ? b + i0 : nullptr;
#if LOCKSTEP_HAVE_AVX2
    if (simd) return sgd_step_avx2(p + i0, bb, g + i0, i1 - i0, s);
#endif
    (void)simd;
    optim_elem::sgd_range(p + i0, bb, g + i0, i1 - i0, s);
  });
}

template <typename T>
void adam_step_cpu(const Exec& ex, T* p, T* m, T* v, T* vmax, const T* g, int64_t n, const AdamStep& s) {
  const bool simd = ex.avx2();
  parallel_for(n, kOptimGrain, [&](int64_t i0, int64_t i1) {
    T* vm = vmax ? vmax + i0 : nullptr;
#if LOCKSTEP_HAVE_AVX2
    if (simd) return adam_step_avx2(p + i0, m + i0, v + i0, vm, g + i0, i1 - i0, s);
#endif
    (void)simd;
    optim_elem::adam_range(p + i0, m + i0, v + i0, vm, g + i0, i1 - i0, s);
  });
}

template void sgd_step_cpu<float>(const Exec&, float*, float*, const float*, int64_t, const SgdStep&);
template void sgd_step_cpu<double>(const Exec&, double*, double*, const double*, int64_t, const SgdStep&);
template void adam_step_cpu<float>(const Exec&, float*, float*, float*, float*, const float*, int64_t,
                                   const AdamStep&);
template void adam_step_cpu<double>(const Exec&, double*, double*, double*, double*, const double*, int64_t,
                                    const AdamStep&);

namespace {

// The contiguous-order partial of one block of len <= kReduceBlock transformed elements.
template <typename T>
T block_partial(const Exec& ex, const T* x, int64_t len, NormKind kind) {
  alignas(32) T buf[kReduceBlock];
  if (kind == NormKind::sum_squares)
    for (int64_t i = 0; i < len; ++i) buf[i] = x[i] * x[i];
  else
    for (int64_t i = 0; i < len; ++i) buf[i] = std::fabs(x[i]);
  return sum_serial_cpu(ex, buf, len);
}

// max |x[i]| over [0, n) with NaN sticking: once m is NaN no comparison replaces it.
template <typename T>
T max_abs_range(const T* x, int64_t n) {
  T m = T(0);
  for (int64_t i = 0; i < n; ++i) {
    const T a = std::fabs(x[i]);
    m = (a > m || a != a) ? a : m;
  }
  return m;
}

}  // namespace

template <typename T>
void norm_reduce_cpu(const Exec& ex, T* out, const T* x, int64_t n, NormKind kind) {
  if (n == 0) {
    *out = T(0);
    return;
  }
  if (kind == NormKind::max_abs) {
    // Exact: any split gives the same value; NaN is made canonical so its bits do too.
    const int64_t chunks = (n + kOptimGrain - 1) / kOptimGrain;
    std::vector<T> part(static_cast<size_t>(chunks));
    parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        const int64_t b = c * kOptimGrain;
        part[c] = max_abs_range(x + b, std::min(kOptimGrain, n - b));
      }
    });
    T m = max_abs_range(part.data(), chunks);
    *out = m != m ? static_cast<T>(ls_nan()) : m;
    return;
  }
  const int64_t blocks = (n + kReduceBlock - 1) / kReduceBlock;
  std::vector<T> part(static_cast<size_t>(blocks));
  parallel_for(blocks, std::max<int64_t>(1, kOptimGrain / kReduceBlock), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t off = b * kReduceBlock;
      part[b] = block_partial(ex, x + off, std::min(kReduceBlock, n - off), kind);
    }
  });
  *out = tree_sum_inplace(part.data(), blocks);
}

template void norm_reduce_cpu<float>(const Exec&, float*, const float*, int64_t, NormKind);
template void norm_reduce_cpu<double>(const Exec&, double*, const double*, int64_t, NormKind);

}  // namespace lockstep
