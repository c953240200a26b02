// Autograd: gradients against central finite differences in float64, accumulation order,
// leaf accumulation across passes, NoGradGuard, errors.
#include <catch2/catch.hpp>

#include "core/autograd.h"
#include "base/parallel.h"
#include "gradcheck.h"
#include "test_util.h"

using namespace lockstep;
using lockstep_test::gradcheck;
using Catch::Contains;

namespace {
Tensor leaf64(const Shape& s, uint32_t seed, double lo = -1, double hi = 1) {
  Tensor t = Tensor::from_vector(lockstep_test::random_doubles(static_cast<size_t>(shape_numel(s)), seed, lo, hi), s);
  t.set_requires_grad(true);
  return t;
}
Tensor weights_like(const Tensor& t, uint32_t seed) {  // fixed random weights for a scalar objective
  return Tensor::from_vector(lockstep_test::random_doubles(static_cast<size_t>(t.numel()), seed), t.shape());
}
}  // namespace

TEST_CASE("autograd: matmul and linear against finite differences", "[autograd]") {
  Tensor a = leaf64({5, 7}, 1), b = leaf64({7, 3}, 2);
  Tensor w = weights_like(Tensor::zeros({5, 3}, DType::f64), 3);
  gradcheck([&](const std::vector<Tensor>& in) { return sum(mul(matmul(in[0], in[1]), w)); }, {a, b});
  Tensor at = leaf64({7, 5}, 4), bt = leaf64({3, 7}, 5);
  gradcheck([&](const std::vector<Tensor>& in) { return sum(mul(matmul(in[0], in[1], true, true), w)); }, {at, bt});
  Tensor x = leaf64({40, 6}, 6), lw = leaf64({4, 6}, 7), lb = leaf64({4}, 8);
  Tensor w2 = weights_like(Tensor::zeros({40, 4}, DType::f64), 9);
  gradcheck([&](const std::vector<Tensor>& in) { return sum(mul(linear(in[0], in[1], in[2]), w2)); }, {x, lw, lb});
}

TEST_CASE("autograd: elementwise, broadcasting, reductions, views", "[autograd]") {
  Tensor a = leaf64({4, 5}, 11), b = leaf64({5}, 12), c = leaf64({4, 1}, 13);
  Tensor pos = leaf64({4, 5}, 14, 0.5, 2.0);
  Tensor w = weights_like(a, 15);
  auto check = [&](const std::function<Tensor(const std::vector<Tensor>&)>& f, std::vector<Tensor> in) {
    gradcheck([&](const std::vector<Tensor>& v) { return sum(mul(f(v), w)); }, in);
  };
  check([](auto& v) { return add(v[0], v[1]); }, {a, b});
  check([](auto& v) { return sub(v[0], v[1]); }, {a, c});
  check([](auto& v) { return mul(v[0], v[1]); }, {a, b});
  check([](auto& v) { return div(v[0], v[1]); }, {pos, a});
  check([](auto& v) { return mul(v[0], 3.0); }, {a});
  check([](auto& v) { return add(v[0], -2.0); }, {a});
  check([](auto& v) { return neg(v[0]); }, {a});
  check([](auto& v) { return exp(v[0]); }, {a});
  check([](auto& v) { return log(v[0]); }, {pos});
  check([](auto& v) { return sqrt(v[0]); }, {pos});
  check([](auto& v) { return tanh(v[0]); }, {a});
  check([](auto& v) { return sigmoid(v[0]); }, {a});
  check([](auto& v) { return gelu(v[0]); }, {a});
  check([](auto& v) { return relu(v[0]); }, {a});  // random inputs are never exactly 0
  check([](auto& v) { return softmax(v[0]); }, {a});
  check([](auto& v) { return log_softmax(v[0]); }, {a});
  check([](auto& v) { return v[0].t().contiguous().t(); }, {a});
  check([](auto& v) { return v[0].reshape({5, 4}).reshape({4, 5}); }, {a});
  gradcheck([](auto& v) { return mean(v[0]); }, {a});
  gradcheck([&](auto& v) { return sum(mul(sum(v[0], 0, true), weights_like(b, 16).reshape({1, 5}))); }, {a});
  gradcheck([&](auto& v) { return sum(mul(mean(v[0], 1), weights_like(c, 17).reshape({4}))); }, {a});
}

TEST_CASE("autograd: a tensor used several times sums its contributions", "[autograd]") {
  Tensor x = Tensor::from_vector(std::vector<double>{1.5, -2.0}, {2});
  x.set_requires_grad(true);
  Tensor y = add(mul(x, x), mul(x, 3.0));  // dy/dx = 2x + 3
  sum(y).backward();
  REQUIRE(x.grad().to_vector<double>() == std::vector<double>{6.0, -1.0});
  // gradients accumulate across backward passes until zero_grad()
  sum(y).backward();
  REQUIRE(x.grad().to_vector<double>() == std::vector<double>{12.0, -2.0});
  x.zero_grad();
  REQUIRE_FALSE(x.grad().defined());
}

namespace {
// Keeps the address of the weight gradient that Linear's backward returns (no reference to
// the tensor itself, which would make it shared).
struct GradAddress : OpObserver {
  const void* dw = nullptr;
  void on_op(OpEvent& e) override {
    if (e.backward && std::string(e.op) == "linear") dw = e.outputs[1].data<float>();
  }
};
}  // namespace

TEST_CASE("autograd: a leaf's first gradient is its own: kept when fresh, copied when shared", "[autograd]") {
  // Linear's weight gradient is a fresh tensor that nothing else holds: it becomes .grad as is.
  Tensor x = Tensor::from_vector(lockstep_test::random_floats(8 * 5, 31), {8, 5});
  Tensor w = Tensor::from_vector(lockstep_test::random_floats(3 * 5, 32), {3, 5}).set_requires_grad(true);
  GradAddress seen;
  set_op_observer(&seen);
  sum(linear(x, w, Tensor())).backward();
  set_op_observer(nullptr);
  REQUIRE(seen.dw != nullptr);
  REQUIRE(static_cast<const void*>(w.grad().data<float>()) == seen.dw);
  // add's backward hands one tensor to both inputs: each leaf gets its own copy.
  Tensor a = Tensor::from_vector({1.f, 2.f}, {2}).set_requires_grad(true);
  Tensor b = Tensor::from_vector({3.f, 4.f}, {2}).set_requires_grad(true);
  sum(add(a, b)).backward();
  REQUIRE(a.grad().data<float>() != b.grad().data<float>());
  a.grad().data<float>()[0] = 7.f;
  REQUIRE(b.grad().to_vector<float>() == std::vector<float>{1.f, 1.f});
  // A leaf's own backward keeps a copy of the caller's gradient, which the caller still holds.
  Tensor c = Tensor::from_vector({1.f, 2.f}, {2}).set_requires_grad(true);
  Tensor seed = Tensor::from_vector({5.f, 6.f}, {2});
  c.backward(seed);
  seed.data<float>()[0] = 0.f;
  REQUIRE(c.grad().to_vector<float>() == std::vector<float>{5.f, 6.f});
}

TEST_CASE("autograd: gradients are bitwise reproducible for any thread count", "[autograd][deterministic]") {
  auto run = [](int threads) {
    ThreadsGuard tg(threads);
    Tensor x = Tensor::from_vector(lockstep_test::random_floats(300 * 200, 21), {300, 200});
    Tensor w = Tensor::from_vector(lockstep_test::random_floats(100 * 200, 22), {100, 200});
    Tensor b = Tensor::from_vector(lockstep_test::random_floats(100, 23), {100});
    w.set_requires_grad(true);
    b.set_requires_grad(true);
    Tensor h = tanh(linear(x, w, b));
    Tensor loss = mean(mul(h, h));
    loss.backward();
    // With dx wanted too, Linear's backward runs its two products side by side on 2 threads.
    Tensor x2 = x.clone().set_requires_grad(true), w2 = w.detach().set_requires_grad(true);
    Tensor h2 = tanh(linear(x2, w2, b));
    mean(mul(h2, h2)).backward();
    return std::vector<Tensor>{w.grad(), b.grad(), loss, x2.grad(), w2.grad()};
  };
  auto ref = run(1);
  for (int t : {2, 3, 8})
    for (int rep = 0; rep < 3; ++rep) {
      auto got = run(t);
      for (size_t i = 0; i < ref.size(); ++i) REQUIRE(equal_bits(got[i], ref[i]));
    }
}

TEST_CASE("autograd: NoGradGuard records nothing, errors are clear", "[autograd][errors]") {
  Tensor x = Tensor::ones({3});
  x.set_requires_grad(true);
  {
    NoGradGuard ng;
    Tensor y = mul(x, 2.0);
    REQUIRE_FALSE(y.requires_grad());
  }
  Tensor y = mul(x, 2.0);
  REQUIRE(y.requires_grad());
  REQUIRE_FALSE(y.is_leaf());
  REQUIRE_THROWS_WITH(y.backward(), Contains("[backward]") && Contains("one-element"));
  REQUIRE_THROWS_WITH(y.set_requires_grad(false), Contains("leaf"));
  REQUIRE_THROWS_WITH(Tensor::ones({2}).backward(), Contains("does not require grad"));
  REQUIRE_THROWS_WITH(Tensor::ones({2}, DType::i64).set_requires_grad(true), Contains("only float"));
  REQUIRE_FALSE(y.detach().requires_grad());
}
