// conv2d on the CNN recipe's shapes (nn/models_cnn.h, batch 128): layer 1, 1 -> 32 channels
// 3x3 pad 1 on 28x28; layer 2, 32 -> 64 3x3 pad 1 on 14x14; no bias (BatchNorm follows).
// BM_conv_forward: the forward alone; BM_conv_step: forward and backward (grad-weight, and
// grad-input for layer 2; layer 1's input needs none, as in training). Deterministic vs
// fast mode (autotuned forward, library GEMM backward), 1 and 2 threads. Reports samples/s
// and GFLOP/s (2 flops per multiply-add of the direct convolution). BM_block_step: the
// block's BatchNorm2d, ReLU and 2 x 2 max-pool, forward and backward, on the conv's output.
#include <benchmark/benchmark.h>

#include "base/mode.h"
#include "base/parallel.h"
#include "core/autograd.h"
#include "core/ops.h"
#include "core/random.h"
#include "core/tensor.h"
#include "kernels/gemm.h"

using namespace lockstep;

namespace {

struct Layer {
  int64_t c, o, side;
};
const Layer kLayers[] = {{1, 32, 28}, {32, 64, 14}};

void run(benchmark::State& state, bool backward) {
  const Layer L = kLayers[state.range(0)];
  const int64_t batch = state.range(1);
  const int threads = static_cast<int>(state.range(2));
  const Mode m = state.range(3) ? Mode::fast : Mode::deterministic;
  ThreadsGuard tg(threads);
  ModeGuard mg(m);
  Tensor x = Tensor::empty({batch, L.c, L.side, L.side}), w = Tensor::empty({L.o, L.c, 3, 3});
  Tensor dy = Tensor::empty({batch, L.o, L.side, L.side});
  fill_uniform(x, -1, 1, 1, 0);
  fill_uniform(w, -0.3, 0.3, 1, 1);
  fill_uniform(dy, -1, 1, 1, 2);
  const bool need_dx = backward && L.c > 1;
  if (backward) {
    w.set_requires_grad(true);
    x.set_requires_grad(need_dx);
  }
  // Fast mode: the autotuners time the forward algorithms and the backward's GEMMs here, once.
  if (backward)
    conv2d(x, w, Tensor(), {1, 1}).backward(dy);
  else
    conv2d(x, w, Tensor(), {1, 1});
  for (auto _ : state) {
    if (backward) {
      w.set_grad(Tensor());
      if (need_dx) x.set_grad(Tensor());
      Tensor y = conv2d(x, w, Tensor(), {1, 1});
      y.backward(dy);
      benchmark::DoNotOptimize(w.grad().data<float>());
    } else {
      NoGradGuard ng;
      Tensor y = conv2d(x, w, Tensor(), {1, 1});
      benchmark::DoNotOptimize(y.data<float>());
    }
  }
  const double fma = double(batch) * L.o * L.side * L.side * L.c * 9;
  const double passes = backward ? (need_dx ? 3 : 2) : 1;
  state.counters["samples/s"] = benchmark::Counter(double(batch) * state.iterations(), benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] =
      benchmark::Counter(2 * fma * passes * state.iterations() * 1e-9, benchmark::Counter::kIsRate);
  state.SetLabel(str_cat(mode_name(m), " ", L.c, "->", L.o, " ", L.side, "x", L.side, " threads=", threads,
                         m == Mode::fast ? str_cat(" algo=", conv2d_algo_name(conv2d_last_algo())) : ""));
}

// The baseline in the same run: the forward's arithmetic as one plain GEMM (M = batch x
// output pixels, N = output channels, K = C x 9; operands already laid out), the
// deterministic kernel on the given threads. conv / baseline time = the cost of im2col,
// packing and the layout changes.
void BM_gemm_baseline(benchmark::State& state) {
  const Layer L = kLayers[state.range(0)];
  const int64_t batch = state.range(1), M = batch * L.side * L.side, N = L.o, K = L.c * 9;
  ThreadsGuard tg(static_cast<int>(state.range(2)));
  Tensor a = Tensor::empty({K, M}), b = Tensor::empty({N, K}), c = Tensor::empty({M, N});
  fill_uniform(a, -1, 1, 1, 3);
  fill_uniform(b, -1, 1, 1, 4);
  GemmArgs g;
  g.trans_a = true, g.trans_b = true, g.M = M, g.N = N, g.K = K;
  g.A = a.data<float>(), g.lda = M, g.B = b.data<float>(), g.ldb = K, g.C = c.data<float>(), g.ldc = N;
  for (auto _ : state) gemm_cpu(Exec::current(), g);
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * M * N * K * state.iterations() * 1e-9, benchmark::Counter::kIsRate);
}

// The rest of a conv block on the conv's output: BatchNorm2d (training, affine) -> ReLU ->
// MaxPool2d(2), forward and backward, deterministic (layer 0: 32 x 28 x 28, layer 1: 64 x 14 x 14).
void BM_block_step(benchmark::State& state) {
  const Layer L = kLayers[state.range(0)];
  const int64_t batch = state.range(1);
  ThreadsGuard tg(static_cast<int>(state.range(2)));
  Tensor x = Tensor::empty({batch, L.o, L.side, L.side}), dy = Tensor::empty({batch, L.o, L.side / 2, L.side / 2});
  Tensor g = Tensor::ones({L.o}), b = Tensor::zeros({L.o}), rm = Tensor::zeros({L.o}), rv = Tensor::ones({L.o});
  fill_uniform(x, -1, 1, 1, 5);
  fill_uniform(dy, -1, 1, 1, 6);
  x.set_requires_grad(true), g.set_requires_grad(true), b.set_requires_grad(true);
  for (auto _ : state) {
    x.set_grad(Tensor()), g.set_grad(Tensor()), b.set_grad(Tensor());
    Tensor y = max_pool2d(relu(batch_norm2d(x, rm, rv, g, b, true, 0.1, 1e-5)), {2, 2}, {2, 2}, {0, 0});
    y.backward(dy);
    benchmark::DoNotOptimize(x.grad().data<float>());
  }
  state.counters["samples/s"] = benchmark::Counter(double(batch) * state.iterations(), benchmark::Counter::kIsRate);
  state.SetLabel(str_cat("BatchNorm2d+ReLU+MaxPool2d ", L.o, "x", L.side, "x", L.side));
}

void BM_conv_forward(benchmark::State& state) { run(state, false); }
void BM_conv_step(benchmark::State& state) { run(state, true); }

}  // namespace

BENCHMARK(BM_conv_forward)
    ->ArgNames({"layer", "batch", "threads", "fast"})
    ->ArgsProduct({{0, 1}, {128}, {1, 2}, {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_gemm_baseline)
    ->ArgNames({"layer", "batch", "threads"})
    ->ArgsProduct({{0, 1}, {128}, {1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_conv_step)
    ->ArgNames({"layer", "batch", "threads", "fast"})
    ->ArgsProduct({{0, 1}, {128}, {1, 2}, {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

BENCHMARK(BM_block_step)
    ->ArgNames({"layer", "batch", "threads"})
    ->ArgsProduct({{0, 1}, {128}, {1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

BENCHMARK_MAIN();
