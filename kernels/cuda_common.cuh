// Shared by the CUDA kernels: error checking that names the call, the error and the place;
// the one stream every kernel and copy runs on; launch sizes that depend on the problem
// size only (never on the GPU model or its SM count), so a deterministic kernel cuts its
// work the same way on every GPU.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels/memory.h"

#define CUDA_CHECK(call)                                                                 \
  do {                                                                                   \
    cudaError_t lockstep_err_ = (call);                                                  \
    if (lockstep_err_ != cudaSuccess) {                                                  \
      cudaGetLastError(); /* reported here: not again by the next launch's check */      \
      throw std::runtime_error(std::string("[cuda] ") + #call + " failed: " +            \
                               cudaGetErrorString(lockstep_err_) + " at " + __FILE__ +   \
                               ":" + std::to_string(__LINE__));                          \
    }                                                                                    \
  } while (0)

// After a kernel launch: a bad configuration is reported here, naming the kernel.
#define CUDA_CHECK_LAUNCH(name)                                                          \
  do {                                                                                   \
    cudaError_t lockstep_err_ = cudaGetLastError();                                      \
    if (lockstep_err_ != cudaSuccess)                                                    \
      throw std::runtime_error(std::string("[cuda] launch of ") + (name) + " failed: " + \
                               cudaGetErrorString(lockstep_err_) + " at " + __FILE__ +   \
                               ":" + std::to_string(__LINE__));                          \
  } while (0)

namespace lockstep {

// The stream of the current device (kernels/memory_cuda.cu): created on first use, one for
// the process. Everything lockstep does on the GPU is ordered on it.
cudaStream_t cuda_stream();

namespace cuda_detail {

constexpr int kThreads = 256;            // threads per block of the elementwise kernels
constexpr int64_t kMaxGridBlocks = 1 << 16;  // grid-stride loops beyond this many blocks

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Blocks for n independent elements: a function of n alone.
inline unsigned grid_for(int64_t n, int threads = kThreads) {
  int64_t b = ceil_div(n, threads);
  if (b < 1) b = 1;
  if (b > kMaxGridBlocks) b = kMaxGridBlocks;
  return static_cast<unsigned>(b);
}

// Scratch device memory for one call, from the caching allocator; returned on scope exit
// (safe while kernels still use it: the next owner's work is queued after theirs).
template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(int64_t n) : p_(static_cast<T*>(cuda_alloc(sizeof(T) * static_cast<size_t>(n > 0 ? n : 1)))) {}
  ~DeviceBuffer() { cuda_free(p_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  T* get() const { return p_; }

 private:
  T* p_;
};

}  // namespace cuda_detail

// Every kernel launch in lockstep: LS_LAUNCH(kernel, grid, block, shared_bytes, stream, args...).
// The real build expands it to kernel<<<...>>>(args...); the CUDA emulation
// (kernels/cuda_emu/, LOCKSTEP_CUDA_EMU) runs the same kernel text on the CPU through its own
// definition. A kernel whose template arguments contain a comma goes in parentheses:
// LS_LAUNCH((k<T, 4>), ...).
#ifndef LS_LAUNCH
#define LS_LAUNCH(kernel, grid, block, shared_bytes, stream, ...) \
  kernel<<<(grid), (block), (shared_bytes), (stream)>>>(__VA_ARGS__)
#endif

// Dynamically sized shared memory (the launch's shared_bytes) as a T* named `name`.
#ifndef LS_DYNAMIC_SHARED
#define LS_DYNAMIC_SHARED(T, name)                                \
  extern __shared__ __align__(16) unsigned char ls_dyn_smem_[]; \
  T* name = reinterpret_cast<T*>(ls_dyn_smem_)
#endif

// Grid-stride loop over [0, n) with 64-bit indices.
#define LS_CUDA_FOR(i, n)                                                                     \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n);      \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

}  // namespace lockstep
