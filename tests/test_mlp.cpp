// Model-level guarantees of the 784-256-128-10 MLP (BatchNorm, ReLU, Dropout):
// bitwise identical training steps for any thread count, batch-invariant evaluation, and
// the classic train/eval mistakes shown next to their fix.
#include <catch2/catch.hpp>

#include "core/autograd.h"
#include "base/parallel.h"
#include "core/random.h"
#include "nn/models.h"
#include "test_util.h"

using namespace lockstep;

namespace {

Tensor inputs(int64_t n, uint64_t seed) {
  Tensor x = Tensor::empty({n, 784});
  fill_uniform(x, 0.0, 1.0, seed, 0);
  return x;
}

Tensor labels(int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = (i * 7 + 3) % 10;
  return Tensor::from_vector(v, {n});
}

// One train-mode forward/backward; returns the loss, every gradient and every buffer.
std::vector<Tensor> train_step(int threads) {
  ThreadsGuard tg(threads);
  auto model = nn::make_mlp(42);
  model->train();
  Tensor x = inputs(200, 5), y = labels(200);
  Tensor loss = cross_entropy(model->forward(x), y);
  loss.backward();
  std::vector<Tensor> out{loss};
  for (auto& p : model->parameters()) {
    REQUIRE(p.grad().defined());  // the gradient reached every layer
    out.push_back(p.grad());
  }
  for (auto& b : model->named_buffers()) out.push_back(b.second);
  return out;
}

}  // namespace

TEST_CASE("mlp: forward/backward bitwise identical across thread counts and runs", "[mlp][deterministic]") {
  auto ref = train_step(1);
  REQUIRE(ref.size() == 1 + 10 + 6);
  for (int threads : {1, 2, 3, 8})
    for (int rep = 0; rep < (threads == 1 ? 2 : 1); ++rep) {
      auto got = train_step(threads);
      for (size_t i = 0; i < ref.size(); ++i) {
        INFO("threads " << threads << ", tensor " << i);
        REQUIRE(equal_bits(got[i], ref[i]));
      }
    }
}

TEST_CASE("mlp: eval-mode logits are batch-invariant", "[mlp][deterministic]") {
  auto model = nn::make_mlp(7);
  {  // give BatchNorm non-trivial running statistics first
    model->train();
    NoGradGuard ng;
    model->forward(inputs(64, 9));
  }
  model->eval();
  NoGradGuard ng;
  Tensor batch = inputs(256, 11);
  Tensor all = model->forward(batch);
  auto allv = all.to_vector<float>();
  auto xv = batch.to_vector<float>();
  for (int64_t i : {0, 17, 255}) {
    Tensor one = Tensor::from_vector(std::vector<float>(xv.begin() + i * 784, xv.begin() + (i + 1) * 784), {1, 784});
    auto lv = model->forward(one).to_vector<float>();
    std::vector<float> row(allv.begin() + i * 10, allv.begin() + (i + 1) * 10);
    REQUIRE_BITWISE_EQUAL(lv, row);
  }
}

TEST_CASE("mlp: the train/eval mistake and its fix", "[mlp]") {
  auto model = nn::make_mlp(3);
  Tensor x = inputs(32, 13);
  NoGradGuard ng;
  auto state_before = model->state_dict();
  std::vector<Tensor> buffers_before;
  for (auto& kv : model->named_buffers()) buffers_before.push_back(kv.second.clone());

  // Mistake: "inference" left in train mode. Dropout draws a new mask on every call and
  // BatchNorm uses batch statistics and moves its running statistics.
  model->train();
  Tensor a = model->forward(x), b = model->forward(x);
  REQUIRE_FALSE(equal_bits(a, b));
  auto buffers_after = model->named_buffers();
  bool moved = false;
  for (size_t i = 0; i < buffers_before.size(); ++i) moved |= !equal_bits(buffers_after[i].second, buffers_before[i]);
  REQUIRE(moved);

  // Fix: eval() — the same input gives the same bits every time and nothing changes.
  model->eval();
  std::vector<Tensor> frozen;
  for (auto& kv : model->named_buffers()) frozen.push_back(kv.second.clone());
  Tensor c = model->forward(x), d = model->forward(x);
  REQUIRE(equal_bits(c, d));
  auto now = model->named_buffers();
  for (size_t i = 0; i < frozen.size(); ++i) REQUIRE(equal_bits(now[i].second, frozen[i]));
}
