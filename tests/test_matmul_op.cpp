// The matmul/linear ops: argument checks, float64, strided inputs, and the Tensor-level
// determinism guarantees (thread counts, batch invariance of linear).
#include <catch2/catch.hpp>

#include "core/autograd.h"
#include "base/mode.h"
#include "base/parallel.h"
#include "core/tensor.h"
#include "kernels/reduce_order.h"
#include "test_util.h"

using namespace lockstep;
using Catch::Contains;

namespace {
Tensor rand_t(int64_t r, int64_t c, uint32_t seed) {
  return Tensor::from_vector(lockstep_test::random_floats(static_cast<size_t>(r * c), seed), {r, c});
}
}  // namespace

TEST_CASE("matmul op: bad shapes, dtypes and devices throw clear errors", "[matmul][errors]") {
  Tensor a = Tensor::zeros({64, 128}), b = Tensor::zeros({64, 10});
  REQUIRE_THROWS_WITH(matmul(a, b), Contains("[matmul] a is 64x128, b is 64x10: inner dimensions differ"));
  REQUIRE_THROWS_WITH(matmul(a, Tensor::zeros({128})), Contains("[matmul]") && Contains("2-d"));
  REQUIRE_THROWS_WITH(matmul(a, Tensor::zeros({128, 3}, DType::f64)), Contains("dtypes differ"));
  REQUIRE_THROWS_WITH(matmul(Tensor::zeros({2, 2}, DType::i64), Tensor::zeros({2, 2}, DType::i64)),
                      Contains("float32 or float64"));
  Tensor x = Tensor::zeros({8, 64}), w = Tensor::zeros({10, 128});
  REQUIRE_THROWS_WITH(linear(x, w, Tensor()), Contains("[linear] input has 64 features, weight expects 128"));
  REQUIRE_THROWS_WITH(linear(x, Tensor::zeros({10, 64}), Tensor::zeros({9})), Contains("[linear] bias must have shape 10"));
  Tensor gw = Tensor::zeros({10, 63});
  REQUIRE_THROWS_WITH(linear_grad_weight(gw, Tensor::zeros({8, 10}), x, false),
                      Contains("[linear_grad_weight] grad_weight must be 10x64"));
}

TEST_CASE("matmul op: float32 and float64 against a double loop, with transposed views", "[matmul]") {
  const int64_t M = 17, K = 29, N = 13;
  Tensor a = rand_t(M, K, 1), b = rand_t(K, N, 2);
  auto av = a.to_vector<float>(), bv = b.to_vector<float>();
  std::vector<double> ref(M * N, 0.0);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j)
      for (int64_t k = 0; k < K; ++k) ref[i * N + j] += double(av[i * K + k]) * bv[k * N + j];
  auto c = matmul(a, b).to_vector<float>();
  REQUIRE_ALLCLOSE(c, ref, 1e-5, 1e-5);
  auto c64 = matmul(a.to(DType::f64), b.to(DType::f64)).to_vector<double>();
  REQUIRE_ALLCLOSE(c64, ref, 1e-12, 1e-12);
  // a transposed view is made contiguous and gives the same bits as the explicit flag
  Tensor at = a.t().contiguous();
  REQUIRE(equal_bits(matmul(at.t(), b), matmul(at, b, true, false)));
  REQUIRE(equal_bits(matmul(at.t(), b), matmul(a, b)));
}

TEST_CASE("linear op: x W^T + b, bias added after the sum", "[matmul]") {
  Tensor x = rand_t(5, 7, 3), w = rand_t(4, 7, 4), bias = rand_t(1, 4, 5).reshape({4});
  auto y = linear(x, w, bias).to_vector<float>();
  auto xv = x.to_vector<float>(), wv = w.to_vector<float>(), bv = bias.to_vector<float>();
  for (int64_t i = 0; i < 5; ++i)
    for (int64_t o = 0; o < 4; ++o) {
      float acc = 0.0f;
      for (int64_t k = 0; k < 7; ++k) acc = std::fma(xv[i * 7 + k], wv[o * 7 + k], acc);
      float expect = acc + bv[o];
      REQUIRE(std::memcmp(&y[i * 4 + o], &expect, 4) == 0);
    }
}

TEST_CASE("linear_grad_weight: batch order, accumulate adds to the old gradient", "[matmul][deterministic]") {
  const int64_t B = 100, out = 6, in = 5;  // 100 rows = 3 full chunks of 32 and one of 4
  Tensor dy = rand_t(B, out, 6), x = rand_t(B, in, 7);
  Tensor gw = Tensor::empty({out, in});
  linear_grad_weight(gw, dy, x, false);
  auto g = gw.to_vector<float>();
  auto dv = dy.to_vector<float>(), xv = x.to_vector<float>();
  for (int64_t o = 0; o < out; ++o)
    for (int64_t i = 0; i < in; ++i) {
      std::vector<float> partials;
      for (int64_t c0 = 0; c0 < B; c0 += kBatchChunk) {
        float acc = 0.0f;
        for (int64_t b = c0; b < std::min(B, c0 + kBatchChunk); ++b) acc = std::fma(dv[b * out + o], xv[b * in + i], acc);
        partials.push_back(acc);
      }
      float expect = tree_sum_inplace(partials.data(), static_cast<int64_t>(partials.size()));
      REQUIRE(std::memcmp(&g[o * in + i], &expect, 4) == 0);
    }
  Tensor gw2 = gw.clone();
  linear_grad_weight(gw2, dy, x, true);
  auto g2 = gw2.to_vector<float>();
  for (size_t k = 0; k < g.size(); ++k) REQUIRE(g2[k] == g[k] + g[k]);
}

TEST_CASE("linear op: same bits for any thread count and batch composition", "[matmul][deterministic]") {
  Tensor x = rand_t(512, 784, 8), w = rand_t(256, 784, 9), bias = rand_t(1, 256, 10).reshape({256});
  Tensor ref;
  {
    ThreadsGuard tg(1);
    ref = linear(x, w, bias);
  }
  for (int t : {2, 3, 8}) {
    ThreadsGuard tg(t);
    REQUIRE(equal_bits(linear(x, w, bias), ref));
  }
  // sample 300 alone and inside batches of 7 and 512 gives the same bits
  auto refv = ref.to_vector<float>();
  std::vector<float> row300(refv.begin() + 300 * 256, refv.begin() + 301 * 256);
  auto xv = x.to_vector<float>();
  Tensor alone = Tensor::from_vector(std::vector<float>(xv.begin() + 300 * 784, xv.begin() + 301 * 784), {1, 784});
  REQUIRE_BITWISE_EQUAL(linear(alone, w, bias).to_vector<float>(), row300);
  Tensor seven = Tensor::from_vector(std::vector<float>(xv.begin() + 296 * 784, xv.begin() + 303 * 784), {7, 784});
  auto y7 = linear(seven, w, bias).to_vector<float>();
  REQUIRE_BITWISE_EQUAL(std::vector<float>(y7.begin() + 4 * 256, y7.begin() + 5 * 256), row300);
}

TEST_CASE("matmul op: fast mode stays within tolerance of deterministic", "[matmul][fast]") {
  Tensor a = rand_t(200, 300, 11), b = rand_t(300, 150, 12);
  Tensor det = matmul(a, b);
  ModeGuard g(Mode::fast);
  Tensor fast = matmul(a, b);
  // |error| <= K * eps * sum|a||b| bound; inputs in [-1,1): sum|a||b| <= K
  REQUIRE_ALLCLOSE(fast.to_vector<float>(), det.to_vector<float>(), 0.0, 300 * 300 * 1.2e-7);
  if (!equal_bits(fast, det)) WARN("fast-mode matmul differs in its bits from deterministic mode (expected)");
}

TEST_CASE("linear and matmul backward: a gradient only for inputs that require grad, same bits",
          "[matmul][deterministic]") {
  // Backward skips the gradients of inputs that did not require grad when the op ran (the
  // first layer's dx); the others must be the bits of the full backward.
  const Tensor x0 = rand_t(40, 24, 1), w0 = rand_t(16, 24, 2), b0 = rand_t(1, 16, 3).reshape({16});
  auto run = [&](bool x_grad, bool b_grad) {
    Tensor x = x0.clone().set_requires_grad(x_grad), w = w0.clone().set_requires_grad(true);
    Tensor b = b0.clone().set_requires_grad(b_grad);
    sum(mul(linear(x, w, b), linear(x, w, b))).backward();
    return std::vector<Tensor>{x.grad(), w.grad(), b.grad()};
  };
  const std::vector<Tensor> full = run(true, true), no_x = run(false, true), no_b = run(true, false);
  REQUIRE_FALSE(no_x[0].defined());
  REQUIRE_FALSE(no_b[2].defined());
  REQUIRE_BITWISE_EQUAL(no_x[1].to_vector<float>(), full[1].to_vector<float>());
  REQUIRE_BITWISE_EQUAL(no_x[2].to_vector<float>(), full[2].to_vector<float>());
  REQUIRE_BITWISE_EQUAL(no_b[0].to_vector<float>(), full[0].to_vector<float>());
  REQUIRE_BITWISE_EQUAL(no_b[1].to_vector<float>(), full[1].to_vector<float>());

  Tensor a = x0.clone(), m = w0.clone().set_requires_grad(true);  // a needs no gradient
  sum(matmul(a, m, false, true)).backward();
  Tensor a2 = x0.clone().set_requires_grad(true), m2 = w0.clone().set_requires_grad(true);
  sum(matmul(a2, m2, false, true)).backward();
  REQUIRE_FALSE(a.grad().defined());
  REQUIRE_BITWISE_EQUAL(m.grad().to_vector<float>(), m2.grad().to_vector<float>());
}
