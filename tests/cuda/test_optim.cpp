// CUDA optimizer updates and gradient-norm clipping against the CPU, bit for bit: SGD
// (momentum, dampening, Nesterov, weight decay), Adam, AdamW and AMSGrad over several
// steps, and clip_grad_norm_ with norms 1, 2 and inf.
#include <catch2/catch.hpp>

#include <cstring>
#include <limits>
#include <memory>

#include "cuda_test_util.h"
#include "optim/adam.h"
#include "optim/clip.h"
#include "optim/sgd.h"

using namespace lockstep;
using namespace lockstep_cuda_test;

namespace {

// Parameters of awkward sizes, the same values on both devices.
std::vector<Tensor> make_params(Device device) {
  std::vector<Tensor> ps;
  uint32_t seed = 10;
  for (int64_t n : {1, 7, 129, 4097, 100003}) {
    Tensor p = Tensor::from_vector(lockstep_test::random_floats(static_cast<size_t>(n), seed++), {n}).to(device);
    p.set_requires_grad();
    ps.push_back(p);
  }
  return ps;
}

// Gradients of step k, the same on both devices.
void set_grads(std::vector<Tensor>& ps, int k) {
  for (size_t i = 0; i < ps.size(); ++i) {
    const int64_t n = ps[i].numel();
    auto g = lockstep_test::random_floats(static_cast<size_t>(n), static_cast<uint32_t>(100 * k + i), -2.f, 2.f);
    ps[i].set_grad(Tensor::from_vector(g, {n}).to(ps[i].device()));
  }
}

template <typename MakeOpt>
void same_steps(MakeOpt make) {
  auto pc = make_params(Device::cpu), pg = make_params(Device::cuda);
  auto oc = make(pc), og = make(pg);
  for (int k = 0; k < 4; ++k) {
    set_grads(pc, k);
    set_grads(pg, k);
    oc->step();
    og->step();
    for (size_t i = 0; i < pc.size(); ++i) {
      INFO("step " << k << " parameter " << i);
      REQUIRE(equal_bits(pc[i], pg[i]));
    }
  }
}

}  // namespace

TEST_CASE("cuda optim: SGD steps equal the CPU", "[cuda][optim][deterministic]") {
  same_steps([](std::vector<Tensor>& ps) { return std::make_unique<optim::SGD>(ps, optim::SGDOptions(0.1)); });
  same_steps([](std::vector<Tensor>& ps) {
    return std::make_unique<optim::SGD>(ps, optim::SGDOptions(0.05).momentum(0.9).dampening(0.1).weight_decay(1e-3));
  });
  same_steps([](std::vector<Tensor>& ps) {
    return std::make_unique<optim::SGD>(ps, optim::SGDOptions(0.05).momentum(0.9).nesterov(true));
  });
}

TEST_CASE("cuda optim: Adam, AdamW and AMSGrad steps equal the CPU", "[cuda][optim][deterministic]") {
  same_steps([](std::vector<Tensor>& ps) { return std::make_unique<optim::Adam>(ps, optim::AdamOptions(1e-2)); });
  same_steps([](std::vector<Tensor>& ps) {
    return std::make_unique<optim::Adam>(ps, optim::AdamOptions(1e-2).weight_decay(0.1).amsgrad(true));
  });
  same_steps([](std::vector<Tensor>& ps) { return std::make_unique<optim::AdamW>(ps, optim::AdamWOptions(3e-3)); });
}

TEST_CASE("cuda optim: clip_grad_norm_ equals the CPU for norms 1, 2 and inf", "[cuda][optim][deterministic]") {
  for (double norm : {1.0, 2.0, std::numeric_limits<double>::infinity()}) {
    auto pc = make_params(Device::cpu), pg = make_params(Device::cuda);
    set_grads(pc, 1);
    set_grads(pg, 1);
    const double tc = optim::clip_grad_norm_(pc, 0.5, norm), tg = optim::clip_grad_norm_(pg, 0.5, norm);
    INFO("norm " << norm);
    REQUIRE(std::memcmp(&tc, &tg, sizeof tc) == 0);
    for (size_t i = 0; i < pc.size(); ++i) REQUIRE(equal_bits(pc[i].grad(), pg[i].grad()));
  }
}
