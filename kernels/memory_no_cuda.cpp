// Device memory in a CPU-only build (-DLOCKSTEP_CUDA=OFF or no nvcc): core/ calls these
// directly (Storage, Tensor::to, copies), so each has a stub here that throws a clear error
// or reports no device. A CUDA build compiles nothing here (kernels/memory_cuda.cu).
// The CUDA kernels need no stubs: core/ops/dispatch.h never compiles a call to one in a
// build without CUDA.
#include <stdexcept>

#include "kernels/memory.h"
#include "lockstep/config.h"

#if !LOCKSTEP_HAS_CUDA
#define LS_NO_CUDA(op) throw std::runtime_error("[" op "] lockstep was built without CUDA")

namespace lockstep {

bool cuda_device_available() { return false; }
void* cuda_alloc(size_t) { LS_NO_CUDA("cuda_alloc"); }
void cuda_free(void*) {}
void cuda_copy_to_device(void*, const void*, size_t) { LS_NO_CUDA("to(cuda)"); }
void cuda_copy_to_host(void*, const void*, size_t) { LS_NO_CUDA("to(cpu)"); }
void cuda_copy_device_to_device(void*, const void*, size_t) { LS_NO_CUDA("clone"); }
void cuda_memset_zero(void*, size_t) { LS_NO_CUDA("zeros"); }
void cuda_fill(void*, const void*, size_t, int64_t) { LS_NO_CUDA("fill_"); }
void cuda_strided_copy(void*, const void*, size_t, int, const int64_t*, const int64_t*) { LS_NO_CUDA("contiguous"); }
void cuda_synchronize() {}
CudaMemoryStats cuda_memory_stats() { return CudaMemoryStats(); }
void cuda_empty_cache() {}

}  // namespace lockstep

#endif  // !LOCKSTEP_HAS_CUDA
