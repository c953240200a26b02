// Device memory: host -> device -> host round trips keep every byte.
#include <catch2/catch.hpp>

#include <cmath>
#include <stdexcept>

#include "core/tensor.h"
#include "kernels/memory.h"
#include "nn/models.h"
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

TEST_CASE("cuda: the caching allocator reuses freed blocks", "[cuda][memory]") {
  { Tensor warm = Tensor::empty({1000}, DType::f32, Device::cuda); }
  const CudaMemoryStats before = cuda_memory_stats();
  for (int i = 0; i < 100; ++i) {
    Tensor t = Tensor::empty({1000}, DType::f32, Device::cuda);  // one bucket, freed each time
    REQUIRE(t.device() == Device::cuda);
  }
  const CudaMemoryStats after = cuda_memory_stats();
  REQUIRE(after.device_mallocs == before.device_mallocs);  // no cudaMalloc per tensor
  REQUIRE(after.cache_hits >= before.cache_hits + 100);
  REQUIRE(after.bytes_in_use == before.bytes_in_use);
  cuda_empty_cache();
  REQUIRE(cuda_memory_stats().bytes_cached == 0);
}

TEST_CASE("cuda: fill_ writes every dtype on the device", "[cuda][memory]") {
  Tensor a = Tensor::full({7}, -1.5, DType::f64, Device::cuda);
  for (double x : a.to_vector<double>()) REQUIRE(x == -1.5);
  Tensor b = Tensor::full({9}, 42, DType::i64, Device::cuda);
  for (int64_t x : b.to_vector<int64_t>()) REQUIRE(x == 42);
  Tensor c = Tensor::full({3}, 1, DType::u8, Device::cuda);
  for (uint8_t x : c.to_vector<uint8_t>()) REQUIRE(x == 1);
  Tensor d = Tensor::full({5}, -0.0, DType::f32, Device::cuda);
  for (float x : d.to_vector<float>()) REQUIRE(std::signbit(x));
}

TEST_CASE("cuda: a failing call names the call, the error and the place", "[cuda][memory]") {
  // An impossible allocation: the message carries the CUDA call and file:line.
  try {
    cuda_alloc(size_t(1) << 62);
    FAIL("expected an exception");
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    INFO(msg);
    REQUIRE(msg.find("[cuda] cudaMalloc") != std::string::npos);
    REQUIRE(msg.find("memory_cuda.cu:") != std::string::npos);
  }
}

TEST_CASE("cuda: Module::to moves parameters in place", "[cuda][memory]") {
  auto model = nn::make_mlp(1);
  Tensor w = model->parameters()[0];  // another handle to the same tensor
  model->to(Device::cuda);
  REQUIRE(w.device() == Device::cuda);
  for (auto& b : model->named_buffers())
    REQUIRE(b.second.device() == (is_floating(b.second.dtype()) ? Device::cuda : Device::cpu));
}

TEST_CASE("cuda: strided device views are packed on the device", "[cuda][memory]") {
  auto v = lockstep_test::random_floats(3 * 17 * 129, 5);
  Tensor h = Tensor::from_vector(v, {3, 17, 129});
  Tensor d = h.to(Device::cuda);
  for (auto dims : {std::pair<int64_t, int64_t>{0, 1}, {1, 2}, {0, 2}}) {
    Tensor ht = h.transpose(dims.first, dims.second), dt = d.transpose(dims.first, dims.second);
    REQUIRE_FALSE(dt.is_contiguous());
    Tensor packed = dt.contiguous();
    REQUIRE(packed.device() == Device::cuda);
    REQUIRE(equal_bits(packed, ht.contiguous()));
    REQUIRE(equal_bits(dt.to(Device::cpu), ht.contiguous()));  // straight to the host too
  }
  Tensor l = Tensor::from_vector(std::vector<int64_t>{1, 2, 3, 4, 5, 6}, {2, 3});
  REQUIRE(equal_bits(l.to(Device::cuda).t().contiguous(), l.t().contiguous()));
}
