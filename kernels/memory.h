// Device memory. CPU storage is 64-byte aligned host memory; freed blocks of 64 KiB and more
// wait in a size-keyed cache (at most LOCKSTEP_HOST_CACHE_MB MiB, default 256) and are handed
// out again, so a training step's activations do not page-fault afresh every step. CUDA storage comes from a
// caching allocator (kernels/memory_cuda.cu): freed blocks go back to a free list of their
// size bucket and are handed out again, so steady-state training calls cudaMalloc only in
// its first step. All CUDA work, copies included, is ordered on one stream.
#pragma once
#include <cstddef>
#include <cstdint>

namespace lockstep {

void* host_alloc(size_t nbytes);  // 64-byte aligned; throws std::runtime_error on failure
void host_free(void* p);          // large blocks back to the cache (or the system when it is full)

struct HostMemoryStats {
  uint64_t system_allocs = 0;     // cacheable-size blocks taken from the system so far
  uint64_t cache_hits = 0;        // cacheable-size allocations served from the cache
  uint64_t bytes_cached = 0;      // bytes waiting in the cache
};
HostMemoryStats host_memory_stats();
void host_empty_cache();          // returns the cached blocks to the system

bool cuda_device_available();     // false in CPU-only builds or without a device
void* cuda_alloc(size_t nbytes);  // from the cache when a block of the bucket is free
void cuda_free(void* p);          // back to the cache; never throws
// Copies. To and from the host they return when the copy is done (the host buffer may be
// reused at once); device to device and memset are queued on the stream.
void cuda_copy_to_device(void* dst, const void* src, size_t nbytes);
void cuda_copy_to_host(void* dst, const void* src, size_t nbytes);
void cuda_copy_device_to_device(void* dst, const void* src, size_t nbytes);
void cuda_memset_zero(void* dst, size_t nbytes);
// n elements of elem_size bytes (1, 2, 4 or 8) set to the bytes at value (a host pointer).
void cuda_fill(void* dst, const void* value, size_t elem_size, int64_t n);
// Packs a strided device view (ndim <= 8 dims, element strides, src at its first element)
// into the contiguous dst in row-major order; a copy, so every bit is kept.
void cuda_strided_copy(void* dst, const void* src, size_t elem_size, int ndim, const int64_t* shape,
                       const int64_t* strides);
void cuda_synchronize();          // waits for everything queued on the stream

// The caching allocator's counters, for tests and reports.
struct CudaMemoryStats {
  uint64_t device_mallocs = 0;    // cudaMalloc calls so far
  uint64_t cache_hits = 0;        // allocations served from a free list
  uint64_t bytes_in_use = 0;      // bucket bytes held by live blocks
  uint64_t bytes_cached = 0;      // bucket bytes waiting in free lists
};
CudaMemoryStats cuda_memory_stats();
void cuda_empty_cache();          // returns the free lists to the driver (cudaFree)

}  // namespace lockstep
