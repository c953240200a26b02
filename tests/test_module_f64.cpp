// Modules in float64: to(DType::f64) converts parameters and floating buffers in place, the
// forward runs in float64 (close to the float32 one), gradients match finite differences,
// state dicts round-trip in float64, and a float64 dict refuses to load into a float32
// model (and back) naming the key and both dtypes.
#include <catch2/catch.hpp>

#include <cmath>

#include "core/autograd.h"
#include "core/random.h"
#include "gradcheck.h"
#include "nn/nn.h"
#include "test_util.h"

using namespace lockstep;
using namespace lockstep::nn;
using Catch::Contains;

namespace {

// Linear, BatchNorm1d, ReLU, Dropout, Linear, SyncBatchNorm (no sync: plain BatchNorm1d).
std::shared_ptr<Sequential> net(uint64_t seed, bool dropout = true) {
  auto m = std::make_shared<Sequential>(std::make_shared<Linear>(6, 5), std::make_shared<BatchNorm1d>(5),
                                        std::make_shared<ReLU>());
  if (dropout) m->push_back(std::make_shared<Dropout>(0.3));
  m->push_back(std::make_shared<Linear>(5, 3));
  m->push_back(std::make_shared<SyncBatchNorm>(3, nullptr));
  m->reset_parameters(seed);
  return m;
}

Tensor input(DType dtype) {
  Tensor x = Tensor::empty({8, 6});
  fill_uniform(x, -1.0, 1.0, 11, 3);
  return x.to(dtype);
}

}  // namespace

TEST_CASE("module f64: to(f64) converts parameters and floating buffers, keeping identity", "[module][f64]") {
  auto m = net(1);
  Tensor w = m->state_dict().at("0.weight");  // a handle held across the conversion
  const std::vector<float> w32 = w.to_vector<float>();
  m->to(DType::f64);
  REQUIRE(m->dtype() == DType::f64);
  REQUIRE(w.dtype() == DType::f64);  // the same tensor, converted
  const std::vector<double> w64 = w.to_vector<double>();
  for (size_t i = 0; i < w32.size(); ++i) REQUIRE(w64[i] == static_cast<double>(w32[i]));
  const StateDict sd = m->state_dict();  // items() refers into it: keep it alive
  for (const auto& [key, t] : sd.items()) {
    INFO(key);
    REQUIRE(t.dtype() == (key.find("num_batches_tracked") != std::string::npos ? DType::i64 : DType::f64));
  }
  for (auto& p : m->parameters()) REQUIRE(p.requires_grad());
  REQUIRE_THROWS_WITH(m->to(DType::i64), Contains("expected float32 or float64"));
  m->to(DType::f32);
  REQUIRE(equal_bits(w, Tensor::from_vector(w32, w.shape())));  // f32 -> f64 -> f32 is exact
}

TEST_CASE("module f64: the float64 forward equals the float32 one within tolerance", "[module][f64]") {
  auto a = net(7), b = net(7);
  b->to(DType::f64);
  for (int step = 0; step < 3; ++step) {  // train mode: batch statistics and the same Dropout masks
    const std::vector<float> ya = a->forward(input(DType::f32)).to_vector<float>();
    Tensor yb_t = b->forward(input(DType::f64));
    REQUIRE(yb_t.dtype() == DType::f64);
    const std::vector<double> yb = yb_t.to_vector<double>();
    for (size_t i = 0; i < ya.size(); ++i) {
      INFO("step " << step << " element " << i << ": f32 " << ya[i] << ", f64 " << yb[i]);
      REQUIRE(std::fabs(ya[i] - yb[i]) <= 1e-5 + 1e-4 * std::fabs(yb[i]));
    }
  }
  a->eval(), b->eval();  // and with the running statistics both have accumulated
  const std::vector<float> ya = a->forward(input(DType::f32)).to_vector<float>();
  const std::vector<double> yb = b->forward(input(DType::f64)).to_vector<double>();
  for (size_t i = 0; i < ya.size(); ++i) REQUIRE(std::fabs(ya[i] - yb[i]) <= 1e-5 + 1e-4 * std::fabs(yb[i]));
}

TEST_CASE("module f64: parameter and input gradients match central finite differences", "[module][f64]") {
  auto m = net(3, /*dropout=*/false);  // a Dropout would draw a new mask at every evaluation
  m->to(DType::f64);
  Tensor x = input(DType::f64);
  x.set_requires_grad(true);
  Tensor target = Tensor::empty({8, 3}, DType::f64);
  fill_uniform(target, -1.0, 1.0, 12, 4);
  std::vector<Tensor> inputs = m->parameters();
  inputs.push_back(x);
  lockstep_test::gradcheck([&](const std::vector<Tensor>& in) { return mse_loss(m->forward(in.back()), target); },
                           inputs);
}

TEST_CASE("module f64: state dicts round-trip in float64 and dtype mismatches are refused", "[module][f64][errors]") {
  auto a = net(4), b = net(5);
  a->to(DType::f64), b->to(DType::f64);
  a->forward(input(DType::f64));  // running statistics and num_batches_tracked move
  b->load_state_dict(a->state_dict());
  const StateDict sa = a->state_dict(), sb = b->state_dict();
  REQUIRE(sa.keys() == sb.keys());
  for (const auto& kv : sa.items()) REQUIRE(equal_bits(kv.second, sb.at(kv.first)));

  // float64 weights into a float32 model, and float32 into float64: nothing changes.
  auto c = net(6);
  const Tensor before = c->state_dict().at("0.weight").clone();
  REQUIRE_THROWS_WITH(c->load_state_dict(sa), Contains("[load_state_dict]") &&
                                                  Contains("'0.weight': expected float32, got float64") &&
                                                  Contains("Nothing was loaded"));
  REQUIRE(equal_bits(c->state_dict().at("0.weight"), before));
  const StateDict sc = c->state_dict();
  REQUIRE_THROWS_WITH(b->load_state_dict(sc), Contains("'1.running_var': expected float64, got float32"));
  REQUIRE(equal_bits(b->state_dict().at("0.weight"), sa.at("0.weight")));
}
