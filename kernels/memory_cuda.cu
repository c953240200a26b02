// Device memory through the CUDA runtime, on the default stream.
#include "kernels/cuda_common.cuh"
#include "kernels/memory.h"

namespace lockstep {

bool cuda_device_available() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error
    return false;
  }
  return n > 0;
}

void* cuda_alloc(size_t nbytes) {
  void* p = nullptr;
  CUDA_CHECK(cudaMalloc(&p, nbytes == 0 ? 1 : nbytes));
  return p;
}

void cuda_free(void* p) { cudaFree(p); }  // never throws: called from destructors

void cuda_copy_to_device(void* dst, const void* src, size_t nbytes) {
  CUDA_CHECK(cudaMemcpy(dst, src, nbytes, cudaMemcpyHostToDevice));
}
void cuda_copy_to_host(void* dst, const void* src, size_t nbytes) {
  CUDA_CHECK(cudaMemcpy(dst, src, nbytes, cudaMemcpyDeviceToHost));
}
void cuda_copy_device_to_device(void* dst, const void* src, size_t nbytes) {
  CUDA_CHECK(cudaMemcpy(dst, src, nbytes, cudaMemcpyDeviceToDevice));
}
void cuda_memset_zero(void* dst, size_t nbytes) { CUDA_CHECK(cudaMemset(dst, 0, nbytes)); }

}  // namespace lockstep
