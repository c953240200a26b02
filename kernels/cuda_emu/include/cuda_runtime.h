// The CUDA emulation (docs/cuda.md, "The emulation"): stands in for <cuda_runtime.h> when
// LOCKSTEP_CUDA_EMU builds kernels/*_cuda.cu as host C++, so the project's own kernel text
// runs on the CPU. It provides
//   the language   __global__/__device__ vanish; __shared__ is a static (blocks run one at a
//                  time, so one instance per block); threadIdx/blockIdx/blockDim/gridDim are
//                  those of the emulated thread running now;
//   synchronisation __syncthreads is a barrier of the block's threads; __shfl_*_sync is a
//                  barrier of the warp's 32 lanes that exchanges the values (lock-step);
//                  atomicAdd is a plain add (one emulated thread runs at a time);
//   device math    fmaf, sqrtf, fabsf, IEEE division: the host's correctly rounded operations,
//                  as --fmad=false --prec-div=true --prec-sqrt=true --ftz=false promise;
//   the runtime    device memory is host memory (filled with 0xff by cudaMalloc), streams
//                  are in-order queues run at synchronisation points, events time them.
// Each block's threads are fibers (kernels/cuda_emu/emu.cpp); between barriers they run in a
// seeded random order (LOCKSTEP_EMU_SEED), and the blocks of a grid too, so a missing
// barrier or a race between blocks changes the bits from one seed to the next.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#define LOCKSTEP_CUDA_EMU 1

// ---- the language ----------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))
#define __restrict__ __restrict
#define warpSize 32

struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

typedef enum cudaError {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorLaunchFailure = 719,
} cudaError_t;

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

namespace lockstep_emu {
struct Stream;
struct Event;
}  // namespace lockstep_emu
typedef lockstep_emu::Stream* cudaStream_t;  // nullptr: the legacy default stream
typedef lockstep_emu::Event* cudaEvent_t;

namespace lockstep_emu {

// The built-in variables of the emulated thread running now (set by the scheduler).
struct Builtins {
  uint3 thread_idx, block_idx;
  dim3 block_dim, grid_dim;
};
extern Builtins g_builtins;

// Barriers, called from kernel code on an emulated thread; `site` names the call (file:line).
void block_barrier(const char* file, int line);
// Warp exchange: every lane in `mask` deposits `bits`, waits for the others, and gets the
// bits lane `src` deposited (its own when src < 0).
uint64_t warp_exchange(const char* file, int line, unsigned mask, uint64_t bits, int src);
void* dynamic_shared();

// The kernel body of one launch: invoke(self) runs the kernel as the current thread.
struct KernelBody {
  void (*invoke)(const void* self);
  std::shared_ptr<const void> self;
};
// Queues a launch on `stream` (or sets the last error to cudaErrorInvalidConfiguration).
void enqueue_launch(const char* name, dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream,
                    KernelBody body);

template <typename F, typename Tuple>
struct Closure {
  F f;
  Tuple args;
  static void invoke(const void* p) {
    const Closure* c = static_cast<const Closure*>(p);
    std::apply(c->f, c->args);  // the kernel copies each argument into its parameter
  }
};

// The arguments are copied at the launch, as CUDA copies them.
template <typename F, typename... A>
void launch(const char* name, dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream, F f, A&&... a) {
  using C = Closure<F, std::tuple<std::decay_t<A>...>>;
  auto c = std::make_shared<const C>(C{f, std::tuple<std::decay_t<A>...>(std::forward<A>(a)...)});
  enqueue_launch(name, grid, block, shared_bytes, stream, KernelBody{&C::invoke, c});
}

template <typename T>
inline uint64_t to_bits(T v) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffle of a type wider than 8 bytes");
  uint64_t u = 0;
  std::memcpy(&u, &v, sizeof v);
  return u;
}
template <typename T>
inline T from_bits(uint64_t u) {
  T v;
  std::memcpy(&v, &u, sizeof v);
  return v;
}
inline int lane_now() {
  const Builtins& b = g_builtins;
  const unsigned t = b.thread_idx.x + b.block_dim.x * (b.thread_idx.y + b.block_dim.y * b.thread_idx.z);
  return static_cast<int>(t % 32);
}

template <typename T>
T shfl(const char* file, int line, unsigned mask, T v, int src_lane, int width) {
  const int lane = lane_now(), base = lane - lane % width;
  return from_bits<T>(warp_exchange(file, line, mask, to_bits(v), base + ((src_lane % width) + width) % width));
}
template <typename T>
T shfl_down(const char* file, int line, unsigned mask, T v, unsigned delta, int width) {
  const int lane = lane_now(), in = lane % width;
  const int src = in + static_cast<int>(delta) < width ? lane + static_cast<int>(delta) : -1;
  return from_bits<T>(warp_exchange(file, line, mask, to_bits(v), src));
}
template <typename T>
T shfl_up(const char* file, int line, unsigned mask, T v, unsigned delta, int width) {
  const int lane = lane_now(), in = lane % width;
  const int src = in - static_cast<int>(delta) >= 0 ? lane - static_cast<int>(delta) : -1;
  return from_bits<T>(warp_exchange(file, line, mask, to_bits(v), src));
}
template <typename T>
T shfl_xor(const char* file, int line, unsigned mask, T v, int lane_mask, int width) {
  const int lane = lane_now(), src = lane ^ lane_mask;
  return from_bits<T>(warp_exchange(file, line, mask, to_bits(v), src / width == lane / width ? src : -1));
}

// The names of the kernels launched so far and how often (kernel text as written in
// LS_LAUNCH, template arguments and parentheses removed); used by the coverage check.
std::vector<std::pair<std::string, long>> launched_kernels();
// The schedule seed: LOCKSTEP_EMU_SEED at start-up (default 1); 0 runs threads and blocks in
// index order. set_seed changes it (tests).
uint64_t seed();
void set_seed(uint64_t s);

}  // namespace lockstep_emu

// ---- launches and kernel-side intrinsics ------------------------------------------------
#define LS_LAUNCH(kernel, grid, block, shared_bytes, stream, ...)                                       \
  ::lockstep_emu::launch(                                                                               \
      #kernel, dim3(grid), dim3(block), static_cast<size_t>(shared_bytes), (stream),                    \
      [](const auto&... lockstep_emu_a) { kernel(lockstep_emu_a...); }, __VA_ARGS__)
#define LS_DYNAMIC_SHARED(T, name) T* name = reinterpret_cast<T*>(::lockstep_emu::dynamic_shared())

#define threadIdx (static_cast<const uint3&>(::lockstep_emu::g_builtins.thread_idx))
#define blockIdx (static_cast<const uint3&>(::lockstep_emu::g_builtins.block_idx))
#define blockDim (static_cast<const dim3&>(::lockstep_emu::g_builtins.block_dim))
#define gridDim (static_cast<const dim3&>(::lockstep_emu::g_builtins.grid_dim))

#define __syncthreads() ::lockstep_emu::block_barrier(__FILE__, __LINE__)
#define __shfl_sync(mask, v, src, ...) \
  ::lockstep_emu::shfl(__FILE__, __LINE__, (mask), (v), (src), lockstep_emu_width(__VA_ARGS__))
#define __shfl_down_sync(mask, v, d, ...) \
  ::lockstep_emu::shfl_down(__FILE__, __LINE__, (mask), (v), (d), lockstep_emu_width(__VA_ARGS__))
#define __shfl_up_sync(mask, v, d, ...) \
  ::lockstep_emu::shfl_up(__FILE__, __LINE__, (mask), (v), (d), lockstep_emu_width(__VA_ARGS__))
#define __shfl_xor_sync(mask, v, m, ...) \
  ::lockstep_emu::shfl_xor(__FILE__, __LINE__, (mask), (v), (m), lockstep_emu_width(__VA_ARGS__))
inline int lockstep_emu_width() { return 32; }
inline int lockstep_emu_width(int w) { return w; }

// One emulated thread runs at a time, so an atomic is the plain operation; which thread
// comes first is the schedule's (seeded) choice, as it is the hardware's on a GPU.
template <typename T>
inline T atomicAdd(T* p, T v) {
  const T old = *p;
  *p = old + v;
  return old;
}
template <typename T>
inline T atomicMax(T* p, T v) {
  const T old = *p;
  *p = old < v ? v : old;
  return old;
}
template <typename T>
inline T atomicMin(T* p, T v) {
  const T old = *p;
  *p = v < old ? v : old;
  return old;
}

// Bit casts of the device intrinsics (the host's memcpy).
inline unsigned __float_as_uint(float x) { return lockstep_emu::from_bits<unsigned>(lockstep_emu::to_bits(x)); }
inline float __uint_as_float(unsigned u) { return lockstep_emu::from_bits<float>(u); }
inline int __float_as_int(float x) { return lockstep_emu::from_bits<int>(lockstep_emu::to_bits(x)); }
inline float __int_as_float(int u) { return lockstep_emu::from_bits<float>(static_cast<uint32_t>(u)); }
inline long long __double_as_longlong(double x) { return static_cast<long long>(lockstep_emu::to_bits(x)); }
inline double __longlong_as_double(long long u) { return lockstep_emu::from_bits<double>(static_cast<uint64_t>(u)); }
// Correctly rounded IEEE operations, as the device's *_rn intrinsics.
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline double __fma_rn(double a, double b, double c) { return std::fma(a, b, c); }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fsqrt_rn(float a) { return std::sqrt(a); }

// ---- the runtime API (the calls lockstep makes) -------------------------------------------
cudaError_t cudaGetDeviceCount(int* n);
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorString(cudaError_t e);
cudaError_t cudaMalloc(void** p, size_t nbytes);
template <typename T>
inline cudaError_t cudaMalloc(T** p, size_t nbytes) {
  return cudaMalloc(reinterpret_cast<void**>(p), nbytes);
}
cudaError_t cudaFree(void* p);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t nbytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t nbytes, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);
cudaError_t cudaMemset(void* dst, int value, size_t nbytes);
cudaError_t cudaMemsetAsync(void* dst, int value, size_t nbytes, cudaStream_t stream = nullptr);
cudaError_t cudaStreamCreate(cudaStream_t* s);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaEventCreate(cudaEvent_t* e);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t stop);
