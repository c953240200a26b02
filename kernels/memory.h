// Device memory. CPU storage is 64-byte aligned host memory; freed blocks of 32 KiB to 8 MiB
// are cached by size and handed out again (memory_cpu.cpp; LOCKSTEP_HOST_CACHE=0 turns that
// off), so a training step does not fault in fresh pages every step. CUDA storage comes from a
// caching allocator (kernels/memory_cuda.cu): freed blocks go back to a free list of their
// size bucket and are handed out again, so steady-state training calls cudaMalloc only in
// its first step. All CUDA work, copies included, is ordered on one stream.
#pragma once
#include <cstddef>
#include <cstdint>

namespace lockstep {

void* host_alloc(size_t nbytes);  // 64-byte aligned; throws std::runtime_error on failure
void host_free(void* p);
bool host_cache_enabled();  // false under ASan/MSan and with LOCKSTEP_HOST_CACHE=0

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
