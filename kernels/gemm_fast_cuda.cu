// Fast-mode CUDA GEMM (kernels/gemm.h): cuBLAS SGEMM and an autotuner.
//
// cuBLAS is column-major: the row-major C = op(A) op(B) is the column-major
// C^T = op(B)^T op(A)^T, so B goes first. The bias is written into C first (or added into
// it when accumulating) and cuBLAS then adds the product with beta = 1. TF32 tensor-core
// math only when ex.allow_tf32 (base/exec.h), else CUBLAS_DEFAULT_MATH (full FP32 products).
// cuBLAS picks its own algorithm per shape and GPU, may split K, and does not promise the
// same bits across GPUs or library versions: that is what fast mode gives up.
//
// Autotuner (as cuDNN's benchmark mode): the first call for a shape times each variant on
// a scratch output (3 runs each after a warm-up, CUDA events) and keeps the fastest for
// that shape. Which one wins depends on timing noise, so the bits of fast mode may change
// between processes even on one GPU.
#include <cublas_v2.h>
#include <dlfcn.h>

#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <type_traits>

#include "kernels/cuda_common.cuh"
#include "kernels/gemm.h"

namespace lockstep {
namespace {

using namespace cuda_detail;

// cuBLAS is loaded with dlopen on the first fast-mode cuBLAS call, not linked: linking it
// maps and relocates libcublas/libcublasLt in every process that uses lockstep, ~215 MB of
// resident memory (measured: an empty program linked with -lcublas peaks at 218 MB, with
// -lcudart alone at 3 MB), which a CPU user of a CUDA build should not pay. The header
// gives the exact signatures; only the five calls below are used.
struct CublasApi {
  decltype(&cublasCreate_v2) create = nullptr;
  decltype(&cublasSetStream_v2) set_stream = nullptr;
  decltype(&cublasSetMathMode) set_math_mode = nullptr;
  decltype(&cublasSgemm_v2) sgemm = nullptr;
  decltype(&cublasGetStatusString) status_string = nullptr;
};

const CublasApi& cublas_api() {
  static const CublasApi api = [] {
#if defined(LOCKSTEP_CUDA_EMU)  // the CUDA emulation's host stand-in (kernels/cuda_emu): nothing to load
    CublasApi a;
    a.create = &cublasCreate_v2, a.set_stream = &cublasSetStream_v2, a.set_math_mode = &cublasSetMathMode;
    a.sgemm = &cublasSgemm_v2, a.status_string = &cublasGetStatusString;
    return a;
#else
    const std::string name = "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR);
    void* lib = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib) lib = dlopen("libcublas.so", RTLD_NOW | RTLD_LOCAL);
#ifdef LOCKSTEP_CUBLAS_DIR  // the toolkit this was built with, when the loader path lacks it
    if (!lib) lib = dlopen((std::string(LOCKSTEP_CUBLAS_DIR) + "/" + name).c_str(), RTLD_NOW | RTLD_LOCAL);
#endif
    if (!lib)
      throw std::runtime_error("[cublas] cannot load " + name + " (fast-mode CUDA GEMM): " + dlerror());
    CublasApi a;
    auto sym = [&](auto& fn, const char* symbol) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, symbol));
      if (!fn) throw std::runtime_error(std::string("[cublas] ") + name + " has no symbol " + symbol);
    };
    sym(a.create, "cublasCreate_v2");
    sym(a.set_stream, "cublasSetStream_v2");
    sym(a.set_math_mode, "cublasSetMathMode");
    sym(a.sgemm, "cublasSgemm_v2");
    sym(a.status_string, "cublasGetStatusString");
    return a;  // the library stays loaded for the life of the process
#endif
  }();
  return api;
}

#define CUBLAS_CHECK(call)                                                                     \
  do {                                                                                         \
    cublasStatus_t lockstep_st_ = (call);                                                      \
    if (lockstep_st_ != CUBLAS_STATUS_SUCCESS)                                                 \
      throw std::runtime_error(std::string("[cublas] ") + #call + " failed: " +                \
                               cublas_api().status_string(lockstep_st_) + " at " + __FILE__ +  \
                               ":" + std::to_string(__LINE__));                                \
  } while (0)

cublasHandle_t cublas() {
  static cublasHandle_t h = [] {
    cublasHandle_t handle = nullptr;
    CUBLAS_CHECK(cublas_api().create(&handle));
    CUBLAS_CHECK(cublas_api().set_stream(handle, cuda_stream()));
    return handle;
  }();
  return h;
}

// Row i of C (ldc) set to bias (or bias added into it when accumulating).
__global__ void bias_rows_kernel(float* C, int64_t ldc, const float* bias, int64_t M, int64_t N, bool add) {
  LS_CUDA_FOR(t, M * N) {
    const int64_t i = t / N, j = t % N;
    float* c = C + i * ldc + j;
    *c = add ? *c + bias[j] : bias[j];
  }
}

void gemm_cublas(const Exec& ex, const GemmArgs& g) {
  if (g.M == 0 || g.N == 0) return;
  if (g.K == 0) return gemm_cuda(ex, g);  // the epilogue on +0.0f; nothing for cuBLAS to do
  float beta = g.accumulate ? 1.0f : 0.0f;
  if (g.bias) {
    LS_LAUNCH(bias_rows_kernel, grid_for(g.M * g.N), kThreads, 0, cuda_stream(), g.C, g.ldc, g.bias, g.M, g.N,
              g.accumulate);
    CUDA_CHECK_LAUNCH("bias_rows_kernel");
    beta = 1.0f;
  }
  cublasHandle_t h = cublas();
  CUBLAS_CHECK(cublas_api().set_math_mode(h, ex.allow_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  const float alpha = 1.0f;
  CUBLAS_CHECK(cublas_api().sgemm(h, g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                           static_cast<int>(g.N), static_cast<int>(g.M), static_cast<int>(g.K), &alpha, g.B,
                           static_cast<int>(g.ldb), g.A, static_cast<int>(g.lda), &beta, g.C,
                           static_cast<int>(g.ldc)));
}

using ShapeKey = std::tuple<bool, bool, int64_t, int64_t, int64_t, int, bool, bool>;

struct Tuner {
  std::mutex mu;
  std::map<ShapeKey, GemmCudaAlgo> choice;
};
Tuner& tuner() {
  static Tuner* t = new Tuner();
  return *t;
}

ShapeKey key_of(const Exec& ex, const GemmArgs& g) {
  return ShapeKey(g.trans_a, g.trans_b, g.M, g.N, g.K, static_cast<int>(g.order), g.bias != nullptr, ex.allow_tf32);
}

// Milliseconds of the best of 3 runs of algo on a scratch output of g's shape.
float time_variant(const Exec& ex, GemmCudaAlgo algo, const GemmArgs& g, float* scratch) {
  GemmArgs t = g;
  t.C = scratch, t.ldc = g.N, t.accumulate = false;
  cudaEvent_t start, stop;
  CUDA_CHECK(cudaEventCreate(&start));
  CUDA_CHECK(cudaEventCreate(&stop));
  gemm_fast_cuda_with(ex, algo, t);  // warm-up (cuBLAS heuristics, first-launch costs)
  float best = 1e30f;
  for (int rep = 0; rep < 3; ++rep) {
    CUDA_CHECK(cudaEventRecord(start, cuda_stream()));
    gemm_fast_cuda_with(ex, algo, t);
    CUDA_CHECK(cudaEventRecord(stop, cuda_stream()));
    CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    best = ms < best ? ms : best;
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return best;
}

}  // namespace

const char* gemm_cuda_algo_name(GemmCudaAlgo a) { return a == GemmCudaAlgo::tiled ? "tiled" : "cublas"; }

void gemm_fast_cuda_with(const Exec& ex, GemmCudaAlgo algo, const GemmArgs& g) {
  if (algo == GemmCudaAlgo::cublas)
    gemm_cublas(ex, g);
  else
    gemm_cuda(ex, g);
}

GemmCudaAlgo gemm_cuda_autotune_choice(const Exec& ex, const GemmArgs& g) {
  Tuner& t = tuner();
  const ShapeKey key = key_of(ex, g);
  {
    std::lock_guard<std::mutex> lock(t.mu);
    auto it = t.choice.find(key);
    if (it != t.choice.end()) return it->second;
  }
  GemmCudaAlgo best = GemmCudaAlgo::cublas;
  if (g.M > 0 && g.N > 0) {
    DeviceBuffer<float> scratch(g.M * g.N);
    const float t_cublas = time_variant(ex, GemmCudaAlgo::cublas, g, scratch.get());
    const float t_tiled = time_variant(ex, GemmCudaAlgo::tiled, g, scratch.get());
    best = t_tiled < t_cublas ? GemmCudaAlgo::tiled : GemmCudaAlgo::cublas;
  }
  std::lock_guard<std::mutex> lock(t.mu);
  t.choice.emplace(key, best);
  return best;
}

void gemm_cuda_autotune_reset() {
  Tuner& t = tuner();
  std::lock_guard<std::mutex> lock(t.mu);
  t.choice.clear();
}

template <typename T>
void gemm_fast_cuda(const Exec& ex, const GemmArgsT<T>& g) {
  if constexpr (std::is_same_v<T, float>)
    gemm_fast_cuda_with(ex, gemm_cuda_autotune_choice(ex, g), g);
  else
    gemm_cuda(ex, g);  // no tuned float64 variant
}
template void gemm_fast_cuda<float>(const Exec&, const GemmArgs&);
template void gemm_fast_cuda<double>(const Exec&, const GemmArgsF64&);

}  // namespace lockstep
