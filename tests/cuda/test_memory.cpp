// Device memory: host -> device -> host round trips keep every byte.
#include <catch2/catch.hpp>

#include "core/tensor.h"
#include "test_util.h"

using namespace lockstep;

TEST_CASE("cuda: to(cuda) and back keeps every byte", "[cuda][memory]") {
  for (int64_t n : {0, 1, 3, 4097, 1 << 20}) {
    auto v = lockstep_test::random_floats(static_cast<size_t>(n), 7);
    Tensor h = Tensor::from_vector(v, {n});
    Tensor d = h.to(Device::cuda);
    REQUIRE(d.device() == Device::cuda);
    REQUIRE(d.shape() == h.shape());
    Tensor back = d.to(Device::cpu);
    REQUIRE(equal_bits(h, back));
    Tensor d2 = d.clone();  // device-to-device
    REQUIRE(equal_bits(d2.to(Device::cpu), h));
  }
}

TEST_CASE("cuda: zeros and full on the device", "[cuda][memory]") {
  Tensor z = Tensor::zeros({17, 3}, DType::f32, Device::cuda);
  auto v = z.to(Device::cpu).to_vector<float>();
  for (float x : v) REQUIRE(x == 0.0f);
  Tensor f = Tensor::full({5}, 2.5, DType::f64, Device::cuda);
  for (double x : f.to_vector<double>()) REQUIRE(x == 2.5);
}
