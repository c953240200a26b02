// Optimizers: SGD, Adam and AdamW against double-precision references of PyTorch's
// documented formulas; bitwise identical for any thread count and SIMD path; state-dict
// round trips that continue bit for bit; checked loading; weight decay; parameter groups;
// bad options.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <memory>
#include <tuple>

#include "core/autograd.h"
#include "core/optim.h"
#include "base/parallel.h"
#include "core/random.h"
#include "base/simd.h"
#include "kernels/optim.h"
#include "nn/models.h"
#include "optim/adam.h"
#include "optim/clip.h"
#include "optim/sgd.h"
#include "test_util.h"

using namespace lockstep;
using Catch::Contains;

namespace {

constexpr double kEps32 = 1.1920928955078125e-7;

Tensor make_param(const std::vector<float>& v) {
  Tensor p = Tensor::from_vector(v, {static_cast<int64_t>(v.size())});
  p.set_requires_grad(true);
  return p;
}

Tensor make_param64(const std::vector<double>& v) {
  Tensor p = Tensor::from_vector(v, {static_cast<int64_t>(v.size())});
  p.set_requires_grad(true);
  return p;
}

// Gradients of step k: uniform in [-scale, scale), a fixed function of (seed, k).
std::vector<float> grads_at(size_t n, uint32_t seed, int k, float scale = 1.f) {
  return lockstep_test::random_floats(n, seed * 1000u + static_cast<uint32_t>(k), -scale, scale);
}

std::vector<double> to_double(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

// PyTorch's SGD, documented form, in double.
struct SgdRef {
  double lr, mu, tau, wd;
  bool nesterov;
  std::vector<double> p, b;
  void step(const std::vector<double>& grad) {
    const bool first = b.empty();
    if (first && mu != 0) b.assign(p.size(), 0.0);
    for (size_t i = 0; i < p.size(); ++i) {
      double g = grad[i] + wd * p[i];
      if (mu != 0) {
        b[i] = first ? g : mu * b[i] + (1 - tau) * g;
        g = nesterov ? g + mu * b[i] : b[i];
      }
      p[i] -= lr * g;
    }
  }
};

// PyTorch's Adam / AdamW, documented form, in double.
struct AdamRef {
  double lr, b1, b2, eps, wd;
  bool amsgrad, decoupled;
  std::vector<double> p, m, v, vmax;
  int t = 0;
  void step(const std::vector<double>& grad) {
    if (t == 0) m.assign(p.size(), 0.0), v.assign(p.size(), 0.0), vmax.assign(p.size(), 0.0);
    ++t;
    const double bc1 = 1 - std::pow(b1, t), bc2 = 1 - std::pow(b2, t);
    for (size_t i = 0; i < p.size(); ++i) {
      double g = grad[i];
      if (decoupled) p[i] *= 1 - lr * wd;
      else g += wd * p[i];
      m[i] = b1 * m[i] + (1 - b1) * g;
      v[i] = b2 * v[i] + (1 - b2) * g * g;
      vmax[i] = std::max(vmax[i], v[i]);
      const double vh = amsgrad ? vmax[i] : v[i];
      p[i] -= lr * (m[i] / bc1) / (std::sqrt(vh / bc2) + eps);
    }
  }
};

// Runs `steps` steps of opt over p with grads_at(seed, k) (scaled per step by scale(k)).
template <typename Opt>
void run_steps(Opt& opt, Tensor& p, uint32_t seed, int k0, int k1, float big_first = 0.f) {
  for (int k = k0; k < k1; ++k) {
    const float scale = (big_first > 0 && k > 0) ? big_first : 1.f;
    p.set_grad(Tensor::from_vector(grads_at(static_cast<size_t>(p.numel()), seed, k, scale), p.shape()));
    opt.step();
  }
}

}  // namespace

TEST_CASE("optim: SGD matches PyTorch's formulas in double", "[optim]") {
  struct Case {
    const char* name;
    double lr, mu, tau, wd;
    bool nesterov;
  };
  const Case cases[] = {{"plain", 0.1, 0, 0, 0, false},          {"momentum", 0.1, 0.9, 0, 0, false},
                        {"dampening", 0.1, 0.9, 0.3, 0, false},  {"nesterov", 0.05, 0.9, 0, 0, true},
                        {"weight decay", 0.1, 0.8, 0.1, 0.05, false}, {"nesterov + wd", 0.1, 0.5, 0, 0.1, true}};
  const int steps = 6;
  const size_t n = 257;
  for (const Case& c : cases) {
    INFO(c.name);
    const std::vector<float> p0 = lockstep_test::random_floats(n, 11);
    Tensor p = make_param(p0);
    optim::SGD opt({p}, optim::SGDOptions(c.lr).momentum(c.mu).dampening(c.tau).weight_decay(c.wd).nesterov(c.nesterov));
    SgdRef ref{c.lr, c.mu, c.tau, c.wd, c.nesterov, to_double(p0), {}};
    for (int k = 0; k < steps; ++k) {
      const std::vector<float> g = grads_at(n, 3, k);
      p.set_grad(Tensor::from_vector(g, {static_cast<int64_t>(n)}));
      opt.step();
      ref.step(to_double(g));
    }
    // Each step rounds a handful of times at the scale of |p| + lr*|buf| (<= ~2 here).
    const double tol = 4 * steps * kEps32;
    REQUIRE_ALLCLOSE(p.to_vector<float>(), ref.p, tol, tol);
    if (c.mu != 0) REQUIRE_ALLCLOSE(opt.state(0, "momentum_buffer").to_vector<float>(), ref.b, tol, 10 * tol);
    else REQUIRE_FALSE(opt.state(0, "momentum_buffer").defined());
  }
}

TEST_CASE("optim: Adam and AdamW match PyTorch's formulas in double", "[optim]") {
  struct Case {
    const char* name;
    double lr, b1, b2, eps, wd;
    bool amsgrad, adamw;
  };
  const Case cases[] = {{"adam", 1e-2, 0.9, 0.999, 1e-8, 0, false, false},
                        {"adam wd", 1e-2, 0.9, 0.999, 1e-8, 0.1, false, false},
                        {"adam amsgrad", 1e-2, 0.9, 0.99, 1e-8, 0, true, false},
                        {"adam amsgrad wd, beta1 0.3 (the other lerp branch)", 1e-2, 0.3, 0.9, 1e-6, 0.05, true, false},
                        {"adamw", 1e-2, 0.9, 0.999, 1e-8, 0.1, false, true},
                        {"adamw amsgrad", 3e-2, 0.8, 0.99, 1e-8, 0.2, true, true}};
  const int steps = 6;
  const size_t n = 301;
  for (const Case& c : cases) {
    INFO(c.name);
    const std::vector<float> p0 = lockstep_test::random_floats(n, 21);
    Tensor p = make_param(p0);
    const auto o = optim::AdamOptions(c.lr).betas(c.b1, c.b2).eps(c.eps).weight_decay(c.wd).amsgrad(c.amsgrad);
    std::unique_ptr<optim::Optimizer> opt;
    if (c.adamw) opt = std::make_unique<optim::AdamW>(std::vector<Tensor>{p}, o);
    else opt = std::make_unique<optim::Adam>(std::vector<Tensor>{p}, o);
    AdamRef ref{c.lr, c.b1, c.b2, c.eps, c.wd, c.amsgrad, c.adamw, to_double(p0), {}, {}, {}};
    for (int k = 0; k < steps; ++k) {
      // large gradients first, then small ones: v decays, so amsgrad's max matters
      const std::vector<float> g = grads_at(n, 5, k, k == 0 ? 1.f : 0.05f);
      p.set_grad(Tensor::from_vector(g, {static_cast<int64_t>(n)}));
      opt->step();
      ref.step(to_double(g));
    }
    const double tol = 4 * steps * kEps32;
    REQUIRE_ALLCLOSE(p.to_vector<float>(), ref.p, tol, tol);
    REQUIRE_ALLCLOSE(opt->state(0, "exp_avg").to_vector<float>(), ref.m, tol, tol);
    REQUIRE_ALLCLOSE(opt->state(0, "exp_avg_sq").to_vector<float>(), ref.v, tol, 1e-9);
    REQUIRE(opt->state(0, "step").to_vector<int64_t>()[0] == steps);
    REQUIRE(opt->state(0, "max_exp_avg_sq").defined() == c.amsgrad);
  }
}

TEST_CASE("optim: float64 parameters follow the same formulas", "[optim]") {
  const size_t n = 67;
  const std::vector<double> p0 = lockstep_test::random_doubles(n, 4);
  Tensor ps = make_param64(p0), pa = make_param64(p0);
  optim::SGD sgd({ps}, optim::SGDOptions(0.1).momentum(0.9).nesterov(true).weight_decay(0.01));
  optim::AdamW adamw({pa}, optim::AdamWOptions(1e-2).amsgrad(true));
  SgdRef sref{0.1, 0.9, 0, 0.01, true, p0, {}};
  AdamRef aref{1e-2, 0.9, 0.999, 1e-8, 1e-2, true, true, p0, {}, {}, {}};
  for (int k = 0; k < 5; ++k) {
    const std::vector<double> g = lockstep_test::random_doubles(n, 100 + k);
    ps.set_grad(Tensor::from_vector(g, {static_cast<int64_t>(n)}));
    pa.set_grad(Tensor::from_vector(g, {static_cast<int64_t>(n)}));
    sgd.step();
    adamw.step();
    sref.step(g);
    aref.step(g);
  }
  REQUIRE_ALLCLOSE(ps.to_vector<double>(), sref.p, 1e-14, 1e-14);
  REQUIRE_ALLCLOSE(pa.to_vector<double>(), aref.p, 1e-13, 1e-13);
}

TEST_CASE("optim: beta^t by binary exponentiation", "[optim]") {
  REQUIRE(optim_powi(0.9, 0) == 1.0);
  REQUIRE(optim_powi(0.9, 1) == 0.9);
  REQUIRE(optim_powi(0.5, 60) == std::ldexp(1.0, -60));  // exact powers of two stay exact
  for (double beta : {0.9, 0.999, 0.95, 0.3})
    for (int64_t t : {2, 3, 7, 10, 100, 1000, 12345, 1000000}) {
      const double want = std::pow(beta, static_cast<double>(t));
      INFO("beta " << beta << " t " << t);
      REQUIRE(std::fabs(optim_powi(beta, t) - want) <= 2.0 * t * 1.1102230246251565e-16 * want);
    }
  // The bias-corrected scalars of step 1: lr / (1 - beta1), sqrt(1 - beta2).
  const AdamStep s = adam_step_args(1e-3, 0.9, 0.999, 1e-8, 0.0, false, false, 1);
  REQUIRE(s.step_size == 1e-3 / (1.0 - 0.9));
  REQUIRE(s.bias_correction2_sqrt == std::sqrt(1.0 - 0.999));
}

TEST_CASE("optim: updates are bitwise identical across threads and SIMD paths", "[optim][deterministic]") {
  const size_t n = 100003;  // several parallel ranges; ragged vector tails
  const std::vector<float> p0 = lockstep_test::random_floats(n, 77);
  using Make = std::function<std::unique_ptr<optim::Optimizer>(Tensor)>;
  const std::vector<std::pair<const char*, Make>> makers = {
      {"sgd", [](Tensor p) { return std::make_unique<optim::SGD>(std::vector<Tensor>{p}, optim::SGDOptions(0.1)); }},
      {"sgd momentum dampening wd",
       [](Tensor p) {
         return std::make_unique<optim::SGD>(std::vector<Tensor>{p},
                                             optim::SGDOptions(0.1).momentum(0.9).dampening(0.2).weight_decay(1e-2));
       }},
      {"sgd nesterov",
       [](Tensor p) {
         return std::make_unique<optim::SGD>(std::vector<Tensor>{p}, optim::SGDOptions(0.1).momentum(0.9).nesterov(true));
       }},
      {"adam", [](Tensor p) { return std::make_unique<optim::Adam>(std::vector<Tensor>{p}, optim::AdamOptions(1e-2)); }},
      {"adam wd amsgrad",
       [](Tensor p) {
         return std::make_unique<optim::Adam>(std::vector<Tensor>{p},
                                              optim::AdamOptions(1e-2).weight_decay(0.1).amsgrad(true));
       }},
      {"adam beta1 0.3",
       [](Tensor p) {
         return std::make_unique<optim::Adam>(std::vector<Tensor>{p}, optim::AdamOptions(1e-2).betas(0.3, 0.99));
       }},
      {"adamw amsgrad",
       [](Tensor p) {
         return std::make_unique<optim::AdamW>(std::vector<Tensor>{p}, optim::AdamWOptions(1e-2).amsgrad(true));
       }},
  };
  if (!simd_available()) WARN("AVX2 is not available here: only the portable path is compared");
  for (auto& [name, make] : makers) {
    INFO(name);
    std::vector<float> want;
    std::vector<std::vector<float>> want_state;
    for (bool simd : {false, true})
      for (int threads : {1, 2, 3, 8}) {
        SimdGuard sg(simd);
        ThreadsGuard tg(threads);
        Tensor p = make_param(p0);
        auto opt = make(p);
        run_steps(*opt, p, 9, 0, 4, 0.1f);
        std::vector<std::vector<float>> state;
        const StateDict sd = opt->state_dict();
        for (auto& kv : sd.items())
          if (kv.second.dtype() == DType::f32 && kv.second.dim() == 1) state.push_back(kv.second.to_vector<float>());
        if (want.empty()) {
          want = p.to_vector<float>();
          want_state = state;
          continue;
        }
        INFO("simd " << simd << ", threads " << threads);
        REQUIRE_BITWISE_EQUAL(p.to_vector<float>(), want);
        REQUIRE(state.size() == want_state.size());
        for (size_t i = 0; i < state.size(); ++i) REQUIRE_BITWISE_EQUAL(state[i], want_state[i]);
      }
  }
}

TEST_CASE("optim: Adam and SGD over several parameters in one parallel pass give each one's own bits",
          "[optim][deterministic]") {
  // Sizes that put range ends inside parameters, a parameter without a gradient, two groups.
  const std::vector<size_t> sizes = {3, 40000, 17, 70001, 5, 33000};
  auto run = [&](int threads) {
    ThreadsGuard tg(threads);
    std::vector<Tensor> ps;
    for (size_t i = 0; i < sizes.size(); ++i) ps.push_back(make_param(lockstep_test::random_floats(sizes[i], 90 + i)));
    optim::Adam opt(std::vector<optim::ParamGroup>{{{ps[0], ps[1], ps[2]}, optim::AdamOptions(1e-2).amsgrad(true)},
                                                   {{ps[3], ps[4], ps[5]}, optim::AdamOptions(3e-2).weight_decay(0.1)}},
                    optim::AdamOptions(1e-3));
    for (int k = 0; k < 3; ++k) {
      for (size_t i = 0; i < ps.size(); ++i)
        ps[i].set_grad(i == 4 ? Tensor() : Tensor::from_vector(grads_at(sizes[i], 5 + i, k), ps[i].shape()));
      opt.step();
    }
    std::vector<std::vector<float>> out;
    for (auto& p : ps) out.push_back(p.to_vector<float>());
    const StateDict sd = opt.state_dict();
    for (auto& kv : sd.items())
      if (kv.second.dtype() == DType::f32 && kv.second.dim() == 1) out.push_back(kv.second.to_vector<float>());
    return out;
  };
  const auto want = run(1);  // one adam_step_ per parameter
  for (int threads : {2, 3, 8}) {
    INFO("threads " << threads);
    const auto got = run(threads);
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < want.size(); ++i) REQUIRE_BITWISE_EQUAL(got[i], want[i]);
  }
  // SGD with momentum, the same way.
  auto run_sgd = [&](int threads) {
    ThreadsGuard tg(threads);
    std::vector<Tensor> ps;
    for (size_t i = 0; i < sizes.size(); ++i) ps.push_back(make_param(lockstep_test::random_floats(sizes[i], 70 + i)));
    optim::SGD opt(std::vector<optim::ParamGroup>{{{ps[0], ps[1], ps[2]}, optim::SGDOptions(0.1).momentum(0.9)},
                                                  {{ps[3], ps[4], ps[5]}, optim::SGDOptions(0.2).weight_decay(0.1)}},
                   optim::SGDOptions(0.1));
    for (int k = 0; k < 3; ++k) {
      for (size_t i = 0; i < ps.size(); ++i)
        ps[i].set_grad(i == 1 ? Tensor() : Tensor::from_vector(grads_at(sizes[i], 3 + i, k), ps[i].shape()));
      opt.step();
    }
    std::vector<std::vector<float>> out;
    for (auto& p : ps) out.push_back(p.to_vector<float>());
    return out;
  };
  const auto want_sgd = run_sgd(1);
  for (int threads : {2, 3}) {
    INFO("sgd, threads " << threads);
    const auto got = run_sgd(threads);
    for (size_t i = 0; i < want_sgd.size(); ++i) REQUIRE_BITWISE_EQUAL(got[i], want_sgd[i]);
  }
  Tensor p = make_param({1.f, 2.f}), m = Tensor::zeros({2}), v = Tensor::zeros({2}), g = Tensor::ones({2});
  const AdamStep s = adam_step_args(1e-3, 0.9, 0.999, 1e-8, 0, false, false, 1);
  REQUIRE_THROWS_WITH(adam_step_(p, m, v, Tensor(), g, s, 1, 3), Contains("adam_step_") && Contains("range"));
  adam_step_(p, m, v, Tensor(), g, s, 1, 2);  // the second element only
  REQUIRE(p.to_vector<float>()[0] == 1.f);
  REQUIRE(p.to_vector<float>()[1] != 2.f);
}

TEST_CASE("optim: the AVX2 kernels give the portable bits for every option combination", "[optim][deterministic]") {
  if (!simd_available()) {
    WARN("AVX2 is not available here: nothing to compare");
    return;
  }
  const int64_t n = 1037;
  const std::vector<float> p0 = lockstep_test::random_floats(n, 1), g = lockstep_test::random_floats(n, 2, -0.5f, 0.5f);
  const std::vector<float> m0 = lockstep_test::random_floats(n, 3, -0.1f, 0.1f), v0 = lockstep_test::random_floats(n, 4, 0.f, 0.1f);
  for (int bits = 0; bits < 32; ++bits) {
    SgdStep s;
    s.lr = 0.1, s.momentum = (bits & 1) ? 0.9 : 0.0, s.dampening = (bits & 2) ? 0.25 : 0.0;
    s.weight_decay = (bits & 4) ? 0.01 : 0.0, s.nesterov = (bits & 8) != 0, s.first = (bits & 16) != 0;
    const AdamStep a = adam_step_args(1e-2, (bits & 1) ? 0.9 : 0.2, 0.99, 1e-8, (bits & 2) ? 0.1 : 0.0, (bits & 4) != 0,
                                      (bits & 8) != 0, 1 + bits);
    std::vector<float> out[2][5];
    for (int simd = 0; simd < 2; ++simd) {
      const Exec ex{Mode::deterministic, simd == 1 ? simd_level_available() : SimdLevel::scalar};
      std::vector<float> p = p0, b = m0, m = m0, v = v0, vmax = v0;
      std::vector<float> q = p0;
      sgd_step_cpu(ex, p.data(), b.data(), g.data(), n, s);
      adam_step_cpu(ex, q.data(), m.data(), v.data(), vmax.data(), g.data(), n, a);
      out[simd][0] = p, out[simd][1] = b, out[simd][2] = q, out[simd][3] = m, out[simd][4] = vmax;
    }
    INFO("option bits " << bits);
    for (int k = 0; k < 5; ++k) REQUIRE_BITWISE_EQUAL(out[1][k], out[0][k]);
  }
}

TEST_CASE("optim: state dict round trip continues bit for bit", "[optim][deterministic]") {
  const std::vector<float> w0 = lockstep_test::random_floats(35, 8), b0 = lockstep_test::random_floats(5, 9);
  auto make_params = [](const std::vector<float>& w, const std::vector<float>& b, const std::vector<float>& z) {
    Tensor pw = Tensor::from_vector(w, {7, 5});
    pw.set_requires_grad(true);
    return std::vector<Tensor>{pw, make_param(b), make_param(z)};
  };
  auto set_grads = [](std::vector<Tensor>& ps, int k) {
    for (size_t i = 0; i < 2; ++i)  // the third parameter never gets a gradient
      ps[i].set_grad(Tensor::from_vector(grads_at(static_cast<size_t>(ps[i].numel()), 40 + i, k), ps[i].shape()));
  };
  using Make = std::function<std::unique_ptr<optim::Optimizer>(std::vector<Tensor>)>;
  const std::vector<std::pair<const char*, Make>> makers = {
      {"sgd", [](std::vector<Tensor> p) {
         return std::make_unique<optim::SGD>(p, optim::SGDOptions(0.05).momentum(0.9).nesterov(true));
       }},
      {"adam", [](std::vector<Tensor> p) {
         return std::make_unique<optim::Adam>(p, optim::AdamOptions(1e-2).amsgrad(true).weight_decay(0.01));
       }},
      {"adamw", [](std::vector<Tensor> p) { return std::make_unique<optim::AdamW>(p, optim::AdamWOptions(1e-2)); }},
  };
  for (auto& [name, make] : makers) {
    INFO(name);
    std::vector<Tensor> a = make_params(w0, b0, b0);
    auto opt_a = make(a);
    for (int k = 0; k < 3; ++k) set_grads(a, k), opt_a->step();
    const StateDict sd = opt_a->state_dict();
    // A fresh optimizer over copies of the parameters, loaded from the dict.
    std::vector<Tensor> b = make_params(a[0].to_vector<float>(), a[1].to_vector<float>(), b0);
    auto opt_b = make(b);
    opt_b->load_state_dict(sd);
    for (int k = 3; k < 7; ++k) {
      set_grads(a, k), opt_a->step();
      set_grads(b, k), opt_b->step();
    }
    for (size_t i = 0; i < 2; ++i) REQUIRE(equal_bits(a[i], b[i]));
    const StateDict sa = opt_a->state_dict(), sb = opt_b->state_dict();
    REQUIRE(sa.keys() == sb.keys());
    for (auto& kv : sa.items()) {
      INFO(kv.first);
      REQUIRE(equal_bits(kv.second, sb.at(kv.first)));
    }
    // The dict is a snapshot: stepping on did not write into it.
    REQUIRE_FALSE(equal_bits(sd.at(sd.keys()[0]), sa.at(sd.keys()[0])));
    REQUIRE_FALSE(sd.contains("state.2.exp_avg"));
    REQUIRE_FALSE(sd.contains("state.2.momentum_buffer"));
  }
}

TEST_CASE("optim: state dict keys follow PyTorch's names", "[optim]") {
  Tensor w = make_param({1.f, 2.f}), b = make_param({3.f});
  optim::Adam opt({w, b}, optim::AdamOptions(1e-3).amsgrad(true));
  w.set_grad(Tensor::from_vector({0.5f, -0.5f}, {2}));
  opt.step();
  REQUIRE(opt.state_dict().keys() ==
          std::vector<std::string>{"state.0.step", "state.0.exp_avg", "state.0.exp_avg_sq", "state.0.max_exp_avg_sq",
                                   "param_groups.0.lr", "param_groups.0.betas", "param_groups.0.eps",
                                   "param_groups.0.weight_decay", "param_groups.0.amsgrad", "param_groups.0.params"});
  REQUIRE(opt.state_dict().at("state.0.step").dtype() == DType::i64);
  REQUIRE(opt.state_dict().at("param_groups.0.params").to_vector<int64_t>() == std::vector<int64_t>{0, 1});
  REQUIRE(opt.state_dict().at("param_groups.0.betas").to_vector<double>() == std::vector<double>{0.9, 0.999});
  // b had no gradient: skipped, untouched, no state
  REQUIRE(b.to_vector<float>() == std::vector<float>{3.f});
  REQUIRE_FALSE(opt.state(1, "exp_avg").defined());
  optim::SGD sgd({w}, optim::SGDOptions(0.1).momentum(0.5));
  sgd.step();
  REQUIRE(sgd.state_dict().keys() ==
          std::vector<std::string>{"state.0.momentum_buffer", "param_groups.0.lr", "param_groups.0.momentum",
                                   "param_groups.0.dampening", "param_groups.0.weight_decay", "param_groups.0.nesterov",
                                   "param_groups.0.params"});
}

TEST_CASE("optim: load_state_dict checks every key and changes nothing on error", "[optim]") {
  Tensor w = make_param(lockstep_test::random_floats(6, 1)), b = make_param({0.5f, 0.25f});
  w = Tensor::from_vector(lockstep_test::random_floats(6, 1), {2, 3});
  w.set_requires_grad(true);
  optim::Adam src({w, b}, optim::AdamOptions(1e-2).amsgrad(true));
  for (int k = 0; k < 2; ++k) {
    w.set_grad(Tensor::from_vector(grads_at(6, 2, k), {2, 3}));
    b.set_grad(Tensor::from_vector(grads_at(2, 3, k), {2}));
    src.step();
  }
  const StateDict good = src.state_dict();
  // The target has its own, different history.
  optim::Adam dst({w, b}, optim::AdamOptions(1e-2).amsgrad(true));
  w.set_grad(Tensor::from_vector(grads_at(6, 7, 0), {2, 3}));
  dst.step();
  const StateDict before = dst.state_dict();

  auto edited = [&](const std::string& key, const Tensor& value, bool drop) {
    StateDict sd;
    for (auto& kv : good.items())
      if (kv.first != key) sd.insert(kv.first, kv.second);
      else if (!drop) sd.insert(kv.first, value);
    if (!good.contains(key) && !drop) sd.insert(key, value);
    return sd;
  };
  const std::vector<std::tuple<std::string, Tensor, bool, std::string>> bad = {
      {"state.0.exp_avg_sq", Tensor(), true, "missing key 'state.0.exp_avg_sq'"},
      {"state.1.exp_avg", Tensor::zeros({3}), false, "'state.1.exp_avg'"},
      {"state.0.exp_avg", Tensor::zeros({2, 3}, DType::f64), false, "'state.0.exp_avg'"},
      {"state.0.step", Tensor::scalar(2.0, DType::f32), false, "'state.0.step'"},
      {"state.0.momentum_buffer", Tensor::zeros({2, 3}), false, "unexpected key 'state.0.momentum_buffer'"},
      {"state.2.exp_avg", Tensor::zeros({2}), false, "unexpected key 'state.2.exp_avg'"},
      {"param_groups.0.lr", Tensor::scalar(-1.0, DType::f64), false, "lr >= 0"},
      {"param_groups.0.betas", Tensor::from_vector({0.9, 1.5}, {2}), false, "betas[1]"},
      {"param_groups.0.amsgrad", Tensor(), true, "missing key 'param_groups.0.amsgrad'"},
      {"param_groups.0.params", Tensor::from_vector(std::vector<int64_t>{1, 0}, {2}), false, "param_groups.0.params"},
      {"param_groups.1.lr", Tensor::scalar(0.1, DType::f64), false, "unexpected key 'param_groups.1.lr'"},
      {"bogus", Tensor::scalar(0.0, DType::f64), false, "unexpected key 'bogus'"},
  };
  for (auto& [key, value, drop, msg] : bad) {
    INFO(key);
    REQUIRE_THROWS_AS(dst.load_state_dict(edited(key, value, drop)), std::invalid_argument);
    REQUIRE_THROWS_WITH(dst.load_state_dict(edited(key, value, drop)), Contains(msg) && Contains("[Adam.load_state_dict]"));
    const StateDict now = dst.state_dict();
    REQUIRE(now.keys() == before.keys());
    for (auto& kv : before.items()) REQUIRE(equal_bits(kv.second, now.at(kv.first)));
  }
  dst.load_state_dict(good);  // and the intact dict loads
  REQUIRE(equal_bits(dst.state(1, "exp_avg"), src.state(1, "exp_avg")));
}

TEST_CASE("optim: weight decay shrinks weights as specified", "[optim]") {
  const std::vector<float> p0 = {1.f, -2.f, 0.5f, -0.25f, 3.f};
  const Tensor zero = Tensor::zeros({5});
  SECTION("SGD: p <- p - lr*wd*p") {
    Tensor p = make_param(p0);
    optim::SGD opt({p}, optim::SGDOptions(0.5).weight_decay(0.1));
    std::vector<float> prev = p0;
    for (int k = 1; k <= 4; ++k) {
      p.set_grad(zero.clone());
      opt.step();
      const std::vector<float> now = p.to_vector<float>();
      for (size_t i = 0; i < 5; ++i) {
        REQUIRE(std::fabs(now[i]) < std::fabs(prev[i]));
        REQUIRE(now[i] == Approx(p0[i] * std::pow(1 - 0.5 * 0.1, k)).epsilon(8 * kEps32));
      }
      prev = now;
    }
  }
  SECTION("AdamW: p <- p * (1 - lr*wd) exactly, and the Adam part adds -0") {
    Tensor p = make_param(p0);
    optim::AdamW opt({p}, optim::AdamWOptions(0.1).weight_decay(0.2));
    std::vector<float> want = p0;
    const float factor = static_cast<float>(1.0 - 0.1 * 0.2);
    for (int k = 0; k < 4; ++k) {
      p.set_grad(zero.clone());
      opt.step();
      for (auto& x : want) x = x * factor;
      REQUIRE_BITWISE_EQUAL(p.to_vector<float>(), want);
    }
  }
  SECTION("Adam: L2 enters the gradient, so a zero gradient still moves p towards 0") {
    Tensor p = make_param(p0);
    optim::Adam opt({p}, optim::AdamOptions(0.01).weight_decay(0.5));
    AdamRef ref{0.01, 0.9, 0.999, 1e-8, 0.5, false, false, to_double(p0), {}, {}, {}};
    for (int k = 0; k < 4; ++k) {
      p.set_grad(zero.clone());
      opt.step();
      ref.step(std::vector<double>(5, 0.0));
    }
    const std::vector<float> now = p.to_vector<float>();
    for (size_t i = 0; i < 5; ++i) REQUIRE(std::fabs(now[i]) < std::fabs(p0[i]) - 0.03f);  // ~lr per step
    REQUIRE_ALLCLOSE(now, ref.p, 16 * kEps32, 16 * kEps32);
  }
}

TEST_CASE("optim: parameter groups and the no-decay split", "[optim]") {
  auto model = nn::make_mlp(3);
  const optim::DecaySplit s = optim::split_weight_decay(model->named_parameters());
  REQUIRE(s.decay_names == std::vector<std::string>{"0.weight", "4.weight", "8.weight"});
  REQUIRE(s.no_decay_names ==
          std::vector<std::string>{"0.bias", "1.weight", "1.bias", "4.bias", "5.weight", "5.bias", "8.bias"});

  // AdamW over the two groups with zero gradients: only the decay group shrinks.
  auto groups = optim::weight_decay_groups(model->named_parameters(), optim::AdamWOptions(0.1).weight_decay(0.5));
  optim::AdamW opt(groups);
  REQUIRE(opt.num_param_groups() == 2);
  REQUIRE(static_cast<const optim::AdamOptions&>(opt.options(1)).weight_decay() == 0.0);
  std::vector<Tensor> before;
  for (auto& p : model->parameters()) {
    before.push_back(p.clone());
    p.set_grad(Tensor::zeros(p.shape()));
  }
  opt.step();
  const auto params = model->named_parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    INFO(params[i].first);
    const bool decays = params[i].second.dim() == 2;
    REQUIRE(equal_bits(params[i].second, before[i]) == !decays);
  }

  // Per-group lr and momentum: each group follows its own options.
  Tensor a = make_param({1.f, 1.f}), b = make_param({1.f, 1.f});
  optim::SGD sgd({{{a}}, {{b}, optim::SGDOptions(0.01).momentum(0.9)}}, optim::SGDOptions(0.1));
  for (int k = 0; k < 2; ++k) {
    a.set_grad(Tensor::ones({2}));
    b.set_grad(Tensor::ones({2}));
    sgd.step();
  }
  REQUIRE(a.to_vector<float>()[0] == Approx(1 - 2 * 0.1).epsilon(4 * kEps32));
  REQUIRE(b.to_vector<float>()[0] == Approx(1 - 0.01 * (1 + 1.9)).epsilon(4 * kEps32));
  REQUIRE(sgd.lr(0) == 0.1);
  REQUIRE(sgd.lr(1) == 0.01);
  sgd.set_lr(1, 0.5);
  REQUIRE(sgd.lr(1) == 0.5);
  REQUIRE_THROWS_WITH(sgd.set_lr(0, -1.0), Contains("lr >= 0"));
  REQUIRE(sgd.lr(0) == 0.1);
  // options of another optimizer in a group
  REQUIRE_THROWS_WITH(optim::Adam({{{a}, optim::SGDOptions(0.1)}}), Contains("group 0") && Contains("another optimizer"));
}

TEST_CASE("optim: embeddings and norms get no decay, the groups are in the state dict", "[optim]") {
  // A GPT's parameter names: embeddings listed by module, norms 1-d, biases by name.
  auto p = [](Shape s) { Tensor t = Tensor::zeros(s); t.set_requires_grad(true); return t; };
  const std::vector<std::pair<std::string, Tensor>> named = {
      {"wte.weight", p({11, 4})}, {"wpe.weight", p({8, 4})},  {"h.0.ln_1.weight", p({4})},
      {"h.0.ln_1.bias", p({4})},  {"h.0.attn.c_attn.weight", p({12, 4})}, {"h.0.attn.c_attn.bias", p({12})},
      {"wte_extra.weight", p({3, 4})}};
  const optim::DecaySplit s = optim::split_weight_decay(named, {"wte", "wpe"});
  REQUIRE(s.decay_names == std::vector<std::string>{"h.0.attn.c_attn.weight", "wte_extra.weight"});
  REQUIRE(s.no_decay_names == std::vector<std::string>{"wte.weight", "wpe.weight", "h.0.ln_1.weight", "h.0.ln_1.bias",
                                                       "h.0.attn.c_attn.bias"});
  optim::AdamW opt(optim::weight_decay_groups(named, optim::AdamWOptions(3e-4).weight_decay(0.1), {"wte", "wpe"}));
  const StateDict sd = opt.state_dict();
  REQUIRE(sd.at("param_groups.0.weight_decay").to_vector<double>()[0] == 0.1);
  REQUIRE(sd.at("param_groups.1.weight_decay").to_vector<double>()[0] == 0.0);
  // PyTorch numbers parameters across groups in order: decay first.
  REQUIRE(sd.at("param_groups.0.params").to_vector<int64_t>() == std::vector<int64_t>{0, 1});
  REQUIRE(sd.at("param_groups.1.params").to_vector<int64_t>() == std::vector<int64_t>{2, 3, 4, 5, 6});
}

TEST_CASE("optim: bad options throw naming the option", "[optim]") {
  Tensor p = make_param({1.f});
  using optim::AdamOptions;
  using optim::SGDOptions;
  REQUIRE_THROWS_WITH(optim::SGD({p}, SGDOptions(-0.1)), Contains("[SGD] expected lr >= 0, got -0.1"));
  REQUIRE_THROWS_WITH(optim::SGD({p}, SGDOptions(0.1).momentum(-1)), Contains("momentum >= 0"));
  REQUIRE_THROWS_WITH(optim::SGD({p}, SGDOptions(0.1).weight_decay(-1)), Contains("weight_decay >= 0"));
  REQUIRE_THROWS_WITH(optim::SGD({p}, SGDOptions(0.1).nesterov(true)), Contains("nesterov") && Contains("momentum 0"));
  REQUIRE_THROWS_WITH(optim::SGD({p}, SGDOptions(0.1).nesterov(true).momentum(0.9).dampening(0.1)),
                      Contains("dampening 0.1"));
  REQUIRE_THROWS_WITH(optim::Adam({p}, AdamOptions(-1e-3)), Contains("[Adam] expected lr >= 0"));
  REQUIRE_THROWS_WITH(optim::Adam({p}, AdamOptions().betas(1.0, 0.999)), Contains("betas[0] in [0, 1), got 1"));
  REQUIRE_THROWS_WITH(optim::Adam({p}, AdamOptions().betas(0.9, -0.5)), Contains("betas[1] in [0, 1), got -0.5"));
  REQUIRE_THROWS_WITH(optim::AdamW({p}, AdamOptions().eps(-1e-8)), Contains("[AdamW] expected eps >= 0"));
  REQUIRE_THROWS_WITH(optim::AdamW({p}, optim::AdamWOptions().weight_decay(-0.01)), Contains("weight_decay >= 0"));
  REQUIRE_THROWS_WITH(optim::Adam({p}, AdamOptions(std::nan(""))), Contains("lr >= 0"));
  REQUIRE_THROWS_WITH(optim::Adam(std::vector<Tensor>{}), Contains("empty parameter list"));
  REQUIRE_THROWS_WITH(optim::Adam({p, p}), Contains("more than once"));
  REQUIRE_THROWS_WITH(optim::Adam({Tensor::ones({2}, DType::i64)}), Contains("floating-point"));
  Tensor q = p * 2.0;
  REQUIRE_THROWS_WITH(optim::Adam({q}), Contains("non-leaf"));
}

TEST_CASE("optim: a training step of the MLP is bitwise identical across threads and SIMD", "[optim][deterministic]") {
  auto train = [](int threads, bool simd) {
    ThreadsGuard tg(threads);
    SimdGuard sg(simd);
    auto model = nn::make_mlp(5, 0.0);
    optim::AdamW opt(optim::weight_decay_groups(model->named_parameters(), optim::AdamWOptions(1e-3)));
    Tensor x = Tensor::empty({16, 784});
    fill_uniform(x, 0.0, 1.0, 17, 0);
    std::vector<int64_t> y(16);
    for (int64_t i = 0; i < 16; ++i) y[i] = (i * 3) % 10;
    for (int it = 0; it < 2; ++it) {
      opt.zero_grad();
      Tensor loss = cross_entropy(model->forward(x), Tensor::from_vector(y, {16}));
      loss.backward();
      optim::clip_grad_norm_(model->parameters(), 0.5);
      opt.step();
    }
    return model->state_dict();
  };
  const StateDict want = train(1, false);
  for (auto [threads, simd] : {std::pair<int, bool>{3, false}, {1, true}, {2, true}, {8, true}}) {
    INFO("threads " << threads << ", simd " << simd);
    const StateDict got = train(threads, simd);
    for (auto& kv : want.items()) {
      INFO(kv.first);
      REQUIRE(equal_bits(kv.second, got.at(kv.first)));
    }
  }
}
