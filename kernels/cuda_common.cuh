// Shared by the CUDA kernels: error checking that names the call, the error and the place.
#pragma once
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#define CUDA_CHECK(call)                                                                 \
  do {                                                                                   \
    cudaError_t lockstep_err_ = (call);                                                  \
    if (lockstep_err_ != cudaSuccess)                                                    \
      throw std::runtime_error(std::string("[cuda] ") + #call + " failed: " +            \
                               cudaGetErrorString(lockstep_err_) + " at " + __FILE__ +   \
                               ":" + std::to_string(__LINE__));                          \
  } while (0)
