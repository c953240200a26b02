// clip_grad_norm_: the norm kernels reproduce sum_cpu's contiguous order, the total and the
// clipped gradients follow the documented float order, clipping lands on the threshold and
// does nothing below it, and the bits do not depend on threads or SIMD.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>

#include "base/parallel.h"
#include "base/simd.h"
#include "kernels/optim.h"
#include "kernels/reduce.h"
#include "optim/clip.h"
#include "test_util.h"

using namespace lockstep;
using Catch::Contains;

namespace {

constexpr double kEps32 = 1.1920928955078125e-7;

Tensor with_grad(const std::vector<float>& values, const std::vector<float>& grad) {
  Tensor p = Tensor::from_vector(values, {static_cast<int64_t>(values.size())});
  p.set_requires_grad(true);
  p.set_grad(Tensor::from_vector(grad, {static_cast<int64_t>(grad.size())}));
  return p;
}

std::vector<Tensor> three_params(float scale) {
  std::vector<Tensor> ps;
  const size_t sizes[] = {5000, 17, 9000};
  for (size_t i = 0; i < 3; ++i)
    ps.push_back(with_grad(std::vector<float>(sizes[i], 0.f),
                           lockstep_test::random_floats(sizes[i], 60 + static_cast<uint32_t>(i), -scale, scale)));
  return ps;
}

double norm2_ref(const std::vector<Tensor>& ps) {
  double s = 0;
  for (auto& p : ps)
    for (float g : p.grad().to_vector<float>()) s += static_cast<double>(g) * g;
  return std::sqrt(s);
}

}  // namespace

TEST_CASE("clip: norm kernels are sum_cpu over the squares / absolute values", "[optim][deterministic]") {
  for (int64_t n : {0, 1, 31, 4095, 4096, 4097, 100003}) {
    INFO("n = " << n);
    const std::vector<float> x = lockstep_test::random_floats(static_cast<size_t>(n), 7, -3.f, 3.f);
    std::vector<float> sq(x.size()), ab(x.size());
    for (size_t i = 0; i < x.size(); ++i) sq[i] = x[i] * x[i], ab[i] = std::fabs(x[i]);
    float want_sq = 0, want_abs = 0, want_max = 0;
    sum_cpu(Exec::current(), &want_sq, sq.data(), n);
    sum_cpu(Exec::current(), &want_abs, ab.data(), n);
    for (float a : ab) want_max = std::max(want_max, a);
    for (bool simd : {false, true})
      for (int threads : {1, 2, 3, 8}) {
        const Exec ex{Mode::deterministic, simd ? simd_level_available() : SimdLevel::scalar};
        ThreadsGuard tg(threads);
        float got_sq = -1, got_abs = -1, got_max = -1;
        norm_reduce_cpu(ex, &got_sq, x.data(), n, NormKind::sum_squares);
        norm_reduce_cpu(ex, &got_abs, x.data(), n, NormKind::sum_abs);
        norm_reduce_cpu(ex, &got_max, x.data(), n, NormKind::max_abs);
        INFO("simd " << simd << ", threads " << threads);
        REQUIRE(std::memcmp(&got_sq, &want_sq, 4) == 0);
        REQUIRE(std::memcmp(&got_abs, &want_abs, 4) == 0);
        REQUIRE(got_max == want_max);
      }
  }
  std::vector<float> x(9000, 1.f);
  x[8000] = std::nanf("");
  float m = 0;
  norm_reduce_cpu(Exec::current(), &m, x.data(), 9000, NormKind::max_abs);
  uint32_t bits;
  std::memcpy(&bits, &m, 4);
  REQUIRE(bits == 0x7fc00000u);  // the canonical NaN, whichever thread saw it
}

TEST_CASE("clip: above the threshold the norm lands on max_norm", "[optim]") {
  std::vector<Tensor> ps = three_params(2.f);
  const double total = norm2_ref(ps);
  const double max_norm = 0.25 * total;
  std::vector<std::vector<float>> before;
  for (auto& p : ps) before.push_back(p.grad().to_vector<float>());
  const double returned = optim::clip_grad_norm_(ps, max_norm);
  REQUIRE(returned == Approx(total).epsilon(4 * kEps32));
  // The documented float order: coef = (1 / (total + 1e-6)) * max_norm, then g * coef.
  const float t = static_cast<float>(returned);
  const float coef = (1.0f / (t + static_cast<float>(1e-6))) * static_cast<float>(max_norm);
  for (size_t i = 0; i < ps.size(); ++i) {
    std::vector<float> want = before[i];
    for (auto& g : want) g = g * coef;
    REQUIRE_BITWISE_EQUAL(ps[i].grad().to_vector<float>(), want);
  }
  const double after = norm2_ref(ps);
  REQUIRE(std::fabs(after - max_norm) <= max_norm * (1e-6 / total + 8 * kEps32));
  REQUIRE(after < 0.26 * total);
}

TEST_CASE("clip: below the threshold nothing changes", "[optim]") {
  std::vector<Tensor> ps = three_params(0.01f);
  const double total = norm2_ref(ps);
  std::vector<std::vector<float>> before;
  for (auto& p : ps) before.push_back(p.grad().to_vector<float>());
  REQUIRE(optim::clip_grad_norm_(ps, 2 * total) == Approx(total).epsilon(4 * kEps32));
  for (size_t i = 0; i < ps.size(); ++i) REQUIRE_BITWISE_EQUAL(ps[i].grad().to_vector<float>(), before[i]);
}

TEST_CASE("clip: 1 and inf norms, skipped and missing gradients", "[optim]") {
  std::vector<Tensor> ps = three_params(1.f);
  Tensor no_grad = Tensor::zeros({4});
  no_grad.set_requires_grad(true);
  ps.insert(ps.begin() + 1, no_grad);  // skipped
  double l1 = 0, linf = 0;
  for (auto& p : ps)
    if (p.grad().defined())
      for (float g : p.grad().to_vector<float>()) l1 += std::fabs(g), linf = std::max(linf, std::fabs(static_cast<double>(g)));
  REQUIRE(optim::clip_grad_norm_(ps, 1e9, 1.0) == Approx(l1).epsilon(64 * kEps32));
  const double inf = std::numeric_limits<double>::infinity();
  REQUIRE(optim::clip_grad_norm_(ps, 0.5, inf) == linf);
  double after = 0;
  for (auto& p : ps)
    if (p.grad().defined())
      for (float g : p.grad().to_vector<float>()) after = std::max(after, std::fabs(static_cast<double>(g)));
  REQUIRE(after == Approx(0.5 * linf / (linf + 1e-6)).epsilon(8 * kEps32));
  REQUIRE(optim::clip_grad_norm_({no_grad}, 1.0) == 0.0);  // nothing to clip
}

TEST_CASE("clip: total and clipped gradients are bitwise identical across threads and SIMD", "[optim][deterministic]") {
  std::vector<float> want_grads;
  float want_total = 0;
  for (bool simd : {false, true})
    for (int threads : {1, 2, 3, 8}) {
      SimdGuard sg(simd);
      ThreadsGuard tg(threads);
      std::vector<Tensor> ps = three_params(3.f);
      const float total = static_cast<float>(optim::clip_grad_norm_(ps, 1.0));
      std::vector<float> grads;
      for (auto& p : ps) {
        auto g = p.grad().to_vector<float>();
        grads.insert(grads.end(), g.begin(), g.end());
      }
      if (want_grads.empty()) {
        want_grads = grads, want_total = total;
        continue;
      }
      INFO("simd " << simd << ", threads " << threads);
      REQUIRE(std::memcmp(&total, &want_total, 4) == 0);
      REQUIRE_BITWISE_EQUAL(grads, want_grads);
    }
}

TEST_CASE("clip: non-finite norms and bad arguments", "[optim]") {
  std::vector<float> g = {1.f, std::nanf(""), 2.f};
  Tensor p = with_grad({0.f, 0.f, 0.f}, g);
  REQUIRE_THROWS_WITH(optim::clip_grad_norm_({p}, 1.0, 2.0, true), Contains("non-finite"));
  REQUIRE(std::isnan(p.grad().to_vector<float>()[1]));
  REQUIRE(p.grad().to_vector<float>()[0] == 1.f);  // unchanged after the error
  REQUIRE(std::isnan(optim::clip_grad_norm_({p}, 1.0)));
  REQUIRE(std::isnan(p.grad().to_vector<float>()[0]));  // PyTorch: a NaN coefficient spreads
  Tensor q = with_grad({0.f}, {1.f});
  REQUIRE_THROWS_WITH(optim::clip_grad_norm_({q}, 1.0, 3.0), Contains("norm_type 1, 2 or inf, got 3"));
  Tensor r = Tensor::from_vector({0.0}, {1});
  r.set_requires_grad(true);
  r.set_grad(Tensor::from_vector({1.0}, {1}));
  REQUIRE_THROWS_WITH(optim::clip_grad_norm_({q, r}, 1.0), Contains("one dtype"));
}
