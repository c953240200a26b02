// Loss kernels (kernels/loss.h): cross-entropy (label smoothing 0 and 0.1; none, sum, mean)
// and MSE against float64 references, the documented orders written out here (contiguous
// order, chunk partials + tree_sum_inplace) bit for bit, float64 finite differences,
// extreme logits, and the same bits for every thread count.
#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "base/parallel.h"
#include "base/simd.h"
#include "kernels/loss.h"
#include "kernels/reduce_order.h"
#include "kernels/softmax.h"
#include "test_util.h"

using namespace lockstep;
using lockstep_test::random_doubles;
using lockstep_test::random_floats;

namespace {

const Reduction kReductions[] = {Reduction::none, Reduction::sum, Reduction::mean};
const char* name(Reduction r) { return r == Reduction::none ? "none" : r == Reduction::sum ? "sum" : "mean"; }

std::vector<int64_t> random_targets(int64_t n, int64_t C, uint32_t seed) {
  std::mt19937 gen(seed);
  std::vector<int64_t> t(n);
  for (auto& v : t) v = static_cast<int64_t>(gen() % static_cast<uint32_t>(C));
  return t;
}

// Contiguous order (reduce_order.h item 1), written out: 4096-blocks, 32 lanes, halving
// fold, then the block partials through tree_sum_inplace.
float contiguous_sum(const float* x, int64_t n) {
  std::vector<float> blocks;
  for (int64_t b = 0; b < n; b += kReduceBlock) {
    float lane[kReduceLanes] = {};
    for (int64_t i = b; i < std::min(n, b + kReduceBlock); ++i) lane[(i - b) % kReduceLanes] += x[i];
    for (int s = kReduceLanes / 2; s >= 1; s /= 2)
      for (int j = 0; j < s; ++j) lane[j] = lane[j] + lane[j + s];
    blocks.push_back(lane[0]);
  }
  return blocks.empty() ? 0.0f : tree_sum_inplace(blocks.data(), static_cast<int64_t>(blocks.size()));
}

// Batch order (item 2) of v[0 .. n): chunks of 32 summed from +0, then tree_sum_inplace.
float batch_sum(const std::vector<float>& v) {
  std::vector<float> part;
  for (size_t r0 = 0; r0 < v.size(); r0 += kBatchChunk) {
    float acc = 0.0f;
    for (size_t r = r0; r < std::min(v.size(), r0 + kBatchChunk); ++r) acc = acc + v[r];
    part.push_back(acc);
  }
  return part.empty() ? 0.0f : tree_sum_inplace(part.data(), static_cast<int64_t>(part.size()));
}

// Per-row cross-entropy in float64, from the definition with q = (1-eps) onehot + eps/C.
std::vector<double> ce_reference(const std::vector<float>& x, const std::vector<int64_t>& t, int64_t N, int64_t C,
                                 double eps) {
  std::vector<double> loss(N);
  for (int64_t i = 0; i < N; ++i) {
    double m = -INFINITY, s = 0, sum_logp = 0;
    for (int64_t j = 0; j < C; ++j) m = std::max(m, static_cast<double>(x[i * C + j]));
    for (int64_t j = 0; j < C; ++j) s += std::exp(x[i * C + j] - m);
    const double lse = m + std::log(s);
    for (int64_t j = 0; j < C; ++j) sum_logp += x[i * C + j] - lse;
    loss[i] = -(1 - eps) * (x[i * C + t[i]] - lse) - eps / C * sum_logp;
  }
  return loss;
}

double reduce_ref(const std::vector<double>& v, Reduction r) {
  double s = 0;
  for (double x : v) s += x;
  return r == Reduction::mean ? s / static_cast<double>(v.size()) : s;
}

size_t out_size(Reduction r, int64_t n) {
  return r == Reduction::none ? static_cast<size_t>(n) : 1;
}

}  // namespace

TEST_CASE("cross_entropy: float32 matches a float64 reference", "[layers][loss]") {
  const int64_t N = 50, C = 10;
  std::vector<float> x = random_floats(N * C, 1, -5.f, 5.f);
  std::vector<int64_t> t = random_targets(N, C, 2);
  for (float eps : {0.0f, 0.1f}) {
    std::vector<double> ref = ce_reference(x, t, N, C, eps);
    for (Reduction r : kReductions) {
      INFO("eps " << eps << ", reduction " << name(r));
      std::vector<float> out(out_size(r, N));
      cross_entropy_forward_cpu(Exec::current(), out.data(), x.data(), t.data(), N, C, eps, r);
      std::vector<double> expect = r == Reduction::none ? ref : std::vector<double>{reduce_ref(ref, r)};
      REQUIRE_ALLCLOSE(out, expect, 1e-5, 1e-6);
    }
  }
}

TEST_CASE("cross_entropy: forward and backward follow the documented order bit for bit", "[layers][loss]") {
  // C = 5000 spans two 4096-blocks of the contiguous order; N = 203 makes 7 batch chunks
  for (auto shape : {std::pair<int64_t, int64_t>{203, 13}, std::pair<int64_t, int64_t>{3, 5000}}) {
    const int64_t N = shape.first, C = shape.second;
    std::vector<float> x = random_floats(N * C, 3, -8.f, 8.f), dout = random_floats(N, 4);
    std::vector<int64_t> t = random_targets(N, C, 5);
    std::vector<float> logp(N * C), p(N * C);
    log_softmax_forward_cpu(Exec::current(), logp.data(), x.data(), N, C);
    softmax_forward_cpu(Exec::current(), p.data(), x.data(), N, C);
    for (float eps : {0.0f, 0.1f}) {
      INFO("N " << N << ", C " << C << ", eps " << eps);
      const float a = 1.0f - eps, b = eps / static_cast<float>(C);
      std::vector<float> expect(N);
      for (int64_t i = 0; i < N; ++i) {
        const float nll = -logp[i * C + t[i]];
        if (eps == 0.0f) {
          expect[i] = nll;
        } else {
          const float smooth = -contiguous_sum(&logp[i * C], C);
          const float u = a * nll, v = smooth * b;
          expect[i] = u + v;
        }
      }
      std::vector<float> none(N), sum(1), mean(1);
      cross_entropy_forward_cpu(Exec::current(), none.data(), x.data(), t.data(), N, C, eps, Reduction::none);
      cross_entropy_forward_cpu(Exec::current(), sum.data(), x.data(), t.data(), N, C, eps, Reduction::sum);
      cross_entropy_forward_cpu(Exec::current(), mean.data(), x.data(), t.data(), N, C, eps, Reduction::mean);
      REQUIRE_BITWISE_EQUAL(none, expect);
      const float total = batch_sum(expect);
      REQUIRE_BITWISE_EQUAL(sum, std::vector<float>{total});
      REQUIRE_BITWISE_EQUAL(mean, std::vector<float>{total / static_cast<float>(N)});

      for (Reduction r : kReductions) {
        INFO("reduction " << name(r));
        std::vector<float> g(N * C), ge(N * C);
        const float* d = r == Reduction::none ? dout.data() : &dout[N - 1];  // one value for mean and sum
        cross_entropy_backward_cpu(Exec::current(), g.data(), d, x.data(), t.data(), N, C, eps, r);
        for (int64_t i = 0; i < N; ++i) {
          const float w = r == Reduction::none ? d[i] : r == Reduction::sum ? d[0] : d[0] / static_cast<float>(N);
          for (int64_t j = 0; j < C; ++j) {
            const float q = j == t[i] ? a + b : b;
            ge[i * C + j] = (p[i * C + j] - q) * w;
          }
        }
        REQUIRE_BITWISE_EQUAL(g, ge);
      }
    }
  }
}

TEST_CASE("cross_entropy: float64 gradient matches finite differences", "[layers][loss]") {
  const int64_t N = 6, C = 7;
  const double h = 1e-6;
  std::vector<double> x = random_doubles(N * C, 11, -3.0, 3.0), dout = random_doubles(N, 12);
  std::vector<int64_t> t = random_targets(N, C, 13);
  for (double eps : {0.0, 0.1}) {
    for (Reduction r : kReductions) {
      INFO("eps " << eps << ", reduction " << name(r));
      // L = sum_i dout_i loss_i (none) or dout_0 * out
      auto L = [&]() {
        std::vector<double> out(out_size(r, N));
        cross_entropy_forward_cpu(Exec::current(), out.data(), x.data(), t.data(), N, C, eps, r);
        double s = 0;
        for (size_t i = 0; i < out.size(); ++i) s += dout[i] * out[i];
        return s;
      };
      std::vector<double> g(N * C), fd(N * C);
      cross_entropy_backward_cpu(Exec::current(), g.data(), dout.data(), x.data(), t.data(), N, C, eps, r);
      for (int64_t k = 0; k < N * C; ++k) {
        const double saved = x[k];
        x[k] = saved + h;
        const double fp = L();
        x[k] = saved - h;
        const double fm = L();
        x[k] = saved;
        fd[k] = (fp - fm) / (2 * h);
      }
      REQUIRE_ALLCLOSE(g, fd, 1e-6, 1e-9);
    }
  }
}

TEST_CASE("cross_entropy: extreme logits stay finite", "[layers][loss]") {
  const float inf = std::numeric_limits<float>::infinity();
  const int64_t N = 4, C = 3;
  const std::vector<float> x = {1e4f, -1e4f, 0.0f,  1e4f, -1e4f, 0.0f,  // targets 0 and 1
                                -inf, 3.0f,  -inf,  -1e4f, -inf, 1e4f};  // -inf away from the target
  const std::vector<int64_t> t = {0, 1, 1, 0};
  std::vector<float> loss(N), g(N * C), ones(N, 1.0f);
  cross_entropy_forward_cpu(Exec::current(), loss.data(), x.data(), t.data(), N, C, 0.0f, Reduction::none);
  REQUIRE(loss[0] == 0.0f);
  REQUIRE(loss[1] == 2e4f);
  REQUIRE(loss[2] == 0.0f);
  REQUIRE(loss[3] == 2e4f);
  std::vector<float> mean(1);
  cross_entropy_forward_cpu(Exec::current(), mean.data(), x.data(), t.data(), N, C, 0.0f, Reduction::mean);
  REQUIRE(mean[0] == 1e4f);
  cross_entropy_backward_cpu(Exec::current(), g.data(), ones.data(), x.data(), t.data(), N, C, 0.0f, Reduction::none);
  for (float v : g) REQUIRE(std::isfinite(v));
  REQUIRE(g[3] == 1.0f);   // row 1: softmax is (1, 0, 0), target 1
  REQUIRE(g[4] == -1.0f);
  REQUIRE(g[6] == 0.0f);   // row 2: the -inf entries get exactly 0

  SECTION("with label smoothing a -inf logit makes the loss +inf (as in PyTorch), the gradient stays finite") {
    cross_entropy_forward_cpu(Exec::current(), loss.data(), x.data(), t.data(), N, C, 0.1f, Reduction::none);
    REQUIRE(std::isfinite(loss[0]));
    REQUIRE(loss[0] == Approx(0.1 / 3 * 3e4).epsilon(1e-6));  // eps/C * (0 + 2e4 + 1e4)
    REQUIRE(loss[2] == inf);
    cross_entropy_backward_cpu(Exec::current(), g.data(), ones.data(), x.data(), t.data(), N, C, 0.1f, Reduction::none);
    for (float v : g) REQUIRE(std::isfinite(v));
  }
}

TEST_CASE("mse: float32 matches float64, the documented order bit for bit", "[layers][loss]") {
  // D = 5000 spans two 4096-blocks; N = 203 makes 7 batch chunks
  for (auto shape : {std::pair<int64_t, int64_t>{203, 13}, std::pair<int64_t, int64_t>{3, 5000},
                     std::pair<int64_t, int64_t>{1, 1}}) {
    const int64_t N = shape.first, D = shape.second;
    INFO("N " << N << ", D " << D);
    std::vector<float> x = random_floats(N * D, 21, -3.f, 3.f), y = random_floats(N * D, 22, -3.f, 3.f);
    std::vector<float> sq(N * D), none(N * D), sum(1), mean(1);
    std::vector<double> sq_ref(N * D);
    for (int64_t k = 0; k < N * D; ++k) {
      const float d = x[k] - y[k];
      sq[k] = d * d;
      sq_ref[k] = (static_cast<double>(x[k]) - y[k]) * (static_cast<double>(x[k]) - y[k]);
    }
    mse_forward_cpu(Exec::current(), none.data(), x.data(), y.data(), N, D, Reduction::none);
    mse_forward_cpu(Exec::current(), sum.data(), x.data(), y.data(), N, D, Reduction::sum);
    mse_forward_cpu(Exec::current(), mean.data(), x.data(), y.data(), N, D, Reduction::mean);
    REQUIRE_BITWISE_EQUAL(none, sq);
    std::vector<float> rows(N);
    for (int64_t i = 0; i < N; ++i) rows[i] = contiguous_sum(&sq[i * D], D);
    const float total = batch_sum(rows);
    REQUIRE_BITWISE_EQUAL(sum, std::vector<float>{total});
    REQUIRE_BITWISE_EQUAL(mean, std::vector<float>{total / static_cast<float>(N * D)});
    REQUIRE_ALLCLOSE(sum, std::vector<double>{reduce_ref(sq_ref, Reduction::sum)}, 1e-5, 0);
    REQUIRE_ALLCLOSE(mean, std::vector<double>{reduce_ref(sq_ref, Reduction::mean)}, 1e-5, 0);

    // backward: (norm * (x - y)) * g, and the target's gradient is its exact negation
    std::vector<float> dout = random_floats(N * D, 23);
    for (Reduction r : kReductions) {
      INFO("reduction " << name(r));
      std::vector<float> dx(N * D), dy(N * D), ex(N * D);
      mse_backward_cpu(Exec::current(), dx.data(), dy.data(), dout.data(), x.data(), y.data(), N, D, r);
      const float norm = r == Reduction::mean ? 2.0f / static_cast<float>(N * D) : 2.0f;
      for (int64_t k = 0; k < N * D; ++k) {
        const float v = norm * (x[k] - y[k]);
        ex[k] = v * (r == Reduction::none ? dout[k] : dout[0]);
      }
      REQUIRE_BITWISE_EQUAL(dx, ex);
      for (int64_t k = 0; k < N * D; ++k) REQUIRE(dy[k] == -dx[k]);
    }
  }
}

TEST_CASE("mse: float64 gradient matches finite differences", "[layers][loss]") {
  const int64_t N = 5, D = 4;
  const double h = 1e-6;
  std::vector<double> x = random_doubles(N * D, 31, -2.0, 2.0), y = random_doubles(N * D, 32, -2.0, 2.0),
                      dout = random_doubles(N * D, 33);
  for (Reduction r : kReductions) {
    INFO("reduction " << name(r));
    auto L = [&]() {
      std::vector<double> out(out_size(r, N * D));
      mse_forward_cpu(Exec::current(), out.data(), x.data(), y.data(), N, D, r);
      double s = 0;
      for (size_t i = 0; i < out.size(); ++i) s += dout[i] * out[i];
      return s;
    };
    std::vector<double> dx(N * D), dy(N * D), fx(N * D), fy(N * D);
    mse_backward_cpu(Exec::current(), dx.data(), dy.data(), dout.data(), x.data(), y.data(), N, D, r);
    for (auto* v : {&x, &y}) {
      std::vector<double>& f = v == &x ? fx : fy;
      for (int64_t k = 0; k < N * D; ++k) {
        const double saved = (*v)[k];
        (*v)[k] = saved + h;
        const double fp = L();
        (*v)[k] = saved - h;
        const double fm = L();
        (*v)[k] = saved;
        f[k] = (fp - fm) / (2 * h);
      }
    }
    REQUIRE_ALLCLOSE(dx, fx, 1e-6, 1e-9);
    REQUIRE_ALLCLOSE(dy, fy, 1e-6, 1e-9);
  }
}

TEST_CASE("losses: same bits for every thread count, 20 repeats, SIMD on and off", "[layers][loss][deterministic]") {
  const int64_t N = 1000, C = 37;
  std::vector<float> x = random_floats(N * C, 41, -6.f, 6.f), y = random_floats(N * C, 42),
                     dout = random_floats(N * C, 43);
  std::vector<int64_t> t = random_targets(N, C, 44);
  auto run = [&](std::vector<std::vector<float>>& out) {
    out.clear();
    const Exec ex = Exec::current();  // the SIMD level of the guard below, when one is set
    for (Reduction r : kReductions) {
      std::vector<float> ce(out_size(r, N)), g(N * C), mse(out_size(r, N * C)), dx(N * C), dy(N * C);
      cross_entropy_forward_cpu(ex, ce.data(), x.data(), t.data(), N, C, 0.1f, r);
      cross_entropy_backward_cpu(ex, g.data(), dout.data(), x.data(), t.data(), N, C, 0.1f, r);
      mse_forward_cpu(ex, mse.data(), x.data(), y.data(), N, C, r);
      mse_backward_cpu(ex, dx.data(), dy.data(), dout.data(), x.data(), y.data(), N, C, r);
      for (auto* v : {&ce, &g, &mse, &dx, &dy}) out.push_back(*v);
    }
  };
  std::vector<std::vector<float>> ref, got;
  {
    ThreadsGuard tg(1);
    run(ref);
  }
  for (int threads : {1, 2, 3, 8}) {
    ThreadsGuard tg(threads);
    for (int rep = 0; rep < 20; ++rep) {
      run(got);
      for (size_t k = 0; k < ref.size(); ++k) {
        INFO("output " << k << ", threads " << threads);
        REQUIRE_BITWISE_EQUAL(got[k], ref[k]);
      }
    }
  }
  // the row sums go through sum_serial_cpu / sum_rows_cpu, which have an AVX2 path
  for (bool simd : {false, true}) {
    SimdGuard sg(simd);
    REQUIRE(Exec::current().simd == (simd ? simd_level_available() : SimdLevel::scalar));  // run() passes it on
    run(got);
    for (size_t k = 0; k < ref.size(); ++k) {
      INFO("output " << k << ", simd " << simd);
      REQUIRE_BITWISE_EQUAL(got[k], ref[k]);
    }
  }
}
