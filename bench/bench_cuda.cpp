// CUDA benchmarks (issue 7): the deterministic tiled SGEMM against cuBLAS FP32 (TF32 off)
// at square sizes and at the MLP's shapes, and one training step of the MLP on the GPU,
// deterministic vs fast mode, batch 128 / 512 / 4096. Each iteration ends with a stream
// synchronisation, so the wall time is the GPU time. Without a device every benchmark
// reports an error and is skipped.
#include <benchmark/benchmark.h>

#include <vector>

#include "base/mode.h"
#include "core/random.h"
#include "kernels/gemm.h"
#include "kernels/memory.h"
#include "nn/models.h"
#include "optim/adam.h"

using namespace lockstep;

namespace {

bool need_device(benchmark::State& state) {
  if (cuda_device_available()) return true;
  state.SkipWithError("no CUDA device");
  return false;
}

Tensor device_uniform(const Shape& s, uint64_t seed) {
  Tensor t = Tensor::empty(s);
  fill_uniform(t, -1.0, 1.0, seed, 0);
  return t.to(Device::cuda);
}

// One GEMM of C (M x N) = op(A) op(B), K deep; algo 0 deterministic tiled, 1 cuBLAS.
void run_gemm(benchmark::State& state, int64_t M, int64_t N, int64_t K, bool ta, bool tb, KOrder order) {
  if (!need_device(state)) return;
  const bool cublas = state.range(0) == 1;
  set_allow_tf32(false);
  Tensor a = device_uniform(ta ? Shape{K, M} : Shape{M, K}, 1), b = device_uniform(tb ? Shape{N, K} : Shape{K, N}, 2);
  Tensor c = Tensor::empty({M, N}, DType::f32, Device::cuda);
  GemmArgs g;
  g.trans_a = ta, g.trans_b = tb, g.M = M, g.N = N, g.K = K, g.order = order;
  g.A = a.data<float>(), g.lda = ta ? M : K, g.B = b.data<float>(), g.ldb = tb ? K : N, g.C = c.data<float>(), g.ldc = N;
  const Exec ex = Exec::current();
  auto once = [&] { cublas ? gemm_fast_cuda_with(ex, GemmCudaAlgo::cublas, g) : gemm_cuda(ex, g); };
  once();
  cuda_synchronize();
  for (auto _ : state) {
    once();
    cuda_synchronize();
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * M * N * K * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  state.SetLabel(cublas ? "cublas fp32" : "deterministic");
}

void BM_sgemm_square(benchmark::State& state) {
  const int64_t n = state.range(1);
  run_gemm(state, n, n, n, false, false, KOrder::sequential);
}

// The MLP's GEMMs at batch B = range(1): forward x W^T (B x 784 -> 256), the grad-input
// dY W (B x 256 -> 784), and the batch-chunked grad-weight dY^T x (256 x 784, K = B).
void BM_sgemm_mlp_forward(benchmark::State& state) { run_gemm(state, state.range(1), 256, 784, false, true, KOrder::sequential); }
void BM_sgemm_mlp_grad_input(benchmark::State& state) { run_gemm(state, state.range(1), 784, 256, false, false, KOrder::sequential); }
void BM_sgemm_mlp_grad_weight(benchmark::State& state) { run_gemm(state, 256, 784, state.range(1), true, false, KOrder::batch_chunked); }

void BM_train_step(benchmark::State& state) {
  if (!need_device(state)) return;
  const int64_t batch = state.range(0);
  const Mode m = state.range(1) ? Mode::fast : Mode::deterministic;
  ModeGuard mg(m);
  auto model = nn::make_mlp(1);
  model->to(Device::cuda);
  model->train();
  optim::AdamW opt(model->parameters(), optim::AdamWOptions(1e-3));
  Tensor x = device_uniform({batch, 784}, 3);
  std::vector<int64_t> labels(static_cast<size_t>(batch));
  for (int64_t i = 0; i < batch; ++i) labels[i] = (i * 7) % 10;
  Tensor y = Tensor::from_vector(labels, {batch}).to(Device::cuda);
  auto step = [&] {
    Tensor loss = cross_entropy(model->forward(x), y);
    opt.zero_grad();
    loss.backward();
    opt.step();
  };
  step();  // optimizer state, autotuner, caching allocator warm
  cuda_synchronize();
  for (auto _ : state) {
    step();
    cuda_synchronize();
  }
  state.counters["samples/s"] = benchmark::Counter(static_cast<double>(batch) * state.iterations(),
                                                   benchmark::Counter::kIsRate);
  state.SetLabel(mode_name(m));
}

}  // namespace

BENCHMARK(BM_sgemm_square)->ArgNames({"cublas", "n"})->ArgsProduct({{0, 1}, {1024, 2048, 4096, 8192}})
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_sgemm_mlp_forward)->ArgNames({"cublas", "batch"})->ArgsProduct({{0, 1}, {128, 512, 4096}})
    ->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_sgemm_mlp_grad_input)->ArgNames({"cublas", "batch"})->ArgsProduct({{0, 1}, {128, 512, 4096}})
    ->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_sgemm_mlp_grad_weight)->ArgNames({"cublas", "batch"})->ArgsProduct({{0, 1}, {128, 512, 4096}})
    ->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_train_step)->ArgNames({"batch", "fast"})->ArgsProduct({{128, 512, 4096}, {0, 1}})
    ->Unit(benchmark::kMicrosecond)->UseRealTime();

BENCHMARK_MAIN();
