// Tensor: creation, views, copies, conversions, devices and the error messages.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "base/parallel.h"
#include "core/tensor.h"
#include "kernels/memory.h"
#include "test_util.h"

using namespace lockstep;
using Catch::Contains;

TEST_CASE("tensor: creation and properties", "[tensor]") {
  Tensor t = Tensor::zeros({2, 3, 4});
  REQUIRE(t.dim() == 3);
  REQUIRE(t.numel() == 24);
  REQUIRE(t.size(-1) == 4);
  REQUIRE(t.dtype() == DType::f32);
  REQUIRE(t.device() == Device::cpu);
  REQUIRE(t.is_contiguous());
  REQUIRE(t.strides() == Shape{12, 4, 1});
  REQUIRE(t.str() == "float32 2x3x4 cpu");
  for (float x : t.to_vector<float>()) REQUIRE(x == 0.0f);

  Tensor s = Tensor::scalar(3.5, DType::f64);
  REQUIRE(s.dim() == 0);
  REQUIRE(s.numel() == 1);
  REQUIRE(s.item() == 3.5);

  Tensor e = Tensor::empty({0, 5});
  REQUIRE(e.numel() == 0);
  REQUIRE(e.to_vector<float>().empty());

  Tensor r = Tensor::arange(5, DType::i64);
  REQUIRE(r.to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2, 3, 4});
  REQUIRE(Tensor::full({2}, -0.0).to_vector<float>()[0] == 0.0f);
  REQUIRE(std::signbit(Tensor::full({2}, -0.0).to_vector<float>()[1]));
}

TEST_CASE("tensor: copies alias, clone is deep", "[tensor]") {
  Tensor a = Tensor::from_vector({1.f, 2.f, 3.f}, {3});
  Tensor alias = a;
  Tensor deep = a.clone();
  a.data<float>()[0] = 42.f;
  REQUIRE(alias.data<float>()[0] == 42.f);
  REQUIRE(deep.data<float>()[0] == 1.f);
  REQUIRE(alias.same_storage(a));
  REQUIRE_FALSE(deep.same_storage(a));
}

TEST_CASE("tensor: reshape, transpose and contiguous", "[tensor]") {
  Tensor a = Tensor::from_vector({1.f, 2.f, 3.f, 4.f, 5.f, 6.f}, {2, 3});
  Tensor r = a.reshape({3, -1});
  REQUIRE(r.shape() == Shape{3, 2});
  REQUIRE(r.same_storage(a));
  Tensor t = a.t();
  REQUIRE(t.shape() == Shape{3, 2});
  REQUIRE_FALSE(t.is_contiguous());
  REQUIRE(t.contiguous().to_vector<float>() == std::vector<float>{1, 4, 2, 5, 3, 6});
  REQUIRE(t.to_vector<float>() == std::vector<float>{1, 4, 2, 5, 3, 6});
  REQUIRE(t.t().is_contiguous());
  // reshape of a strided view copies
  REQUIRE(t.reshape({6}).to_vector<float>() == std::vector<float>{1, 4, 2, 5, 3, 6});
}

// contiguous() of permuted, transposed and sliced-by-stride views, against an index loop:
// inner runs that are contiguous (memcpy) and strided, float32 / float64 / int64 / uint8,
// a view copied onto its own base, and empty and 0-d views.
TEST_CASE("tensor: strided copies equal an index loop", "[tensor]") {
  const Shape base_shape{3, 4, 5, 6};
  std::vector<double> vals(3 * 4 * 5 * 6);
  for (size_t i = 0; i < vals.size(); ++i) vals[i] = static_cast<double>((i * 37) % 251);  // exact in every dtype
  const std::vector<std::vector<int64_t>> perms = {{0, 2, 1, 3}, {3, 2, 1, 0}, {1, 0, 3, 2}, {0, 1, 3, 2}};
  for (DType dt : {DType::f32, DType::f64, DType::i64, DType::u8}) {
    Tensor a = Tensor::from_vector(vals, base_shape).to(dt);
    Tensor ad = a.to(DType::f64);
    const std::vector<double> av = ad.to_vector<double>();
    for (const auto& p : perms) {
      Tensor v = a.permute(p);
      REQUIRE_FALSE(v.is_contiguous());
      std::vector<double> got = v.contiguous().to(DType::f64).to_vector<double>();
      std::vector<double> want;
      const Shape& s = v.shape();
      const Shape& st = v.strides();
      for (int64_t i = 0; i < s[0]; ++i)
        for (int64_t j = 0; j < s[1]; ++j)
          for (int64_t k = 0; k < s[2]; ++k)
            for (int64_t l = 0; l < s[3]; ++l) want.push_back(av[i * st[0] + j * st[1] + k * st[2] + l * st[3]]);
      INFO(dtype_name(dt) << " permute " << p[0] << p[1] << p[2] << p[3]);
      REQUIRE(got == want);
    }
  }
  // Large enough for several threads' row ranges (each starts its own odometer).
  {
    std::vector<float> big(64 * 32 * 16 * 9);
    for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<float>(i);
    Tensor b = Tensor::from_vector(big, {64, 32, 16, 9});
    for (int threads : {1, 3}) {
      ThreadsGuard tg(threads);
      for (const auto& p : perms) {
        const Tensor v = b.permute(p);
        const std::vector<float> got = v.contiguous().to_vector<float>();
        const Shape& s = v.shape();
        const Shape& st = v.strides();
        size_t n = 0;
        bool same = true;
        for (int64_t i = 0; i < s[0]; ++i)
          for (int64_t j = 0; j < s[1]; ++j)
            for (int64_t k = 0; k < s[2]; ++k)
              for (int64_t l = 0; l < s[3]; ++l)
                same = same && got[n++] == big[i * st[0] + j * st[1] + k * st[2] + l * st[3]];
        INFO("threads " << threads << " permute " << p[0] << p[1] << p[2] << p[3]);
        REQUIRE(same);
      }
    }
  }
  // Copied onto its own storage: the square transpose of a 4 x 4 into itself.
  Tensor sq = Tensor::from_vector(std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, {4, 4});
  sq.copy_(sq.t());
  REQUIRE(sq.to_vector<float>() == std::vector<float>{0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15});
  // Empty views copy nothing.
  Tensor e = Tensor::zeros({0, 3}).t();
  REQUIRE(e.contiguous().numel() == 0);
}

TEST_CASE("tensor: dtype conversions", "[tensor]") {
  Tensor a = Tensor::from_vector({1.5f, -2.25f, 3.0f}, {3});
  REQUIRE(a.to(DType::f64).to_vector<double>() == std::vector<double>{1.5, -2.25, 3.0});
  REQUIRE(a.to(DType::i64).to_vector<int64_t>() == std::vector<int64_t>{1, -2, 3});
  Tensor u = Tensor::from_vector(std::vector<uint8_t>{0, 128, 255}, {3});
  REQUIRE(u.to(DType::f32).to_vector<float>() == std::vector<float>{0.f, 128.f, 255.f});
  REQUIRE(a.to(DType::f32).same_storage(a));
}

TEST_CASE("tensor: equal_bits and hash_hex", "[tensor]") {
  Tensor a = Tensor::from_vector({0.0f, 1.0f}, {2});
  Tensor b = Tensor::from_vector({-0.0f, 1.0f}, {2});
  REQUIRE(equal_bits(a, a.clone()));
  REQUIRE_FALSE(equal_bits(a, b));  // -0 and +0 compare equal as numbers, not as bits
  REQUIRE(hash_hex(a) == hash_hex(a.clone()));
  REQUIRE(hash_hex(a) != hash_hex(b));
  REQUIRE(hash_hex(a).size() == 16);
  REQUIRE_FALSE(equal_bits(a, a.reshape({1, 2})));
}

TEST_CASE("tensor: bad input throws with the op and what was expected", "[tensor][errors]") {
  REQUIRE_THROWS_WITH(Tensor::from_vector({1.f, 2.f}, {3}), Contains("[from_vector]") && Contains("expected 3 values"));
  REQUIRE_THROWS_WITH(Tensor::zeros({2, -1}), Contains("non-negative"));
  Tensor a = Tensor::zeros({2, 3});
  REQUIRE_THROWS_WITH(a.reshape({4, 2}), Contains("[reshape]") && Contains("2x3"));
  REQUIRE_THROWS_WITH(a.reshape({-1, -1}), Contains("only one dim"));
  REQUIRE_THROWS_WITH(a.data<double>(), Contains("[data]") && Contains("float64") && Contains("float32"));
  REQUIRE_THROWS_WITH(a.size(2), Contains("[size]"));
  REQUIRE_THROWS_WITH(a.transpose(0, 5), Contains("[transpose]"));
  REQUIRE_THROWS_WITH(a.item(), Contains("[item]") && Contains("2x3"));
  Tensor b = Tensor::zeros({3, 2});
  REQUIRE_THROWS_WITH(a.copy_(b), Contains("[copy_]") && Contains("2x3") && Contains("3x2"));
  REQUIRE_THROWS_WITH(Tensor().shape(), Contains("undefined"));
  REQUIRE_THROWS_AS(Tensor::zeros({1, 2, 3, 4, 5, 6, 7, 8, 9}), std::invalid_argument);
}

TEST_CASE("tensor: CUDA requests fail cleanly without a device", "[tensor][errors]") {
  if (cuda_device_available()) {
    WARN("a CUDA device is present; the no-device path is covered by CPU-only machines");
    REQUIRE(Tensor::zeros({2}).to(Device::cuda).device() == Device::cuda);
    return;
  }
  REQUIRE_THROWS_AS(Tensor::zeros({2}, DType::f32, Device::cuda), std::runtime_error);
  REQUIRE_THROWS_AS(Tensor::zeros({2}).to(Device::cuda), std::runtime_error);
}

TEST_CASE("tensor: shapes whose element, stride or byte counts overflow are rejected", "[tensor][errors]") {
  const int64_t big = int64_t{1} << 32;
  // no elements, but the strides 2^64 and 2^32 do not fit in int64
  REQUIRE_THROWS_WITH(Tensor::empty({0, big, big}), Catch::Contains("[empty]") && Catch::Contains("too large"));
  REQUIRE_THROWS_WITH(Tensor::empty({big, big}), Catch::Contains("[empty]") && Catch::Contains("too large"));
  // 2^61 float64 elements fit in int64, their 2^64 bytes do not
  REQUIRE_THROWS_WITH(Tensor::empty({int64_t{1} << 61}, DType::f64),
                      Catch::Contains("[empty]") && Catch::Contains("byte count"));
  REQUIRE_THROWS_WITH(shape_numel({big, big}), Catch::Contains("more elements than an int64 holds"));
}

TEST_CASE("host memory: aligned, a freed block of a size is handed out again, never twice", "[tensor]") {
  const char* env = std::getenv("LOCKSTEP_HOST_CACHE");
  const bool cached = host_cache_enabled();
  if (env && std::string(env) == "0") REQUIRE_FALSE(cached);
  const size_t n = 100 * 1024 + 3;
  void* a = host_alloc(n);
  void* b = host_alloc(n);
  REQUIRE(a != b);
  REQUIRE(reinterpret_cast<uintptr_t>(a) % 64 == 0);
  REQUIRE(reinterpret_cast<uintptr_t>(b) % 64 == 0);
  std::memset(a, 1, n);
  std::memset(b, 2, n);
  host_free(a);
  void* c = host_alloc(n);  // a's block from the cache (mapped already); b is still in use
  REQUIRE(c != b);
  if (cached) REQUIRE(c == a);
  REQUIRE(static_cast<unsigned char*>(b)[n - 1] == 2);
  void* small = host_alloc(10);  // below the cached sizes: plain malloc, still aligned
  REQUIRE(reinterpret_cast<uintptr_t>(small) % 64 == 0);
  host_free(small);
  host_free(b);
  host_free(c);
  // Past the cache's 64 MiB the cache is emptied, not grown: 12 blocks of 8 MiB come and go.
  std::vector<void*> big;
  for (int i = 0; i < 12; ++i) big.push_back(host_alloc(size_t{8} << 20));
  for (void* p : big) host_free(p);
  host_free(nullptr);
}
