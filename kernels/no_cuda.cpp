// The *_cuda entry points of a CPU-only build (-DLOCKSTEP_CUDA=OFF or no nvcc): device
// memory and every CUDA kernel, each a stub that throws a clear error, so op code
// dispatches on the device without any #ifdef. A CUDA build compiles nothing here: the
// kernels live in kernels/*_cuda.cu.
#include <stdexcept>

#include "kernels/activation.h"
#include "kernels/batchnorm.h"
#include "kernels/dropout.h"
#include "kernels/elementwise.h"
#include "kernels/loss.h"
#include "kernels/memory.h"
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

// elementwise, softmax (kernels/elementwise.h, softmax.h)
void binary_cuda(BinaryOp, float*, const float*, const float*, const Broadcast&) { LS_NO_CUDA("elementwise"); }
void binary_cuda(BinaryOp, double*, const double*, const double*, const Broadcast&) { LS_NO_CUDA("elementwise"); }
void binary_scalar_cuda(BinaryOp, float*, const float*, float, int64_t) { LS_NO_CUDA("elementwise"); }
void binary_scalar_cuda(BinaryOp, double*, const double*, double, int64_t) { LS_NO_CUDA("elementwise"); }
void compare_cuda(CompareOp, uint8_t*, const float*, const float*, const Broadcast&) { LS_NO_CUDA("compare"); }
void compare_cuda(CompareOp, uint8_t*, const double*, const double*, const Broadcast&) { LS_NO_CUDA("compare"); }
void compare_cuda(CompareOp, uint8_t*, const int64_t*, const int64_t*, const Broadcast&) { LS_NO_CUDA("compare"); }
void where_cuda(float*, const uint8_t*, const float*, const float*, const Broadcast&) { LS_NO_CUDA("where"); }
void where_cuda(double*, const uint8_t*, const double*, const double*, const Broadcast&) { LS_NO_CUDA("where"); }
void where_cuda(int64_t*, const uint8_t*, const int64_t*, const int64_t*, const Broadcast&) { LS_NO_CUDA("where"); }
void where_cuda(uint8_t*, const uint8_t*, const uint8_t*, const uint8_t*, const Broadcast&) { LS_NO_CUDA("where"); }
void axpy_cuda(float*, float, const float*, const float*, const Broadcast&) { LS_NO_CUDA("axpy"); }
void axpy_cuda(double*, double, const double*, const double*, const Broadcast&) { LS_NO_CUDA("axpy"); }
void unary_cuda(UnaryOp, float*, const float*, int64_t) { LS_NO_CUDA("unary"); }
void unary_cuda(UnaryOp, double*, const double*, int64_t) { LS_NO_CUDA("unary"); }
void softmax_forward_cuda(float*, const float*, int64_t, int64_t) { LS_NO_CUDA("softmax"); }
void softmax_forward_cuda(double*, const double*, int64_t, int64_t) { LS_NO_CUDA("softmax"); }
void log_softmax_forward_cuda(float*, const float*, int64_t, int64_t) { LS_NO_CUDA("log_softmax"); }
void log_softmax_forward_cuda(double*, const double*, int64_t, int64_t) { LS_NO_CUDA("log_softmax"); }

// activations, dropout, batch norm, losses (kernels/activation.h, dropout.h, batchnorm.h, loss.h)
void relu_backward_cuda(float*, const float*, const float*, int64_t) { LS_NO_CUDA("relu_backward"); }
void relu_backward_cuda(double*, const double*, const double*, int64_t) { LS_NO_CUDA("relu_backward"); }
void tanh_backward_cuda(float*, const float*, const float*, int64_t) { LS_NO_CUDA("tanh_backward"); }
void tanh_backward_cuda(double*, const double*, const double*, int64_t) { LS_NO_CUDA("tanh_backward"); }
void sigmoid_backward_cuda(float*, const float*, const float*, int64_t) { LS_NO_CUDA("sigmoid_backward"); }
void sigmoid_backward_cuda(double*, const double*, const double*, int64_t) { LS_NO_CUDA("sigmoid_backward"); }
void gelu_backward_cuda(float*, const float*, const float*, int64_t) { LS_NO_CUDA("gelu_backward"); }
void gelu_backward_cuda(double*, const double*, const double*, int64_t) { LS_NO_CUDA("gelu_backward"); }
void dropout_forward_cuda(float*, uint8_t*, const float*, int64_t, float, uint64_t, uint64_t, uint64_t, uint64_t) { LS_NO_CUDA("dropout"); }
void dropout_forward_cuda(double*, uint8_t*, const double*, int64_t, float, uint64_t, uint64_t, uint64_t, uint64_t) { LS_NO_CUDA("dropout"); }
void dropout_backward_cuda(float*, const float*, const uint8_t*, int64_t, float) { LS_NO_CUDA("dropout_backward"); }
void dropout_backward_cuda(double*, const double*, const uint8_t*, int64_t, float) { LS_NO_CUDA("dropout_backward"); }
void batchnorm_forward_cuda(float*, float*, float*, float*, float*, const float*, const float*, const float*, int64_t, int64_t, bool, float, float) { LS_NO_CUDA("batch_norm"); }
void batchnorm_forward_cuda(double*, double*, double*, double*, double*, const double*, const double*, const double*, int64_t, int64_t, bool, double, double) { LS_NO_CUDA("batch_norm"); }
void batchnorm_backward_cuda(float*, float*, float*, const float*, const float*, const float*, const float*, const float*, int64_t, int64_t, bool) { LS_NO_CUDA("batch_norm_backward"); }
void batchnorm_backward_cuda(double*, double*, double*, const double*, const double*, const double*, const double*, const double*, int64_t, int64_t, bool) { LS_NO_CUDA("batch_norm_backward"); }
void cross_entropy_forward_cuda(float*, const float*, const int64_t*, int64_t, int64_t, float, Reduction) { LS_NO_CUDA("cross_entropy"); }
void cross_entropy_forward_cuda(double*, const double*, const int64_t*, int64_t, int64_t, double, Reduction) { LS_NO_CUDA("cross_entropy"); }
void cross_entropy_backward_cuda(float*, const float*, const float*, const int64_t*, int64_t, int64_t, float, Reduction) { LS_NO_CUDA("cross_entropy_backward"); }
void cross_entropy_backward_cuda(double*, const double*, const double*, const int64_t*, int64_t, int64_t, double, Reduction) { LS_NO_CUDA("cross_entropy_backward"); }
void mse_forward_cuda(float*, const float*, const float*, int64_t, int64_t, Reduction) { LS_NO_CUDA("mse_loss"); }
void mse_forward_cuda(double*, const double*, const double*, int64_t, int64_t, Reduction) { LS_NO_CUDA("mse_loss"); }
void mse_backward_cuda(float*, float*, const float*, const float*, const float*, int64_t, int64_t, Reduction) { LS_NO_CUDA("mse_loss_backward"); }
void mse_backward_cuda(double*, double*, const double*, const double*, const double*, int64_t, int64_t, Reduction) { LS_NO_CUDA("mse_loss_backward"); }

}  // namespace lockstep

#endif  // !LOCKSTEP_HAS_CUDA
