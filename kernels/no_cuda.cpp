// The *_cuda entry points of a CPU-only build (-DLOCKSTEP_CUDA=OFF or no nvcc): device
// memory and every CUDA kernel, each a stub that throws a clear error, so op code
// dispatches on the device without any #ifdef. A CUDA build compiles nothing here: the
// kernels live in kernels/*_cuda.cu.
#include <stdexcept>

#include "kernels/gemm.h"
#include "kernels/memory.h"
#include "kernels/optim.h"
#include "kernels/reduce.h"
#include "kernels/softmax.h"
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

void gemm_cuda(const GemmArgs&) { LS_NO_CUDA("gemm"); }
void gemm_cuda_with(GemmCudaTile, const GemmArgs&) { LS_NO_CUDA("gemm"); }
void gemm_cuda_ref(const GemmArgs&) { LS_NO_CUDA("gemm"); }
void gemm_fast_cuda(const GemmArgs&) { LS_NO_CUDA("gemm"); }
const char* gemm_cuda_algo_name(GemmCudaAlgo a) { return a == GemmCudaAlgo::tiled ? "tiled" : "cublas"; }
void gemm_fast_cuda_with(GemmCudaAlgo, const GemmArgs&) { LS_NO_CUDA("gemm"); }
GemmCudaAlgo gemm_cuda_autotune_choice(const GemmArgs&) { LS_NO_CUDA("gemm"); }
void gemm_cuda_autotune_reset() {}

// reductions, elementwise, softmax (kernels/reduce.h, elementwise.h, softmax.h)
void sum_cuda(float*, const float*, int64_t) { LS_NO_CUDA("sum"); }
void sum_cuda(double*, const double*, int64_t) { LS_NO_CUDA("sum"); }
void sum_rows_cuda(float*, const float*, int64_t, int64_t) { LS_NO_CUDA("sum"); }
void sum_rows_cuda(double*, const double*, int64_t, int64_t) { LS_NO_CUDA("sum"); }
void sum_cols_cuda(float*, const float*, int64_t, int64_t, bool) { LS_NO_CUDA("sum"); }
void sum_cols_cuda(double*, const double*, int64_t, int64_t, bool) { LS_NO_CUDA("sum"); }
void sum_mid_cuda(float*, const float*, int64_t, int64_t, int64_t) { LS_NO_CUDA("sum"); }
void sum_mid_cuda(double*, const double*, int64_t, int64_t, int64_t) { LS_NO_CUDA("sum"); }
void max_cuda(float*, const float*, int64_t, int64_t, int64_t) { LS_NO_CUDA("max"); }
void max_cuda(double*, const double*, int64_t, int64_t, int64_t) { LS_NO_CUDA("max"); }
void argmax_cuda(int64_t*, const float*, int64_t, int64_t, int64_t) { LS_NO_CUDA("argmax"); }
void argmax_cuda(int64_t*, const double*, int64_t, int64_t, int64_t) { LS_NO_CUDA("argmax"); }
void sum_fast_cuda(float*, const float*, int64_t) { LS_NO_CUDA("sum"); }
void sum_fast_cuda(double*, const double*, int64_t) { LS_NO_CUDA("sum"); }
void sum_rows_fast_cuda(float*, const float*, int64_t, int64_t) { LS_NO_CUDA("sum"); }
void sum_rows_fast_cuda(double*, const double*, int64_t, int64_t) { LS_NO_CUDA("sum"); }
void sum_mid_fast_cuda(float*, const float*, int64_t, int64_t, int64_t) { LS_NO_CUDA("sum"); }
void sum_mid_fast_cuda(double*, const double*, int64_t, int64_t, int64_t) { LS_NO_CUDA("sum"); }
void softmax_forward_cuda(float*, const float*, int64_t, int64_t) { LS_NO_CUDA("softmax"); }
void softmax_forward_cuda(double*, const double*, int64_t, int64_t) { LS_NO_CUDA("softmax"); }
void log_softmax_forward_cuda(float*, const float*, int64_t, int64_t) { LS_NO_CUDA("log_softmax"); }
void log_softmax_forward_cuda(double*, const double*, int64_t, int64_t) { LS_NO_CUDA("log_softmax"); }

void sgd_step_cuda(float*, float*, const float*, int64_t, const SgdStep&) { LS_NO_CUDA("sgd_step"); }
void sgd_step_cuda(double*, double*, const double*, int64_t, const SgdStep&) { LS_NO_CUDA("sgd_step"); }
void adam_step_cuda(float*, float*, float*, float*, const float*, int64_t, const AdamStep&) { LS_NO_CUDA("adam_step"); }
void adam_step_cuda(double*, double*, double*, double*, const double*, int64_t, const AdamStep&) { LS_NO_CUDA("adam_step"); }
void norm_reduce_cuda(float*, const float*, int64_t, NormKind) { LS_NO_CUDA("clip_grad_norm"); }
void norm_reduce_cuda(double*, const double*, int64_t, NormKind) { LS_NO_CUDA("clip_grad_norm"); }

}  // namespace lockstep

#endif  // !LOCKSTEP_HAS_CUDA
