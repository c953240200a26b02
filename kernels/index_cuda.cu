// CUDA indexing kernels (kernels/index.h). Copies: one thread per output element. Sums:
// one thread per destination element (o, v, c), which scans the m source positions in
// increasing order, adds the sources that name v to the current chunk's partial (from +0)
// and pushes every chunk's partial, +0 for an empty chunk, on a TreeStack: the dense form of
// the tree the CPU evaluates sparsely, the same bits (index.h says why). Fast mode: one
// atomicAdd per source element into base (completion order).
#include "kernels/cuda_common.cuh"
#include "kernels/index.h"
#include "kernels/reduce_cuda.cuh"

namespace lockstep {
namespace {

using namespace cuda_detail;

template <typename T>
__global__ void index_select_kernel(T* out, const T* x, const int64_t* idx, int64_t outer, int64_t n, int64_t m,
                                    int64_t inner) {
  LS_CUDA_FOR(e, outer * m * inner) {
    const int64_t c = e % inner, r = e / inner, o = r / m, i = r % m;
    out[e] = x[(o * n + idx[i]) * inner + c];
  }
}

template <typename T>
__global__ void gather_dim_kernel(T* out, const T* x, const int64_t* index, int64_t outer, int64_t n, int64_t m,
                                  int64_t inner) {
  LS_CUDA_FOR(e, outer * m * inner) {
    const int64_t c = e % inner, o = e / (m * inner);
    out[e] = x[(o * n + index[e]) * inner + c];
  }
}

// Destination element e = (o, v, c). ids of source j: ids[j * id_step] (+ the fibre's
// offset); the source value: src[o * m * inner + j * inner + c].
template <typename T>
__global__ void index_sum_kernel(T* out, const T* base, const T* src, const int64_t* ids, int64_t outer, int64_t n,
                                 int64_t m, int64_t inner, bool per_element) {
  LS_CUDA_FOR(e, outer * n * inner) {
    const int64_t c = e % inner, v = (e / inner) % n, o = e / (n * inner);
    const int64_t* id = per_element ? ids + o * m * inner + c : ids;
    const int64_t step = per_element ? inner : 1;
    const T* s = src + o * m * inner + c;
    cuda_reduce::TreeStack1<T> stack;
    bool any = false;
    for (int64_t j0 = 0; j0 < m; j0 += kBatchChunk) {
      const int64_t j1 = j0 + kBatchChunk < m ? j0 + kBatchChunk : m;
      T acc = T(0);
      for (int64_t j = j0; j < j1; ++j)
        if (id[j * step] == v) {
          acc = acc + s[j * inner];
          any = true;
        }
      stack.push(acc);
    }
    if (!any) {
      out[e] = base ? base[e] : T(0);
    } else {
      const T sum = stack.finish();
      out[e] = base ? base[e] + sum : sum;
    }
  }
}

template <typename T>
__global__ void index_copy_base_kernel(T* out, const T* base, int64_t total) {
  LS_CUDA_FOR(e, total) out[e] = base ? base[e] : T(0);
}

// Fast mode: source element e = (o, j, c) adds itself into its destination.
template <typename T>
__global__ void index_atomic_kernel(T* out, const T* src, const int64_t* ids, int64_t outer, int64_t n, int64_t m,
                                    int64_t inner, bool per_element) {
  LS_CUDA_FOR(e, outer * m * inner) {
    const int64_t c = e % inner, j = (e / inner) % m, o = e / (m * inner);
    const int64_t v = per_element ? ids[e] : ids[j];
    atomicAdd(out + (o * n + v) * inner + c, src[e]);
  }
}

template <typename T>
void sum_impl(const Exec& ex, T* out, const T* base, const T* src, const int64_t* ids, int64_t outer, int64_t n,
              int64_t m, int64_t inner, bool per_element) {
  const int64_t total = outer * n * inner;
  if (total <= 0) return;
  cudaStream_t s = cuda_stream();
  if (ex.fast()) {
    LS_LAUNCH(index_copy_base_kernel, grid_for(total), kThreads, 0, s, out, base, total);
    CUDA_CHECK_LAUNCH("index_copy_base_kernel");
    if (m * inner > 0) {
      LS_LAUNCH(index_atomic_kernel, grid_for(outer * m * inner), kThreads, 0, s, out, src, ids, outer, n, m, inner,
                per_element);
      CUDA_CHECK_LAUNCH("index_atomic_kernel");
    }
    return;
  }
  LS_LAUNCH(index_sum_kernel, grid_for(total), kThreads, 0, s, out, base, src, ids, outer, n, m, inner, per_element);
  CUDA_CHECK_LAUNCH("index_sum_kernel");
}

}  // namespace

template <typename T>
void index_select_cuda(const Exec&, T* out, const T* x, const int64_t* idx, int64_t outer, int64_t n, int64_t m,
                       int64_t inner) {
  if (outer * m * inner <= 0) return;
  LS_LAUNCH(index_select_kernel, grid_for(outer * m * inner), kThreads, 0, cuda_stream(), out, x, idx, outer, n, m,
            inner);
  CUDA_CHECK_LAUNCH("index_select_kernel");
}

template <typename T>
void gather_cuda(const Exec&, T* out, const T* x, const int64_t* index, int64_t outer, int64_t n, int64_t m,
                 int64_t inner) {
  if (outer * m * inner <= 0) return;
  LS_LAUNCH(gather_dim_kernel, grid_for(outer * m * inner), kThreads, 0, cuda_stream(), out, x, index, outer, n, m,
            inner);
  CUDA_CHECK_LAUNCH("gather_dim_kernel");
}

template <typename T>
void index_add_cuda(const Exec& ex, T* out, const T* base, const T* src, const int64_t* idx, int64_t outer,
                    int64_t n, int64_t m, int64_t inner) {
  sum_impl(ex, out, base, src, idx, outer, n, m, inner, false);
}

template <typename T>
void scatter_add_cuda(const Exec& ex, T* out, const T* base, const T* src, const int64_t* index, int64_t outer,
                      int64_t n, int64_t m, int64_t inner) {
  sum_impl(ex, out, base, src, index, outer, n, m, inner, true);
}

#define LS_INDEX_COPY(T)                                                                                            \
  template void index_select_cuda<T>(const Exec&, T*, const T*, const int64_t*, int64_t, int64_t, int64_t, int64_t); \
  template void gather_cuda<T>(const Exec&, T*, const T*, const int64_t*, int64_t, int64_t, int64_t, int64_t);
#define LS_INDEX_ADD(T)                                                                                          \
  template void index_add_cuda<T>(const Exec&, T*, const T*, const T*, const int64_t*, int64_t, int64_t, int64_t, \
                                  int64_t);                                                                       \
  template void scatter_add_cuda<T>(const Exec&, T*, const T*, const T*, const int64_t*, int64_t, int64_t,        \
                                    int64_t, int64_t);
LS_INDEX_COPY(float)
LS_INDEX_COPY(double)
LS_INDEX_COPY(int64_t)
LS_INDEX_ADD(float)
LS_INDEX_ADD(double)
#undef LS_INDEX_COPY
#undef LS_INDEX_ADD

}  // namespace lockstep
