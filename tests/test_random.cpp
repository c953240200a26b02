// Tensor-level random numbers: keyed fills are pure functions of (seed, stream, position).
// (The lab's stateful global generator, which they replace: tests/tools/test_lab_rng.cpp.)
#include <catch2/catch.hpp>

#include <cmath>

#include "base/parallel.h"
#include "core/random.h"
#include "test_util.h"

using namespace lockstep;

TEST_CASE("random: keyed fills depend only on (seed, stream, position)", "[random][deterministic]") {
  Tensor a = Tensor::empty({1000}), b = Tensor::empty({1000});
  fill_uniform(a, -1, 1, 5, stream_id("A"));
  {
    ThreadsGuard tg(3);
    fill_uniform(b, -1, 1, 5, stream_id("A"));
  }
  REQUIRE(equal_bits(a, b));
  // a window starting at position 100 is the tail of the same sequence
  Tensor tail = Tensor::empty({900});
  fill_uniform(tail, -1, 1, 5, stream_id("A"), 100);
  auto av = a.to_vector<float>();
  REQUIRE_BITWISE_EQUAL(tail.to_vector<float>(), std::vector<float>(av.begin() + 100, av.end()));
  // other seed, other stream: other numbers
  fill_uniform(b, -1, 1, 6, stream_id("A"));
  REQUIRE_FALSE(equal_bits(a, b));
  fill_uniform(b, -1, 1, 5, stream_id("B"));
  REQUIRE_FALSE(equal_bits(a, b));
  // float64 fills too
  Tensor d = Tensor::empty({10}, DType::f64);
  fill_normal(d, 0, 1, 5, 1);
  Tensor d2 = Tensor::empty({10}, DType::f64);
  fill_normal(d2, 0, 1, 5, 1);
  REQUIRE(equal_bits(d, d2));
}

TEST_CASE("random: drawing from stream A never changes stream B", "[random][deterministic]") {
  Generator g(9);
  Tensor b1 = Tensor::empty({64});
  fill_uniform(b1, 0, 1, g.seed(), stream_id("B"));
  Tensor big = Tensor::empty({100000});
  g.uniform_(big, 0, 1, stream_id("A"));  // many draws from A
  Tensor b2 = Tensor::empty({64});
  fill_uniform(b2, 0, 1, g.seed(), stream_id("B"));
  REQUIRE(equal_bits(b1, b2));
  REQUIRE(g.offset() == 100000);
}

TEST_CASE("random: moments of uniform and normal fills", "[random]") {
  const int64_t n = 1 << 20;
  Tensor u = Tensor::empty({n}, DType::f64);
  fill_uniform(u, 2.0, 4.0, 1, 2);
  Tensor z = Tensor::empty({n});
  fill_normal(z, 1.0, 3.0, 1, 3);
  double su = 0, su2 = 0, sz = 0, sz2 = 0, sz4 = 0, lo = 1e9, hi = -1e9;
  for (double x : u.to_vector<double>()) su += x, su2 += x * x, lo = std::min(lo, x), hi = std::max(hi, x);
  for (float xf : z.to_vector<float>()) {
    double x = (xf - 1.0) / 3.0;
    sz += x, sz2 += x * x, sz4 += x * x * x * x;
  }
  double mu = su / n, vu = su2 / n - mu * mu;
  // standard errors: uniform(2,4) mean sd 0.577/sqrt(n); 6 sigma bounds
  REQUIRE(std::fabs(mu - 3.0) < 6 * 0.5774 / std::sqrt(n));
  REQUIRE(std::fabs(vu - 1.0 / 3.0) < 6 * 0.2981 / std::sqrt(n));
  REQUIRE(lo >= 2.0);
  REQUIRE(hi < 4.0);
  REQUIRE(std::fabs(sz / n) < 6 / std::sqrt(n));
  REQUIRE(std::fabs(sz2 / n - 1.0) < 6 * std::sqrt(2.0) / std::sqrt(n));
  REQUIRE(std::fabs(sz4 / n - 3.0) < 6 * std::sqrt(96.0) / std::sqrt(n));
}
