// CUDA elementwise, unary and softmax ops against the CPU, bit for bit, through the op
// front end (so the dispatch is tested too): broadcasting boxes of awkward shapes, every
// unary op including the project's own exp/log/tanh/sigmoid/gelu, both float types.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "cuda_test_util.h"

using namespace lockstep;
using namespace lockstep_cuda_test;

namespace {

Tensor rand_tensor(const Shape& s, uint32_t seed, DType dt = DType::f32, float lo = -3.f, float hi = 3.f) {
  const int64_t n = shape_numel(s);
  if (dt == DType::f64) return Tensor::from_vector(lockstep_test::random_doubles(static_cast<size_t>(n), seed, lo, hi), s);
  return Tensor::from_vector(lockstep_test::random_floats(static_cast<size_t>(n), seed, lo, hi), s);
}

Tensor on_gpu(const Tensor& t) { return t.to(Device::cuda); }

const Shape kPairs[][2] = {{{17, 129}, {129}}, {{3, 1, 7}, {1, 5, 7}}, {{1000}, {}}, {{7}, {7}},
                           {{2, 3, 4, 5}, {3, 1, 5}}, {{129, 1}, {1, 33}}};

}  // namespace

TEST_CASE("cuda elementwise: binary ops with broadcasting equal the CPU", "[cuda][elementwise][deterministic]") {
  using BinFn = Tensor (*)(const Tensor&, const Tensor&);
  const BinFn ops[] = {add, sub, mul, div, maximum, minimum};
  uint32_t seed = 1;
  for (DType dt : {DType::f32, DType::f64})
    for (auto& pr : kPairs) {
      Tensor a = rand_tensor(pr[0], seed++, dt), b = rand_tensor(pr[1], seed++, dt);
      for (BinFn f : ops) {
        INFO(shape_str(pr[0]) << " with " << shape_str(pr[1]) << " " << dtype_name(dt));
        REQUIRE(equal_bits(f(a, b), f(on_gpu(a), on_gpu(b))));
        REQUIRE(equal_bits(f(b, a), f(on_gpu(b), on_gpu(a))));
      }
      REQUIRE(equal_bits(axpy(0.37, a, b), axpy(0.37, on_gpu(a), on_gpu(b))));
      REQUIRE(equal_bits(add(a, 2.5), add(on_gpu(a), 2.5)));
      REQUIRE(equal_bits(mul(a, -1.25), mul(on_gpu(a), -1.25)));
    }
}

TEST_CASE("cuda elementwise: comparisons and where equal the CPU", "[cuda][elementwise][deterministic]") {
  using BinFn = Tensor (*)(const Tensor&, const Tensor&);
  const BinFn cmps[] = {gt, lt, ge, le, eq, ne};
  Tensor a = rand_tensor({17, 129}, 5), b = rand_tensor({129}, 6);
  // equal values and a NaN, so eq/ne and the NaN rules are exercised
  std::vector<float> av = a.to_vector<float>();
  av[3] = b.to_vector<float>()[3];
  av[4] = std::numeric_limits<float>::quiet_NaN();
  a = Tensor::from_vector(av, {17, 129});
  for (BinFn f : cmps) REQUIRE(equal_bits(f(a, b), f(on_gpu(a), on_gpu(b))));
  Tensor cond = gt(a, b);
  REQUIRE(equal_bits(where(cond, a, b), where(on_gpu(cond), on_gpu(a), on_gpu(b))));
  Tensor labels = Tensor::from_vector(std::vector<int64_t>{1, 2, 3, 4}, {4});
  Tensor other = Tensor::from_vector(std::vector<int64_t>{1, 0, 3, 5}, {4});
  REQUIRE(equal_bits(eq(labels, other), eq(on_gpu(labels), on_gpu(other))));
}

TEST_CASE("cuda elementwise: every unary op equals the CPU", "[cuda][elementwise][deterministic]") {
  using UnFn = Tensor (*)(const Tensor&);
  const UnFn ops[] = {neg, abs, sqrt, relu, exp, log, tanh, sigmoid, gelu};
  for (DType dt : {DType::f32, DType::f64})
    for (int64_t n : {1, 3, 7, 17, 129, 1000, 100003}) {
      Tensor x = rand_tensor({n}, static_cast<uint32_t>(n), dt, -20.f, 20.f);
      Tensor pos = rand_tensor({n}, static_cast<uint32_t>(n) + 7, dt, 0.f, 100.f);
      for (UnFn f : ops) {
        const bool positive_only = f == static_cast<UnFn>(sqrt) || f == static_cast<UnFn>(log);
        const Tensor& in = positive_only ? pos : x;
        INFO("n " << n << " " << dtype_name(dt));
        REQUIRE(equal_bits(f(in), f(on_gpu(in))));
      }
    }
}

TEST_CASE("cuda elementwise: special values through exp, log and tanh", "[cuda][elementwise][deterministic]") {
  const float inf = std::numeric_limits<float>::infinity();
  Tensor x = Tensor::from_vector(std::vector<float>{0.f, -0.f, inf, -inf, 88.7f, -103.9f, 1e-40f, -1e-40f, 1.f}, {9});
  REQUIRE(equal_bits(exp(x), exp(on_gpu(x))));
  REQUIRE(equal_bits(tanh(x), tanh(on_gpu(x))));
  REQUIRE(equal_bits(log(abs(x)), log(abs(on_gpu(x)))));
}

TEST_CASE("cuda softmax: softmax and log_softmax rows equal the CPU", "[cuda][softmax][deterministic]") {
  const Shape shapes[] = {{1, 1}, {3, 7}, {129, 10}, {2, 5000}, {17, 1000}, {4, 12289}};
  uint32_t seed = 3;
  for (DType dt : {DType::f32, DType::f64})
    for (const Shape& s : shapes) {
      Tensor x = rand_tensor(s, seed++, dt, -30.f, 30.f);
      INFO(shape_str(s) << " " << dtype_name(dt));
      REQUIRE(equal_bits(softmax(x), softmax(on_gpu(x))));
      REQUIRE(equal_bits(log_softmax(x), log_softmax(on_gpu(x))));
    }
  // -inf entries and ties for the row max
  const float inf = std::numeric_limits<float>::infinity();
  Tensor t = Tensor::from_vector(std::vector<float>{-inf, 1.f, 1.f, -2.f, 3.f, -inf, 3.f, 0.f}, {2, 4});
  REQUIRE(equal_bits(softmax(t), softmax(on_gpu(t))));
  REQUIRE(equal_bits(log_softmax(t), log_softmax(on_gpu(t))));
}
