// Device memory: a caching allocator on one stream.
//
// Buckets: a request is rounded up to a multiple of 512 bytes below 1 MiB, and to a
// multiple of 2 MiB from there on; a freed block joins the free list of its bucket and the
// next request of that bucket takes it back (LIFO). Because every kernel and copy runs on
// the one stream, a block freed by the host while queued work still reads it can be reused
// at once: the new owner's work is queued after the old one's. When cudaMalloc fails, the
// free lists are released and the call is retried once. At exit the free lists are left
// to the driver's context teardown (the allocator is never destroyed, so tensors freed by
// other static destructors still find it).
#include <mutex>
#include <unordered_map>
#include <vector>

#include "kernels/cuda_common.cuh"
#include "kernels/memory.h"

namespace lockstep {
namespace {

constexpr size_t kSmallQuantum = 512;
constexpr size_t kLargeThreshold = size_t(1) << 20;
constexpr size_t kLargeQuantum = size_t(2) << 20;

size_t bucket_of(size_t nbytes) {
  if (nbytes == 0) nbytes = 1;
  const size_t q = nbytes < kLargeThreshold ? kSmallQuantum : kLargeQuantum;
  return (nbytes + q - 1) / q * q;
}

struct Allocator {
  std::mutex mu;
  std::unordered_map<size_t, std::vector<void*>> free_lists;  // bucket -> blocks
  std::unordered_map<void*, size_t> live;                     // block -> bucket
  CudaMemoryStats stats;

  void release_free_lists_locked() {
    for (auto& kv : free_lists)
      for (void* p : kv.second) cudaFree(p);
    free_lists.clear();
    stats.bytes_cached = 0;
  }
};

Allocator& allocator() {
  static Allocator* a = new Allocator();  // never destroyed: see the top of the file
  return *a;
}

// The kernel of cuda_fill: element i of n gets the value (as raw bits of the element size).
template <typename U>
__global__ void fill_kernel(U* dst, U value, int64_t n) {
  LS_CUDA_FOR(i, n) dst[i] = value;
}

// The view's shape and element strides, passed by value.
struct StridedView {
  int ndim;
  int64_t shape[8];
  int64_t strides[8];
};

// Output element i (row-major over the view) from the source element at its strides.
template <typename U>
__global__ void strided_copy_kernel(U* dst, const U* src, StridedView v, int64_t n) {
  LS_CUDA_FOR(i, n) {
    int64_t rem = i, off = 0;
    for (int d = v.ndim - 1; d >= 0; --d) {
      off += (rem % v.shape[d]) * v.strides[d];
      rem /= v.shape[d];
    }
    dst[i] = src[off];
  }
}

}  // namespace

bool cuda_device_available() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error
    return false;
  }
  return n > 0;
}

cudaStream_t cuda_stream() {
  // Blocking with respect to the legacy default stream, so library code that uses it
  // (cuBLAS handles are set to this stream anyway) stays ordered with lockstep's work.
  static cudaStream_t s = [] {
    cudaStream_t st = nullptr;
    CUDA_CHECK(cudaStreamCreate(&st));
    return st;
  }();
  return s;
}

void* cuda_alloc(size_t nbytes) {
  Allocator& a = allocator();
  const size_t b = bucket_of(nbytes);
  std::lock_guard<std::mutex> lock(a.mu);
  auto it = a.free_lists.find(b);
  if (it != a.free_lists.end() && !it->second.empty()) {
    void* p = it->second.back();
    it->second.pop_back();
    a.live[p] = b;
    a.stats.cache_hits++;
    a.stats.bytes_cached -= b;
    a.stats.bytes_in_use += b;
    return p;
  }
  void* p = nullptr;
  if (cudaMalloc(&p, b) != cudaSuccess) {
    cudaGetLastError();
    a.release_free_lists_locked();  // give the cache back and try once more
    CUDA_CHECK(cudaMalloc(&p, b));
  }
  a.stats.device_mallocs++;
  a.live[p] = b;
  a.stats.bytes_in_use += b;
  return p;
}

void cuda_free(void* p) {
  if (!p) return;
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mu);
  auto it = a.live.find(p);
  if (it == a.live.end()) return;  // not ours: nothing to do (never throws)
  const size_t b = it->second;
  a.live.erase(it);
  a.free_lists[b].push_back(p);
  a.stats.bytes_in_use -= b;
  a.stats.bytes_cached += b;
}

CudaMemoryStats cuda_memory_stats() {
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mu);
  return a.stats;
}

void cuda_empty_cache() {
  cuda_synchronize();  // queued work may still read cached blocks
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mu);
  a.release_free_lists_locked();
}

void cuda_copy_to_device(void* dst, const void* src, size_t nbytes) {
  CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyHostToDevice, cuda_stream()));
  CUDA_CHECK(cudaStreamSynchronize(cuda_stream()));  // the host buffer may go away next
}
void cuda_copy_to_host(void* dst, const void* src, size_t nbytes) {
  CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToHost, cuda_stream()));
  CUDA_CHECK(cudaStreamSynchronize(cuda_stream()));
}
void cuda_copy_device_to_device(void* dst, const void* src, size_t nbytes) {
  CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToDevice, cuda_stream()));
}
void cuda_memset_zero(void* dst, size_t nbytes) { CUDA_CHECK(cudaMemsetAsync(dst, 0, nbytes, cuda_stream())); }

void cuda_fill(void* dst, const void* value, size_t elem_size, int64_t n) {
  if (n <= 0) return;
  using cuda_detail::grid_for;
  const unsigned grid = grid_for(n);
  cudaStream_t s = cuda_stream();
  auto launch = [&](auto tag) {
    using U = decltype(tag);
    LS_LAUNCH(fill_kernel, grid, cuda_detail::kThreads, 0, s, static_cast<U*>(dst), *static_cast<const U*>(value), n);
  };
  switch (elem_size) {
    case 1: launch(uint8_t{}); break;
    case 2: launch(uint16_t{}); break;
    case 4: launch(uint32_t{}); break;
    case 8: launch(uint64_t{}); break;
    default:
      throw std::invalid_argument("[cuda_fill] expected an element size of 1, 2, 4 or 8 bytes, got " +
                                  std::to_string(elem_size));
  }
  CUDA_CHECK_LAUNCH("fill_kernel");
}

void cuda_strided_copy(void* dst, const void* src, size_t elem_size, int ndim, const int64_t* shape,
                       const int64_t* strides) {
  if (ndim > 8)
    throw std::invalid_argument("[cuda_strided_copy] expected at most 8 dims, got " + std::to_string(ndim));
  StridedView v{};
  v.ndim = ndim;
  int64_t n = 1;
  for (int d = 0; d < ndim; ++d) v.shape[d] = shape[d], v.strides[d] = strides[d], n *= shape[d];
  if (n <= 0) return;
  using cuda_detail::grid_for;
  const unsigned grid = grid_for(n);
  cudaStream_t s = cuda_stream();
  auto launch = [&](auto tag) {
    using U = decltype(tag);
    LS_LAUNCH(strided_copy_kernel, grid, cuda_detail::kThreads, 0, s, static_cast<U*>(dst),
              static_cast<const U*>(src), v, n);
  };
  switch (elem_size) {
    case 1: launch(uint8_t{}); break;
    case 4: launch(uint32_t{}); break;
    case 8: launch(uint64_t{}); break;
    default:
      throw std::invalid_argument("[cuda_strided_copy] expected an element size of 1, 4 or 8 bytes, got " +
                                  std::to_string(elem_size));
  }
  CUDA_CHECK_LAUNCH("strided_copy_kernel");
}

void cuda_synchronize() { CUDA_CHECK(cudaStreamSynchronize(cuda_stream())); }

}  // namespace lockstep
