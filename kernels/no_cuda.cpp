// The *_cuda entry points that have no CUDA kernel in this build. In a CPU-only build that is
// all of them (plus device memory); in a CUDA build, the kernels still to be written (issue 7).
// Each throws a clear error, so op code dispatches on the device without any #ifdef.
#include <stdexcept>

#include "kernels/gemm.h"
#include "kernels/memory.h"
#include "lockstep/config.h"

#if LOCKSTEP_HAS_CUDA
#define LS_NO_CUDA(op) throw std::runtime_error("[" op "] has no CUDA kernel yet (issue 7); run it on the CPU")
#else
#define LS_NO_CUDA(op) throw std::runtime_error("[" op "] lockstep was built without CUDA")
#endif

namespace lockstep {

#if !LOCKSTEP_HAS_CUDA
bool cuda_device_available() { return false; }
void* cuda_alloc(size_t) { LS_NO_CUDA("cuda_alloc"); }
void cuda_free(void*) {}
void cuda_copy_to_device(void*, const void*, size_t) { LS_NO_CUDA("to(cuda)"); }
void cuda_copy_to_host(void*, const void*, size_t) { LS_NO_CUDA("to(cpu)"); }
void cuda_copy_device_to_device(void*, const void*, size_t) { LS_NO_CUDA("clone"); }
void cuda_memset_zero(void*, size_t) { LS_NO_CUDA("zeros"); }
#endif

void gemm_cuda(const GemmArgs&) { LS_NO_CUDA("gemm"); }
void gemm_fast_cuda(const GemmArgs&) { LS_NO_CUDA("gemm"); }

}  // namespace lockstep
