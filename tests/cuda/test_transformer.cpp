// CUDA transformer ops beyond their float32 op-table rows (tests/op_table_transformer.h):
//   - float64: embedding backward, gather/scatter_add, layer_norm / rms_norm (forward and
//     every gradient) and attention (forward and backward) on the device against the CPU,
//     bit for bit, with 70 rows (three batch chunks: the odd tree level);
//   - the KV cache on the device: rows of different lengths and one-token steps, against the
//     CPU cache bit for bit (the kv_len path of the attention kernel);
//   - fast mode: embedding backward by atomicAdd within 1e-5 of the deterministic sums.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "base/mode.h"
#include "core/autograd.h"
#include "core/kv_cache.h"
#include "cuda_test_util.h"

using namespace lockstep;
using namespace lockstep_cuda_test;

namespace {

Tensor rnd64(const Shape& s, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  return Tensor::from_vector(lockstep_test::random_floats(static_cast<size_t>(shape_numel(s)), seed, lo, hi), s)
      .to(DType::f64);
}

Tensor rnd_ids(const Shape& s, int64_t n, uint32_t seed) {
  auto u = lockstep_test::random_floats(static_cast<size_t>(shape_numel(s)), seed, 0.f, 1.f);
  std::vector<int64_t> v(u.size());
  for (size_t i = 0; i < u.size(); ++i) v[i] = std::min<int64_t>(n - 1, static_cast<int64_t>(u[i] * n));
  return Tensor::from_vector(v, s);
}

// Runs f on CPU copies and on device copies of the inputs; the outputs and the gradients of
// the float inputs (objective: sum(out * w)) must match bit for bit.
void same_on_both(const std::vector<Tensor>& in, const std::function<Tensor(const std::vector<Tensor>&)>& f) {
  auto run = [&](Device d) {
    std::vector<Tensor> args;
    for (const Tensor& t : in) {
      Tensor a = t.defined() ? t.to(d).clone() : t;
      if (a.defined() && is_floating(a.dtype())) a.set_requires_grad(true);
      args.push_back(a);
    }
    Tensor out = f(args);
    Tensor w = rnd64(out.shape(), 99).to(d);
    sum(mul(out, w)).backward();
    std::vector<Tensor> res{out.detach().to(Device::cpu)};
    for (const Tensor& a : args)
      if (a.defined() && is_floating(a.dtype())) res.push_back(a.grad().to(Device::cpu));
    return res;
  };
  ModeGuard mode(Mode::deterministic);
  const auto cpu = run(Device::cpu), gpu = run(Device::cuda);
  REQUIRE(cpu.size() == gpu.size());
  for (size_t i = 0; i < cpu.size(); ++i) {
    INFO("result " << i << " (0: the output, then the gradients)");
    REQUIRE(equal_bits(cpu[i], gpu[i]));
  }
}

}  // namespace

TEST_CASE("cuda float64: embedding, gather, scatter_add equal the CPU's bits", "[cuda][index][deterministic]") {
  same_on_both({rnd64({13, 7}, 1), rnd_ids({70, 3}, 13, 2)},
               [](const std::vector<Tensor>& a) { return embedding(a[0], a[1]); });
  same_on_both({rnd64({5, 9, 3}, 3), rnd_ids({5, 70, 3}, 9, 4)},
               [](const std::vector<Tensor>& a) { return gather(a[0], 1, a[1]); });
  same_on_both({rnd64({5, 9, 3}, 5), rnd64({5, 70, 3}, 6), rnd_ids({5, 70, 3}, 9, 7)},
               [](const std::vector<Tensor>& a) { return scatter_add(a[0], 1, a[2], a[1]); });
  same_on_both({rnd64({9, 4}, 8), rnd64({70, 4}, 9), rnd_ids({70}, 9, 10)},
               [](const std::vector<Tensor>& a) { return index_add(a[0], 0, a[2], a[1]); });
}

TEST_CASE("cuda float64: layer_norm and rms_norm equal the CPU's bits", "[cuda][layer_norm][deterministic]") {
  same_on_both({rnd64({70, 45}, 11, -3, 3), rnd64({45}, 12), rnd64({45}, 13)},
               [](const std::vector<Tensor>& a) { return layer_norm(a[0], a[1], a[2]); });
  same_on_both({rnd64({70, 45}, 14, -3, 3), rnd64({45}, 15)},
               [](const std::vector<Tensor>& a) { return rms_norm(a[0], a[1]); });
  // a row longer than one 4096-element block of the contiguous order
  same_on_both({rnd64({3, 4100}, 16, -3, 3), rnd64({4100}, 17), rnd64({4100}, 18)},
               [](const std::vector<Tensor>& a) { return layer_norm(a[0], a[1], a[2]); });
}

TEST_CASE("cuda float64: attention forward and backward equal the CPU's bits", "[cuda][attention][deterministic]") {
  for (bool causal : {true, false})
    same_on_both({rnd64({2, 3, 37, 40}, 20, -2, 2), rnd64({2, 3, 37, 40}, 21, -2, 2), rnd64({2, 3, 37, 40}, 22)},
                 [causal](const std::vector<Tensor>& a) {
                   return scaled_dot_product_attention(a[0], a[1], a[2], causal);
                 });
  // fewer queries than keys, and a query row that sees no key (Tq > Tk, causal)
  same_on_both({rnd64({1, 2, 5, 8}, 23), rnd64({1, 2, 3, 8}, 24), rnd64({1, 2, 3, 8}, 25)},
               [](const std::vector<Tensor>& a) { return scaled_dot_product_attention(a[0], a[1], a[2], true); });
}

TEST_CASE("cuda: the KV cache gives the CPU cache's bits", "[cuda][attention][deterministic]") {
  const int64_t H = 2, D = 16;
  const std::vector<int64_t> lens = {9, 40, 3};
  KVCache cpu(3, H, 48, D), gpu(3, H, 48, D, DType::f32, Device::cuda);
  for (int64_t b = 0; b < 3; ++b) {
    const Tensor k = rnd64({1, H, lens[b], D}, 30 + b).to(DType::f32);
    const Tensor v = rnd64({1, H, lens[b], D}, 40 + b).to(DType::f32);
    cpu.append_row(b, k, v);
    gpu.append_row(b, k.to(Device::cuda), v.to(Device::cuda));
  }
  for (int step = 0; step < 3; ++step) {
    const Tensor k = rnd64({3, H, 1, D}, 50 + step).to(DType::f32);
    const Tensor v = rnd64({3, H, 1, D}, 60 + step).to(DType::f32);
    const Tensor q = rnd64({3, H, 1, D}, 70 + step, -2, 2).to(DType::f32);
    cpu.append(k, v);
    gpu.append(k.to(Device::cuda), v.to(Device::cuda));
    INFO("step " << step);
    REQUIRE(equal_bits(cpu.attend(q), gpu.attend(q.to(Device::cuda)).to(Device::cpu)));
  }
}

TEST_CASE("cuda fast mode: embedding backward by atomics within tolerance", "[cuda][index][fast]") {
  const Tensor w0 = rnd64({11, 5}, 80).to(DType::f32), ids = rnd_ids({300}, 11, 81).to(Device::cuda);
  const Tensor g = rnd64({300, 5}, 82).to(DType::f32).to(Device::cuda);
  auto grad = [&](Mode m) {
    ModeGuard mode(m);
    Tensor w = w0.to(Device::cuda).clone();
    w.set_requires_grad(true);
    sum(mul(embedding(w, ids), g)).backward();
    return w.grad().to(Device::cpu).to_vector<float>();
  };
  const auto det = grad(Mode::deterministic), fast = grad(Mode::fast);
  for (size_t i = 0; i < det.size(); ++i) REQUIRE(std::fabs(det[i] - fast[i]) <= 1e-5f * (1 + std::fabs(det[i])));
  bool differs = false;
  for (int r = 0; r < 3; ++r) differs = differs || grad(Mode::fast) != fast;
  if (differs) WARN("fast-mode embedding backward changed its bits between runs");
}
