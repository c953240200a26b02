// Modules: PyTorch state-dict names, train/eval propagation, load_state_dict errors that
// leave the model unchanged, keyed initialisation.
#include <catch2/catch.hpp>

#include <cmath>

#include "nn/activation.h"
#include "nn/linear.h"
#include "nn/sequential.h"
#include "test_util.h"

using namespace lockstep;
using namespace lockstep::nn;
using Catch::Contains;

namespace {
std::shared_ptr<Sequential> mlp(uint64_t seed) {
  auto m = std::make_shared<Sequential>(std::make_shared<Linear>(8, 6), std::make_shared<ReLU>(),
                                        std::make_shared<Linear>(6, 3));
  m->reset_parameters(seed);
  return m;
}
}  // namespace

TEST_CASE("module: state dict keys follow PyTorch", "[module]") {
  auto m = mlp(1);
  REQUIRE(m->state_dict().keys() == std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"});
  REQUIRE(m->parameters().size() == 4);
  for (auto& p : m->parameters()) REQUIRE(p.requires_grad());
  REQUIRE(m->describe().find("(0): Linear(in_features=8, out_features=6, bias=True)") != std::string::npos);
}

TEST_CASE("module: train/eval propagates to children", "[module]") {
  auto m = mlp(1);
  REQUIRE(m->is_training());
  m->eval();
  for (auto& c : m->children()) REQUIRE_FALSE(c.second->is_training());
  m->train();
  for (auto& c : m->children()) REQUIRE(c.second->is_training());
}

TEST_CASE("module: initialisation is a function of (seed, name) only", "[module][deterministic]") {
  auto a = mlp(7), b = mlp(7), c = mlp(8);
  REQUIRE(equal_bits(a->state_dict().at("0.weight"), b->state_dict().at("0.weight")));
  REQUIRE_FALSE(equal_bits(a->state_dict().at("0.weight"), c->state_dict().at("0.weight")));
  // a model with an extra layer in front keeps the values of a layer with the same name
  auto d = std::make_shared<Sequential>(std::make_shared<Linear>(8, 6), std::make_shared<Tanh>(),
                                        std::make_shared<Linear>(6, 3), std::make_shared<Linear>(3, 3));
  d->reset_parameters(7);
  REQUIRE(equal_bits(a->state_dict().at("2.weight"), d->state_dict().at("2.weight")));
  // PyTorch's default bound 1/sqrt(fan_in)
  auto w = a->state_dict().at("0.weight").to_vector<float>();
  float bound = static_cast<float>(1.0 / std::sqrt(8.0));
  float lo = 1, hi = -1;
  for (float x : w) lo = std::min(lo, x), hi = std::max(hi, x);
  REQUIRE(lo >= -bound);
  REQUIRE(hi < bound);
  REQUIRE(hi - lo > bound);  // actually spread over the range
}

TEST_CASE("module: load_state_dict copies values, bad dicts change nothing", "[module][errors]") {
  auto a = mlp(1), b = mlp(2);
  b->load_state_dict(a->state_dict());
  for (auto& k : a->state_dict().keys()) REQUIRE(equal_bits(a->state_dict().at(k), b->state_dict().at(k)));

  auto c = mlp(3);
  Tensor before = c->state_dict().at("0.weight").clone();
  StateDict wrong_shape;
  const StateDict a_sd = a->state_dict();
  for (auto& kv : a_sd.items())
    wrong_shape.insert(kv.first, kv.first == "2.bias" ? Tensor::zeros({4}) : kv.second);
  REQUIRE_THROWS_WITH(c->load_state_dict(wrong_shape), Contains("'2.bias'") && Contains("expected float32 3") &&
                                                           Contains("Nothing was loaded"));
  REQUIRE(equal_bits(c->state_dict().at("0.weight"), before));

  StateDict missing;
  missing.insert("0.weight", a->state_dict().at("0.weight"));
  REQUIRE_THROWS_WITH(c->load_state_dict(missing), Contains("missing keys: 0.bias, 2.weight, 2.bias"));
  REQUIRE(equal_bits(c->state_dict().at("0.weight"), before));
  c->load_state_dict(missing, /*strict=*/false);
  REQUIRE(equal_bits(c->state_dict().at("0.weight"), a->state_dict().at("0.weight")));

  StateDict extra = a->state_dict();
  extra.insert("5.weight", Tensor::zeros({1}));
  REQUIRE_THROWS_WITH(c->load_state_dict(extra), Contains("unexpected keys: 5.weight"));
  REQUIRE_THROWS_WITH(extra.insert("5.weight", Tensor::zeros({1})), Contains("duplicate key"));
}

TEST_CASE("module: bad constructor arguments", "[module][errors]") {
  REQUIRE_THROWS_WITH(Linear(0, 3), Contains("[Linear]"));
}
