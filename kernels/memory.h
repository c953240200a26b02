// Device memory. CPU storage is 64-byte aligned host memory; CUDA storage comes from the
// CUDA runtime (a caching allocator arrives with the CUDA backend, issue 7).
#pragma once
#include <cstddef>

namespace lockstep {

void* host_alloc(size_t nbytes);  // 64-byte aligned; throws std::runtime_error on failure
void host_free(void* p);

bool cuda_device_available();     // false in CPU-only builds or without a device
void* cuda_alloc(size_t nbytes);
void cuda_free(void* p);
void cuda_copy_to_device(void* dst, const void* src, size_t nbytes);
void cuda_copy_to_host(void* dst, const void* src, size_t nbytes);
void cuda_copy_device_to_device(void* dst, const void* src, size_t nbytes);
void cuda_memset_zero(void* dst, size_t nbytes);

}  // namespace lockstep
