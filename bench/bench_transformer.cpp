// bench_transformer: the transformer ops at the shapes of a small GPT step (issue 17:
// batch 32, context 128, width 128, 4 heads of 32), forward + backward through autograd,
// on the CPU, per thread count; deterministic mode unless the name says fast.
//
//   BM_attention/T        causal scaled_dot_product_attention, q, k, v: 32 x 4 x 128 x 32
//   BM_attention_infer/T  forward only, no gradient
//   BM_attention_infer_fast/T  the same in fast mode (each row's keys split in
//                         max(1, 64 / (B H)) = 1 part at this batch: the split shows at B H < 64)
//   BM_layer_norm/T       layer_norm over 4096 x 128 with weight and bias
//   BM_embedding/T        embedding of 4096 ids into a 96 x 128 table (backward: the
//                         sorted batch-order sums)
//   BM_embedding_fast/T   the same in fast mode (running sums, no tree)
//   BM_bmm/T              matmul 128 x (128 x 32) by (32 x 128): the scores as a batched GEMM
//
//   ./build/bench/bench_transformer
#include <benchmark/benchmark.h>

#include <vector>

#include "base/mode.h"
#include "base/parallel.h"
#include "core/autograd.h"
#include "core/tensor.h"

namespace {

using namespace lockstep;

Tensor rand_t(const Shape& s, uint32_t seed) {
  std::vector<float> v(static_cast<size_t>(shape_numel(s)));
  uint32_t x = seed * 2654435761u + 1;
  for (auto& f : v) {
    x = x * 1664525u + 1013904223u;
    f = static_cast<float>(x >> 8) * (2.0f / 16777216.0f) - 1.0f;
  }
  return Tensor::from_vector(v, s);
}

void run_backward(const Tensor& y, const Tensor& w) { sum(mul(y, w)).backward(); }

void attention(benchmark::State& state, Mode mode, bool grad) {
  ThreadsGuard tg(static_cast<int>(state.range(0)));
  ModeGuard mg(mode);
  Tensor q = rand_t({32, 4, 128, 32}, 1), k = rand_t({32, 4, 128, 32}, 2), v = rand_t({32, 4, 128, 32}, 3);
  const Tensor w = rand_t({32, 4, 128, 32}, 4);
  for (Tensor* t : {&q, &k, &v}) t->set_requires_grad(grad);
  for (auto _ : state) {
    Tensor y = scaled_dot_product_attention(q, k, v, true);
    if (grad) run_backward(y, w);
    benchmark::DoNotOptimize(y.raw_data());
  }
}
void BM_attention(benchmark::State& s) { attention(s, Mode::deterministic, true); }
void BM_attention_infer(benchmark::State& s) { attention(s, Mode::deterministic, false); }
void BM_attention_infer_fast(benchmark::State& s) { attention(s, Mode::fast, false); }

void BM_layer_norm(benchmark::State& state) {
  ThreadsGuard tg(static_cast<int>(state.range(0)));
  Tensor x = rand_t({4096, 128}, 5), g = rand_t({128}, 6), b = rand_t({128}, 7);
  const Tensor w = rand_t({4096, 128}, 8);
  for (Tensor* t : {&x, &g, &b}) t->set_requires_grad(true);
  for (auto _ : state) run_backward(layer_norm(x, g, b), w);
}

void embedding_bench(benchmark::State& state, Mode mode) {
  ThreadsGuard tg(static_cast<int>(state.range(0)));
  ModeGuard mg(mode);
  std::vector<int64_t> ids(4096);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int64_t>((i * 37 + i / 7) % 96);
  const Tensor id = Tensor::from_vector(ids, {32, 128});
  Tensor table = rand_t({96, 128}, 9);
  table.set_requires_grad(true);
  const Tensor w = rand_t({32, 128, 128}, 10);
  for (auto _ : state) run_backward(embedding(table, id), w);
}
void BM_embedding(benchmark::State& s) { embedding_bench(s, Mode::deterministic); }
void BM_embedding_fast(benchmark::State& s) { embedding_bench(s, Mode::fast); }

void BM_bmm(benchmark::State& state) {
  ThreadsGuard tg(static_cast<int>(state.range(0)));
  const Tensor a = rand_t({128, 128, 32}, 11), b = rand_t({128, 32, 128}, 12);
  for (auto _ : state) benchmark::DoNotOptimize(matmul(a, b).raw_data());
}

}  // namespace

BENCHMARK(BM_attention)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_attention_infer)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_attention_infer_fast)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_layer_norm)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_embedding)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_embedding_fast)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_bmm)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_MAIN();
