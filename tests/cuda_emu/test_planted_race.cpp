// What only the CUDA emulation can test: that it finds the bugs it is there to find.
// A test-only kernel sums 256 values in shared memory by the usual halving tree, once with
// its barriers and once with them removed (the planted race): with the barriers every
// schedule seed gives the exact sum; without them the emulator's random order between
// barriers gives a wrong sum under every seed tried. A divergent __syncthreads and a shuffle
// that names a returned lane are reported as errors.
#include <catch2/catch.hpp>

#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda/cuda_test_util.h"
#include "kernels/cuda_common.cuh"

using namespace lockstep;

namespace {

constexpr int kThreadsRace = 256;

// Block sum of x[0 .. 256) into out[0], in dynamic shared memory; kBarriers = false removes
// every barrier (the planted bug).
template <bool kBarriers>
__global__ void planted_block_sum_kernel(float* out, const float* x) {
  LS_DYNAMIC_SHARED(float, buf);
  const int t = threadIdx.x;
  buf[t] = x[t];
  if (kBarriers) __syncthreads();
  for (int s = kThreadsRace / 2; s >= 1; s /= 2) {
    if (t < s) buf[t] = buf[t] + buf[t + s];
    if (kBarriers) __syncthreads();
  }
  if (t == 0) out[0] = buf[0];
}

// Threads 0..31 wait at one barrier, the others at another.
__global__ void divergent_barrier_kernel(float* out) {
  if (threadIdx.x < 32) {
    __syncthreads();
    out[0] = 1.0f;
  } else {
    __syncthreads();
  }
}

// Lane 31 returns before the full-mask shuffle the others make.
__global__ void shuffle_after_return_kernel(float* out) {
  if (threadIdx.x == 31) return;
  out[threadIdx.x] = __shfl_down_sync(0xffffffffu, 1.0f, 1);
}

float block_sum(bool barriers, uint64_t seed) {
  lockstep_emu::set_seed(seed);
  std::vector<float> host(kThreadsRace);
  for (int i = 0; i < kThreadsRace; ++i) host[i] = static_cast<float>(i + 1);
  Tensor x = lockstep_cuda_test::dev(host);
  Tensor out = lockstep_cuda_test::dev_empty<float>(1);
  if (barriers)
    LS_LAUNCH(planted_block_sum_kernel<true>, 1, kThreadsRace, kThreadsRace * sizeof(float), cuda_stream(),
              out.data<float>(), x.data<float>());
  else
    LS_LAUNCH(planted_block_sum_kernel<false>, 1, kThreadsRace, kThreadsRace * sizeof(float), cuda_stream(),
              out.data<float>(), x.data<float>());
  CUDA_CHECK_LAUNCH("planted_block_sum_kernel");
  return lockstep_cuda_test::host<float>(out, 1)[0];
}

std::string error_of(void (*launch)(float*)) {
  Tensor out = lockstep_cuda_test::dev_empty<float>(64);
  try {
    launch(out.data<float>());
    cuda_synchronize();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("cuda emulation: a removed barrier is caught under every seed", "[cuda][emu]") {
  const uint64_t saved = lockstep_emu::seed();
  const float exact = kThreadsRace * (kThreadsRace + 1) / 2.0f;  // 32896, exact in float
  for (uint64_t seed : {1, 2, 3, 4, 5}) {
    INFO("seed " << seed);
    REQUIRE(block_sum(true, seed) == exact);
    REQUIRE(block_sum(false, seed) != exact);
  }
  // Seed 0 runs the threads in index order: the racy kernel can then look right, which is
  // why the suite runs with random orders.
  lockstep_emu::set_seed(saved);
}

TEST_CASE("cuda emulation: divergent barriers and shuffles with returned lanes are errors", "[cuda][emu]") {
  const std::string divergent =
      error_of([](float* out) { LS_LAUNCH(divergent_barrier_kernel, 1, 64, 0, cuda_stream(), out); });
  INFO(divergent);
  REQUIRE(divergent.find("different __syncthreads") != std::string::npos);
  REQUIRE(divergent.find("divergent_barrier_kernel") != std::string::npos);
  const std::string returned =
      error_of([](float* out) { LS_LAUNCH(shuffle_after_return_kernel, 1, 32, 0, cuda_stream(), out); });
  INFO(returned);
  REQUIRE(returned.find("has returned") != std::string::npos);
}

TEST_CASE("cuda emulation: device memory starts as 0xff bytes and a bad launch is an error", "[cuda][emu]") {
  void* p = nullptr;
  REQUIRE(cudaMalloc(&p, 64) == cudaSuccess);
  std::vector<unsigned char> bytes(64);
  REQUIRE(cudaMemcpy(bytes.data(), p, 64, cudaMemcpyDeviceToHost) == cudaSuccess);
  for (unsigned char b : bytes) REQUIRE(b == 0xff);
  // past the end of the allocation
  REQUIRE(cudaMemcpy(bytes.data(), p, 65, cudaMemcpyDeviceToHost) == cudaErrorInvalidValue);
  REQUIRE(cudaFree(p) == cudaSuccess);
  cudaGetLastError();
  LS_LAUNCH(divergent_barrier_kernel, 1, 2048, 0, 0, static_cast<float*>(nullptr));
  REQUIRE(cudaGetLastError() == cudaErrorInvalidConfiguration);
}
