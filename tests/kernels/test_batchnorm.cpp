// BatchNorm1d kernels (kernels/batchnorm.h): the documented float order written out here
// with chunk partials and tree_sum_inplace (bitwise), a float64 reference (tolerance),
// central finite differences in float64 for both modes, PyTorch's running-stat rule on a
// hand example, and the same bits for every thread count.
#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "base/parallel.h"
#include "base/simd.h"
#include "kernels/batchnorm.h"
#include "kernels/reduce_order.h"
#include "test_util.h"

using namespace lockstep;
using lockstep_test::random_doubles;
using lockstep_test::random_floats;

namespace {

// Batch order over rows 0 .. N-1 of term(r): chunks of kBatchChunk rows accumulated from +0
// by step(acc, r), then the chunk partials combined by tree_sum_inplace.
template <typename Step>
float batch_order(int64_t N, const Step& step) {
  std::vector<float> part;
  for (int64_t r0 = 0; r0 < N; r0 += kBatchChunk) {
    float acc = 0.0f;
    for (int64_t r = r0; r < std::min(N, r0 + kBatchChunk); ++r) acc = step(acc, r);
    part.push_back(acc);
  }
  return part.empty() ? 0.0f : tree_sum_inplace(part.data(), static_cast<int64_t>(part.size()));
}

struct Ref {
  std::vector<float> y, mean, rstd, rm, rv;
};

// The header's forward (training), written as plain loops in its exact order.
Ref reference_train(const std::vector<float>& x, const std::vector<float>& gamma, const std::vector<float>& beta,
                    std::vector<float> rm, std::vector<float> rv, int64_t N, int64_t C, float eps, float mom) {
  Ref o{std::vector<float>(N * C), std::vector<float>(C), std::vector<float>(C), rm, rv};
  const float Nf = static_cast<float>(N), N1 = static_cast<float>(N - 1);
  for (int64_t c = 0; c < C; ++c) {
    const float s1 = batch_order(N, [&](float acc, int64_t r) { return acc + x[r * C + c]; });
    const float m = s1 / Nf;
    const float s2 = batch_order(N, [&](float acc, int64_t r) {
      const float d = x[r * C + c] - m;
      return std::fma(d, d, acc);
    });
    const float var = s2 / Nf;
    const float rs = 1.0f / std::sqrt(var + eps);
    o.mean[c] = m, o.rstd[c] = rs;
    const float a = 1.0f - mom;
    const float pm = a * rm[c], qm = mom * m;
    o.rm[c] = pm + qm;
    const float vu = s2 / N1;
    const float pv = a * rv[c], qv = mom * vu;
    o.rv[c] = pv + qv;
    for (int64_t r = 0; r < N; ++r) {
      const float xhat = (x[r * C + c] - m) * rs;
      const float t = xhat * gamma[c];
      o.y[r * C + c] = t + beta[c];
    }
  }
  return o;
}

// The header's backward (training), in its exact order: dx, dgamma, dbeta.
void reference_backward(std::vector<float>& dx, std::vector<float>& dg, std::vector<float>& db,
                        const std::vector<float>& dy, const std::vector<float>& x, const Ref& f,
                        const std::vector<float>& gamma, int64_t N, int64_t C) {
  const float Nf = static_cast<float>(N);
  for (int64_t c = 0; c < C; ++c) {
    const float m = f.mean[c], rs = f.rstd[c];
    db[c] = batch_order(N, [&](float acc, int64_t r) { return acc + dy[r * C + c]; });
    dg[c] = batch_order(N, [&](float acc, int64_t r) {
      const float xhat = (x[r * C + c] - m) * rs;
      return std::fma(dy[r * C + c], xhat, acc);
    });
    const float s = rs * gamma[c], a1 = db[c] / Nf, a2 = dg[c] / Nf;
    for (int64_t r = 0; r < N; ++r) {
      const float xhat = (x[r * C + c] - m) * rs;
      const float u = dy[r * C + c] - a1;
      const float v = xhat * a2;
      dx[r * C + c] = (u - v) * s;
    }
  }
}

// sum of y * R over all elements, for the finite-difference checks (float64).
double weighted(const std::vector<double>& y, const std::vector<double>& R) {
  double s = 0;
  for (size_t i = 0; i < y.size(); ++i) s += y[i] * R[i];
  return s;
}

}  // namespace

TEST_CASE("batchnorm: training forward and backward follow the documented order bit for bit",
          "[layers][batchnorm]") {
  // 203 rows: 7 chunks (an odd count, so the tree carries a partial up), the last one short
  for (int64_t N : {2, 31, 32, 33, 203}) {
    const int64_t C = 5;
    INFO("N = " << N);
    std::vector<float> x = random_floats(N * C, 1, -3.f, 5.f), gamma = random_floats(C, 2, 0.5f, 2.f),
                       beta = random_floats(C, 3), rm = random_floats(C, 4), rv = random_floats(C, 5, 0.5f, 2.f),
                       dy = random_floats(N * C, 6);
    const float eps = 1e-5f, mom = 0.1f;
    Ref ref = reference_train(x, gamma, beta, rm, rv, N, C, eps, mom);
    std::vector<float> y(N * C), mean(C), rstd(C);
    batchnorm_forward_cpu(Exec::current(), y.data(), mean.data(), rstd.data(), rm.data(), rv.data(), x.data(),
                          gamma.data(), beta.data(), N, C, true, eps, mom);
    REQUIRE_BITWISE_EQUAL(mean, ref.mean);
    REQUIRE_BITWISE_EQUAL(rstd, ref.rstd);
    REQUIRE_BITWISE_EQUAL(y, ref.y);
    REQUIRE_BITWISE_EQUAL(rm, ref.rm);
    REQUIRE_BITWISE_EQUAL(rv, ref.rv);

    std::vector<float> dx(N * C), dg(C), db(C), rdx(N * C), rdg(C), rdb(C);
    batchnorm_backward_cpu(Exec::current(), dx.data(), dg.data(), db.data(), dy.data(), x.data(), mean.data(),
                           rstd.data(), gamma.data(), N, C, true);
    reference_backward(rdx, rdg, rdb, dy, x, ref, gamma, N, C);
    REQUIRE_BITWISE_EQUAL(db, rdb);
    REQUIRE_BITWISE_EQUAL(dg, rdg);
    REQUIRE_BITWISE_EQUAL(dx, rdx);
  }
}

TEST_CASE("batchnorm: float32 matches a float64 reference", "[layers][batchnorm]") {
  const int64_t N = 300, C = 7;
  // an offset large against the spread, where a one-pass variance would lose digits
  std::vector<float> x = random_floats(N * C, 11, 99.f, 101.f), gamma = random_floats(C, 12, 0.5f, 2.f),
                     beta = random_floats(C, 13);
  const double eps = 1e-5;
  std::vector<float> y(N * C), mean(C), rstd(C);
  batchnorm_forward_cpu<float>(Exec::current(), y.data(), mean.data(), rstd.data(), nullptr, nullptr, x.data(),
                               gamma.data(), beta.data(), N, C, true, 1e-5f, 0.1f);
  std::vector<double> ry(N * C), rmean(C), rrstd(C);
  for (int64_t c = 0; c < C; ++c) {
    double s = 0, q = 0;
    for (int64_t r = 0; r < N; ++r) s += x[r * C + c];
    rmean[c] = s / N;
    for (int64_t r = 0; r < N; ++r) q += (x[r * C + c] - rmean[c]) * (x[r * C + c] - rmean[c]);
    rrstd[c] = 1.0 / std::sqrt(q / N + eps);
    for (int64_t r = 0; r < N; ++r) ry[r * C + c] = (x[r * C + c] - rmean[c]) * rrstd[c] * gamma[c] + beta[c];
  }
  REQUIRE_ALLCLOSE(mean, rmean, 1e-6, 0);
  REQUIRE_ALLCLOSE(rstd, rrstd, 1e-5, 0);
  // the float mean is ~5e-6 off at 100 (sums near 3e4), and x - mean carries that error
  REQUIRE_ALLCLOSE(y, ry, 1e-4, 1e-4);
}

TEST_CASE("batchnorm: running statistics follow PyTorch on a hand example", "[layers][batchnorm]") {
  // feature 0: 1 2 3 4 -> mean 2.5, biased var 1.25, unbiased var 5/3
  // feature 1: 2 2 2 2 -> mean 2,   var 0
  const std::vector<float> x = {1, 2, 2, 2, 3, 2, 4, 2};
  std::vector<float> rm = {0.0f, 1.0f}, rv = {1.0f, 1.0f}, y(8), mean(2), rstd(2);
  batchnorm_forward_cpu<float>(Exec::current(), y.data(), mean.data(), rstd.data(), rm.data(), rv.data(), x.data(),
                               nullptr, nullptr, 4, 2, true, 1e-5f, 0.1f);
  // torch: running_mean = 0.9 * running_mean + 0.1 * mean, running_var likewise with the
  // unbiased variance; values computed by hand
  REQUIRE(rm[0] == Approx(0.25).epsilon(1e-7));
  REQUIRE(rm[1] == Approx(0.9 + 0.2).epsilon(1e-7));
  REQUIRE(rv[0] == Approx(0.9 + 0.1 * 5.0 / 3.0).epsilon(1e-7));
  REQUIRE(rv[1] == Approx(0.9).epsilon(1e-7));
  REQUIRE(mean[0] == 2.5f);
  REQUIRE(rstd[0] == Approx(1.0 / std::sqrt(1.25 + 1e-5)).epsilon(1e-7));
  REQUIRE(rstd[1] == Approx(1.0 / std::sqrt(1e-5)).epsilon(1e-6));
  REQUIRE(y[0] == Approx(-1.5 / std::sqrt(1.25 + 1e-5)).epsilon(1e-6));
  REQUIRE(y[1] == 0.0f);
  // a second step with the same batch moves the running stats again by the same rule
  batchnorm_forward_cpu<float>(Exec::current(), y.data(), mean.data(), rstd.data(), rm.data(), rv.data(), x.data(),
                               nullptr, nullptr, 4, 2, true, 1e-5f, 0.1f);
  REQUIRE(rm[0] == Approx(0.9 * 0.25 + 0.25).epsilon(1e-6));
  REQUIRE(rv[1] == Approx(0.81).epsilon(1e-6));

  SECTION("eval mode normalises with the running stats and leaves them alone") {
    const std::vector<float> rm0 = rm, rv0 = rv;
    const std::vector<float> g = {2.0f, 3.0f}, b = {0.5f, -1.0f};
    batchnorm_forward_cpu(Exec::current(), y.data(), mean.data(), rstd.data(), rm.data(), rv.data(), x.data(), g.data(),
                          b.data(), 4, 2, false, 1e-5f, 0.1f);
    REQUIRE_BITWISE_EQUAL(rm, rm0);
    REQUIRE_BITWISE_EQUAL(rv, rv0);
    for (int64_t r = 0; r < 4; ++r)
      for (int64_t c = 0; c < 2; ++c) {
        const double e = (x[r * 2 + c] - rm0[c]) / std::sqrt(rv0[c] + 1e-5) * g[c] + b[c];
        REQUIRE(y[r * 2 + c] == Approx(e).epsilon(1e-6).margin(1e-6));
      }
  }
  SECTION("var + eps == 0 gives rstd 0 (PyTorch's InvStd), not inf") {
    batchnorm_forward_cpu<float>(Exec::current(), y.data(), mean.data(), rstd.data(), nullptr, nullptr, x.data(),
                                 nullptr, nullptr, 4, 2, true, 0.0f, 0.1f);
    REQUIRE(rstd[1] == 0.0f);
    REQUIRE(y[1] == 0.0f);
  }
}

TEST_CASE("batchnorm: training needs more than one row", "[layers][batchnorm]") {
  REQUIRE_THROWS_AS(batchnorm_check_train(1, 8), std::invalid_argument);
  REQUIRE_THROWS_WITH(batchnorm_check_train(1, 8), Catch::Contains("more than 1 value per channel"));
  REQUIRE_NOTHROW(batchnorm_check_train(2, 8));
}

TEST_CASE("batchnorm: float64 gradients match finite differences", "[layers][batchnorm]") {
  const int64_t N = 37, C = 3;  // two chunks
  const double h = 1e-6, eps = 1e-5;
  std::vector<double> x = random_doubles(N * C, 21, -2.0, 3.0), gamma = random_doubles(C, 22, 0.5, 2.0),
                      beta = random_doubles(C, 23), R = random_doubles(N * C, 24);
  std::vector<double> rm = random_doubles(C, 25), rv = random_doubles(C, 26, 0.5, 2.0);
  for (bool training : {true, false}) {
    INFO((training ? "training" : "eval"));
    // L(x, gamma, beta) = sum(y * R); backward with dy = R gives its gradients
    auto loss = [&](const std::vector<double>& xx, const std::vector<double>& gg, const std::vector<double>& bb) {
      std::vector<double> y(N * C), m(C), s(C), rm_copy(rm), rv_copy(rv);
      batchnorm_forward_cpu(Exec::current(), y.data(), m.data(), s.data(), training ? nullptr : rm_copy.data(),
                            training ? nullptr : rv_copy.data(), xx.data(), gg.data(), bb.data(), N, C, training, eps,
                            0.1);
      return weighted(y, R);
    };
    std::vector<double> y(N * C), m(C), s(C), rm_copy(rm), rv_copy(rv);
    batchnorm_forward_cpu(Exec::current(), y.data(), m.data(), s.data(), training ? nullptr : rm_copy.data(),
                          training ? nullptr : rv_copy.data(), x.data(), gamma.data(), beta.data(), N, C, training, eps,
                          0.1);
    std::vector<double> dx(N * C), dg(C), db(C);
    batchnorm_backward_cpu(Exec::current(), dx.data(), dg.data(), db.data(), R.data(), x.data(), m.data(), s.data(),
                           gamma.data(), N, C, training);
    auto fd = [&](std::vector<double>& v, int64_t i, const std::function<double()>& f) {
      const double saved = v[i];
      v[i] = saved + h;
      const double fp = f();
      v[i] = saved - h;
      const double fm = f();
      v[i] = saved;
      return (fp - fm) / (2 * h);
    };
    std::vector<double> ndx(N * C), ndg(C), ndb(C);
    auto f = [&] { return loss(x, gamma, beta); };
    for (int64_t i = 0; i < N * C; ++i) ndx[i] = fd(x, i, f);
    for (int64_t c = 0; c < C; ++c) ndg[c] = fd(gamma, c, f), ndb[c] = fd(beta, c, f);
    REQUIRE_ALLCLOSE(dx, ndx, 1e-6, 1e-8);
    REQUIRE_ALLCLOSE(dg, ndg, 1e-6, 1e-8);
    REQUIRE_ALLCLOSE(db, ndb, 1e-6, 1e-8);
  }
  SECTION("without affine parameters the gradient is that of gamma = 1, beta = 0") {
    std::vector<double> ones(C, 1.0), zeros(C, 0.0);
    std::vector<double> y1(N * C), y2(N * C), m(C), s(C), dx1(N * C), dx2(N * C);
    batchnorm_forward_cpu<double>(Exec::current(), y1.data(), m.data(), s.data(), nullptr, nullptr, x.data(), nullptr,
                                  nullptr, N, C, true, eps, 0.1);
    batchnorm_forward_cpu<double>(Exec::current(), y2.data(), m.data(), s.data(), nullptr, nullptr, x.data(),
                                  ones.data(), zeros.data(), N, C, true, eps, 0.1);
    REQUIRE_BITWISE_EQUAL(y1, y2);
    batchnorm_backward_cpu<double>(Exec::current(), dx1.data(), nullptr, nullptr, R.data(), x.data(), m.data(),
                                   s.data(), nullptr, N, C, true);
    batchnorm_backward_cpu<double>(Exec::current(), dx2.data(), nullptr, nullptr, R.data(), x.data(), m.data(),
                                   s.data(), ones.data(), N, C, true);
    REQUIRE_BITWISE_EQUAL(dx1, dx2);
  }
}

TEST_CASE("batchnorm: same bits for every thread count, 20 repeats", "[layers][batchnorm][deterministic]") {
  const int64_t N = 203, C = 1000;  // threads split the 1000 features, ~80 per task
  std::vector<float> x = random_floats(N * C, 31, -3.f, 5.f), gamma = random_floats(C, 32, 0.5f, 2.f),
                     beta = random_floats(C, 33), dy = random_floats(N * C, 34), rm0 = random_floats(C, 35),
                     rv0 = random_floats(C, 36, 0.5f, 2.f);
  auto run = [&](bool training, std::vector<std::vector<float>>& out) {
    std::vector<float> y(N * C), mean(C), rstd(C), rm(rm0), rv(rv0), dx(N * C), dg(C), db(C);
    batchnorm_forward_cpu(Exec::current(), y.data(), mean.data(), rstd.data(), rm.data(), rv.data(), x.data(),
                          gamma.data(), beta.data(), N, C, training, 1e-5f, 0.1f);
    batchnorm_backward_cpu(Exec::current(), dx.data(), dg.data(), db.data(), dy.data(), x.data(), mean.data(),
                           rstd.data(), gamma.data(), N, C, training);
    out = {y, mean, rstd, rm, rv, dx, dg, db};
  };
  for (bool training : {true, false}) {
    std::vector<std::vector<float>> ref, got;
    {
      ThreadsGuard tg(1);
      run(training, ref);
    }
    for (int threads : {1, 2, 3, 8}) {
      ThreadsGuard tg(threads);
      for (int rep = 0; rep < 20; ++rep) {
        run(training, got);
        for (size_t k = 0; k < ref.size(); ++k) {
          INFO("output " << k << ", threads " << threads);
          REQUIRE_BITWISE_EQUAL(got[k], ref[k]);
        }
      }
    }
  }
}

TEST_CASE("batchnorm: AVX2 and portable loops give the same bits", "[layers][batchnorm][deterministic]") {
  if (!Exec{Mode::deterministic, simd_level_available()}.avx2()) return;  // nothing to compare without AVX2/FMA
  // C not a multiple of the vector width; N spanning several batch chunks with a short last one
  const int64_t N = 77, C = 37;
  auto run = [&](auto zero, bool training, bool affine, bool simd) {
    using T = decltype(zero);
    SimdGuard sg(simd);
    const Exec ex = Exec::current();  // the kernels run at the level the guard set
    REQUIRE(ex.avx2() == simd);
    std::vector<T> x(N * C), dy(N * C), g(C), b(C), rm(C, T(0.1)), rv(C, T(1.5));
    for (int64_t i = 0; i < N * C; ++i) x[i] = T(std::sin(0.37 * i) * 3 + 0.5), dy[i] = T(std::cos(0.11 * i));
    for (int64_t c = 0; c < C; ++c) g[c] = T(0.5 + 0.01 * c), b[c] = T(-0.2 + 0.03 * c);
    std::vector<T> y(N * C), mean(C), rstd(C), dx(N * C), dg(C), db(C);
    batchnorm_forward_cpu(ex, y.data(), mean.data(), rstd.data(), rm.data(), rv.data(), x.data(),
                          affine ? g.data() : nullptr, affine ? b.data() : nullptr, N, C, training, T(1e-5), T(0.1));
    batchnorm_backward_cpu(ex, dx.data(), affine ? dg.data() : nullptr, affine ? db.data() : nullptr, dy.data(),
                           x.data(), mean.data(), rstd.data(), affine ? g.data() : nullptr, N, C, training);
    std::vector<T> all;
    for (const auto* v : {&y, &mean, &rstd, &rm, &rv, &dx, &dg, &db}) all.insert(all.end(), v->begin(), v->end());
    return all;
  };
  for (bool training : {true, false}) {
    for (bool affine : {true, false}) {
      INFO("training " << training << ", affine " << affine);
      REQUIRE_BITWISE_EQUAL(run(0.0f, training, affine, true), run(0.0f, training, affine, false));
      REQUIRE_BITWISE_EQUAL(run(0.0, training, affine, true), run(0.0, training, affine, false));
    }
  }
}
