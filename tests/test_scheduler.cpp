// LR schedulers against PyTorch's formulas computed here in double (libm cos as the
// reference), the deterministic cosine, the warmup+cosine composition, checkpointing.
#include <catch2/catch.hpp>

#include <cmath>
#include <memory>

#include "optim/scheduler.h"
#include "optim/sgd.h"
#include "test_util.h"

using namespace lockstep;
using Catch::Contains;

namespace {

constexpr double kPi = 3.141592653589793;

Tensor param() {
  Tensor p = Tensor::from_vector({1.f, -1.f}, {2});
  p.set_requires_grad(true);
  return p;
}

// Distance in units in the last place between two doubles of one sign.
double ulps(double a, double b) {
  if (a == b) return 0;
  return std::fabs(a - b) / std::ldexp(1.0, std::ilogb(std::max(std::fabs(a), std::fabs(b))) - 52);
}

// |a - b| <= rel * |b| + 1e-300
bool close(double a, double b, double rel) { return std::fabs(a - b) <= rel * std::fabs(b) + 1e-300; }

}  // namespace

TEST_CASE("scheduler: sched_cos is within 1 ulp of the cosine", "[optim]") {
  double worst = 0, worst_x = 0;
  auto check = [&](double x) {
    const double got = optim::sched_cos(x), want = std::cos(x);
    const double err = ulps(got, want);
    if (err > worst) worst = err, worst_x = x;
  };
  for (int i = -40000; i <= 40000; ++i) check(i * 0.00123);
  for (int T = 1; T <= 300; ++T)
    for (int e = 0; e <= 2 * T + 3; ++e) check(kPi * e / T);
  INFO("worst " << worst << " ulp at x = " << worst_x);
  REQUIRE(worst <= 1.0);
  REQUIRE(optim::sched_cos(0.0) == 1.0);
  REQUIRE(optim::sched_cos(kPi) == -1.0);
  REQUIRE(optim::sched_cos(-2.5) == optim::sched_cos(2.5));
}

TEST_CASE("scheduler: StepLR follows PyTorch's recursive and closed forms", "[optim]") {
  Tensor p = param();
  optim::SGD opt({p}, optim::SGDOptions(0.1));
  optim::StepLR sched(opt, 3, 0.5);
  double want = 0.1;  // get_lr: lr * gamma when e % step_size == 0 (e > 0)
  REQUIRE(opt.lr(0) == want);
  for (int e = 1; e <= 12; ++e) {
    sched.step();
    if (e % 3 == 0) want = want * 0.5;
    INFO("epoch " << e);
    REQUIRE(sched.last_epoch() == e);
    REQUIRE(opt.lr(0) == want);
    REQUIRE(sched.get_last_lr()[0] == want);
    REQUIRE(close(want, 0.1 * std::pow(0.5, e / 3), 1e-15));  // closed form
  }
  sched.step_to(7);  // explicit epoch: closed form
  REQUIRE(opt.lr(0) == 0.1 * 0.25);
}

TEST_CASE("scheduler: CosineAnnealingLR follows PyTorch's recursive form", "[optim]") {
  const double base = 0.1, eta = 0.001;
  const int T = 10;
  Tensor p = param();
  optim::SGD opt({p}, optim::SGDOptions(base));
  optim::CosineAnnealingLR sched(opt, T, eta);
  double lr = base;        // PyTorch's get_lr, with libm's cos
  double lr_exact = base;  // the same expression with sched_cos: must match to the bit
  REQUIRE(opt.lr(0) == base);
  for (int e = 1; e <= 45; ++e) {  // past T and 2T: the restart branch and periodicity
    sched.step();
    if ((e - 1 - T) % (2 * T) == 0) {
      lr = lr + (base - eta) * (1 - std::cos(kPi / T)) / 2;
      lr_exact = lr_exact + (base - eta) * (1 - optim::sched_cos(kPi / T)) / 2;
    } else {
      lr = (1 + std::cos(kPi * e / T)) / (1 + std::cos(kPi * (e - 1) / T)) * (lr - eta) + eta;
      lr_exact = (1 + optim::sched_cos(kPi * e / T)) / (1 + optim::sched_cos(kPi * (e - 1) / T)) * (lr_exact - eta) + eta;
    }
    const double closed = eta + (base - eta) * (1 + std::cos(kPi * e / T)) / 2;
    INFO("epoch " << e << ": got " << opt.lr(0) << ", recursive " << lr << ", closed " << closed);
    REQUIRE(opt.lr(0) == lr_exact);
    REQUIRE(close(opt.lr(0), lr, 1e-13));
    REQUIRE(close(opt.lr(0), closed, 1e-12));  // the two forms agree up to rounding
  }
  REQUIRE(close(opt.lr(0), eta + (base - eta) * (1 + std::cos(kPi * 45 / T)) / 2, 1e-12));
  sched.step_to(5);
  REQUIRE(close(opt.lr(0), eta + (base - eta) / 2, 1e-15));
}

TEST_CASE("scheduler: step() is the recursive form: it continues from an lr set by hand", "[optim]") {
  // PyTorch's get_lr scales the group's current lr; the closed form would ignore the change.
  const double eta = 0.01;
  Tensor a = param(), b = param();
  optim::SGD opt_cos({a}, optim::SGDOptions(1.0));
  optim::CosineAnnealingLR cos(opt_cos, 8, eta);
  optim::SGD opt_step({b}, optim::SGDOptions(1.0));
  optim::StepLR step(opt_step, 2, 0.5);
  for (int e = 1; e <= 3; ++e) cos.step(), step.step();
  opt_cos.set_lr(0, 0.3);
  opt_step.set_lr(0, 0.3);
  cos.step();
  step.step();  // e = 4: a multiple of step_size
  REQUIRE(opt_cos.lr(0) ==
          (1 + optim::sched_cos(kPi * 4 / 8)) / (1 + optim::sched_cos(kPi * 3 / 8)) * (0.3 - eta) + eta);
  REQUIRE(opt_step.lr(0) == 0.3 * 0.5);
  cos.step_to(4);  // the closed form ignores it
  REQUIRE(close(opt_cos.lr(0), eta + (1.0 - eta) / 2, 1e-15));
}

TEST_CASE("scheduler: LinearLR follows PyTorch's recursive and closed forms", "[optim]") {
  const double base = 0.2, sf = 0.25, ef = 1.0;
  const int n = 4;
  Tensor p = param();
  optim::SGD opt({p}, optim::SGDOptions(base));
  optim::LinearLR sched(opt, sf, ef, n);
  double lr = base * sf;
  REQUIRE(opt.lr(0) == lr);
  for (int e = 1; e <= 8; ++e) {
    sched.step();
    if (e <= n) lr = lr * (1.0 + (ef - sf) / (n * sf + (e - 1) * (ef - sf)));
    INFO("epoch " << e);
    REQUIRE(opt.lr(0) == lr);
    REQUIRE(close(lr, base * (sf + (ef - sf) * std::min(n, e) / n), 1e-15));
  }
  REQUIRE(close(opt.lr(0), base, 1e-15));
  // Decaying to end_factor 0 rounds to about -1e-16 * lr at the end (PyTorch keeps that);
  // lockstep sets +0 instead of rejecting a negative lr mid-training.
  Tensor q = param();
  optim::SGD opt0({q}, optim::SGDOptions(1.0));
  optim::LinearLR to_zero(opt0, 0.9, 0.0, 199);
  double raw = 0.9;
  for (int e = 1; e <= 199; ++e) {
    to_zero.step();
    raw = raw * (1.0 + (0.0 - 0.9) / (199 * 0.9 + (e - 1) * (0.0 - 0.9)));
  }
  REQUIRE(raw < 0);
  REQUIRE(opt0.lr(0) == 0.0);
}

TEST_CASE("scheduler: linear warmup then cosine, as SequentialLR composes them", "[optim]") {
  const double base = 0.2, sf = 0.1, eta = 0.001;
  const int warm = 3, total = 13, T = total - warm;
  Tensor p = param();
  optim::SGD opt({p}, optim::SGDOptions(base));
  auto sched = optim::make_warmup_cosine(opt, warm, total, sf, eta);
  // PyTorch's SequentialLR: epochs [0, warm) run LinearLR; at e = warm the cosine restarts
  // with step(0), its closed form at 0; after that its recursive form.
  std::vector<double> want;
  double lr = base * sf;
  want.push_back(lr);
  for (int e = 1; e < warm; ++e) want.push_back(lr = lr * (1.0 + (1.0 - sf) / (warm * sf + (e - 1) * (1.0 - sf))));
  want.push_back(lr = eta + (base - eta) * (1 + std::cos(kPi * 0 / T)) / 2);
  for (int c = 1; c <= total - warm + 4; ++c) {
    if ((c - 1 - T) % (2 * T) == 0) lr = lr + (base - eta) * (1 - std::cos(kPi / T)) / 2;
    else lr = (1 + std::cos(kPi * c / T)) / (1 + std::cos(kPi * (c - 1) / T)) * (lr - eta) + eta;
    want.push_back(lr);
  }
  REQUIRE(opt.lr(0) == want[0]);
  for (size_t e = 1; e < want.size(); ++e) {
    sched->step();
    INFO("epoch " << e << ": got " << opt.lr(0) << ", want " << want[e]);
    REQUIRE(close(opt.lr(0), want[e], 1e-13));
    REQUIRE(sched->get_last_lr()[0] == opt.lr(0));
  }
  REQUIRE(close(want[warm - 1], base * (sf + (1 - sf) * (warm - 1) / warm), 1e-15));  // still warming up
  REQUIRE(close(want[warm], base, 1e-15));                                         // peak
  REQUIRE(close(want[total], eta, 1e-12));                                         // annealed
}

TEST_CASE("scheduler: each parameter group is scheduled from its own base lr", "[optim]") {
  Tensor a = param(), b = param();
  optim::SGD opt({{{a}}, {{b}, optim::SGDOptions(0.01)}}, optim::SGDOptions(0.1));
  optim::CosineAnnealingLR sched(opt, 4);
  REQUIRE(sched.base_lrs() == std::vector<double>{0.1, 0.01});
  sched.step();
  sched.step();  // e = 2 of 4: half way
  REQUIRE(close(opt.lr(0), 0.05, 1e-15));
  REQUIRE(close(opt.lr(1), 0.005, 1e-15));
  REQUIRE(opt.initial_lr(0) == 0.1);
}

TEST_CASE("scheduler: optimizer + scheduler state dicts resume bit for bit", "[optim][deterministic]") {
  auto run = [](optim::SGD& opt, optim::LRScheduler& sched, Tensor& p, int e0, int e1, std::vector<double>& lrs) {
    for (int e = e0; e < e1; ++e) {
      p.set_grad(Tensor::from_vector(lockstep_test::random_floats(2, 50 + e), {2}));
      opt.step();
      sched.step();
      lrs.push_back(opt.lr(0));
    }
  };
  Tensor pa = param();
  optim::SGD opt_a({pa}, optim::SGDOptions(0.3).momentum(0.9));
  auto sched_a = optim::make_warmup_cosine(opt_a, 4, 20, 0.01, 1e-4);
  std::vector<double> lr_a, lr_b;
  run(opt_a, *sched_a, pa, 0, 6, lr_a);
  const StateDict opt_sd = opt_a.state_dict(), sched_sd = sched_a->state_dict();
  REQUIRE(sched_sd.keys() == std::vector<std::string>{"last_epoch", "_last_lr", "_schedulers.0.last_epoch",
                                                      "_schedulers.0._step_count", "_schedulers.0.base_lrs",
                                                      "_schedulers.0._last_lr", "_schedulers.1.last_epoch",
                                                      "_schedulers.1._step_count", "_schedulers.1.base_lrs",
                                                      "_schedulers.1._last_lr"});
  REQUIRE(opt_sd.at("param_groups.0.initial_lr").item() == 0.3);
  // A fresh run: build, then load the optimizer and then the scheduler (PyTorch's order).
  Tensor pb = Tensor::from_vector(pa.to_vector<float>(), {2});
  pb.set_requires_grad(true);
  optim::SGD opt_b({pb}, optim::SGDOptions(0.3).momentum(0.9));
  auto sched_b = optim::make_warmup_cosine(opt_b, 4, 20, 0.01, 1e-4);
  opt_b.load_state_dict(opt_sd);
  sched_b->load_state_dict(sched_sd);
  REQUIRE(opt_b.lr(0) == opt_a.lr(0));
  run(opt_a, *sched_a, pa, 6, 25, lr_a);
  run(opt_b, *sched_b, pb, 6, 25, lr_b);
  REQUIRE_BITWISE_EQUAL(std::vector<double>(lr_a.begin() + 6, lr_a.end()), lr_b);
  REQUIRE(equal_bits(pa, pb));
  // checked loading: a missing key is named, nothing changes
  StateDict bad;
  for (auto& kv : sched_sd.items())
    if (kv.first != "_schedulers.1._step_count") bad.insert(kv.first, kv.second);
  const int64_t before = sched_b->last_epoch();
  REQUIRE_THROWS_WITH(sched_b->load_state_dict(bad), Contains("_schedulers.1") && Contains("'_step_count'"));
  REQUIRE(sched_b->last_epoch() == before);
  StateDict extra = sched_a->state_dict();
  extra.insert("T_max", Tensor::scalar(3.0, DType::i64));
  REQUIRE_THROWS_WITH(sched_b->load_state_dict(extra), Contains("unexpected key 'T_max'"));
}

TEST_CASE("scheduler: bad arguments throw naming them", "[optim]") {
  Tensor p = param();
  optim::SGD opt({p}, optim::SGDOptions(0.1));
  REQUIRE_THROWS_WITH(optim::StepLR(opt, 0), Contains("[StepLR] expected step_size >= 1, got 0"));
  REQUIRE_THROWS_WITH(optim::StepLR(opt, 2, -0.5), Contains("gamma"));
  REQUIRE_THROWS_WITH(optim::CosineAnnealingLR(opt, 0), Contains("T_max >= 1"));
  REQUIRE_THROWS_WITH(optim::CosineAnnealingLR(opt, 5, -1.0), Contains("eta_min"));
  REQUIRE_THROWS_WITH(optim::LinearLR(opt, 0.0), Contains("start_factor in (0, 1]"));
  REQUIRE_THROWS_WITH(optim::LinearLR(opt, 0.5, 1.5), Contains("end_factor in [0, 1]"));
  REQUIRE_THROWS_WITH(optim::LinearLR(opt, 0.5, 1.0, 0), Contains("total_iters"));
  auto a = std::make_shared<optim::StepLR>(opt, 2);
  REQUIRE_THROWS_WITH(optim::SequentialLR(opt, {a, a}, {}), Contains("milestones"));
  REQUIRE_THROWS_WITH(optim::make_warmup_cosine(opt, 5, 5), Contains("warmup_iters < total_iters"));
  Tensor q = param();
  optim::SGD other({q}, optim::SGDOptions(0.1));
  auto b = std::make_shared<optim::StepLR>(other, 2);
  REQUIRE_THROWS_WITH(optim::SequentialLR(opt, {a, b}, {3}), Contains("same optimizer"));
}
