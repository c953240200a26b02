// Augmentations: each one against a plain reference, keyed only by (seed, epoch, index),
// and with the documented Philox draws.
#include <catch2/catch.hpp>

#include <cmath>
#include <set>

#include "core/random.h"
#include "data/dataset.h"
#include "data/transforms.h"
#include "base/philox.h"
#include "test_util.h"

using namespace lockstep;
using namespace lockstep::data;

namespace {

Tensor test_image(int64_t c, int64_t h, int64_t w) {
  return Tensor::from_vector(lockstep_test::random_floats(static_cast<size_t>(c * h * w), 3, 0.1f, 1.f), {c, h, w});
}

// Pads with zeros, then cuts the window at (dy, dx) of the padded image.
std::vector<float> crop_reference(const Tensor& img, int64_t pad, int64_t dy, int64_t dx) {
  const int64_t C = img.size(0), H = img.size(1), W = img.size(2);
  const float* x = img.data<float>();
  std::vector<float> out;
  for (int64_t c = 0; c < C; ++c)
    for (int64_t y = 0; y < H; ++y)
      for (int64_t xx = 0; xx < W; ++xx) {
        int64_t sy = y + dy - pad, sx = xx + dx - pad;
        out.push_back(sy >= 0 && sy < H && sx >= 0 && sx < W ? x[(c * H + sy) * W + sx] : 0.0f);
      }
  return out;
}

}  // namespace

TEST_CASE("transforms: random crop is the padded window at the documented offset", "[data][deterministic]") {
  const int64_t pad = 2;
  Tensor img = test_image(2, 5, 6);
  RandomCrop crop(pad);
  const uint64_t stream = stream_id("augment:crop");
  std::set<std::pair<int64_t, int64_t>> offsets;
  for (uint64_t index = 0; index < 300; ++index) {
    SampleKey key{9, 1, index};
    const uint64_t base = ((uint64_t{1} << 32) + index) * 2;
    int64_t dy = uniform_below(5, 9, stream, base), dx = uniform_below(5, 9, stream, base + 1);
    offsets.insert({dy, dx});
    REQUIRE_BITWISE_EQUAL(augment(crop, img, key).to_vector<float>(), crop_reference(img, pad, dy, dx));
  }
  REQUIRE(offsets.size() == 25);  // every window position occurs
  REQUIRE(equal_bits(augment(RandomCrop(0), img, {9, 1, 0}), img));
  // A pad wider than the image still works: windows can be all zeros.
  Tensor tiny = test_image(1, 2, 2);
  for (uint64_t i = 0; i < 50; ++i) REQUIRE(augment(RandomCrop(5), tiny, {1, 0, i}).numel() == 4);
  REQUIRE_THROWS_AS(augment(crop, Tensor::ones({7}), {}), std::invalid_argument);
  REQUIRE_THROWS_AS(RandomCrop(-1), std::invalid_argument);
}

TEST_CASE("transforms: horizontal flip", "[data][deterministic]") {
  Tensor img = test_image(3, 4, 5);
  std::vector<float> mirrored;
  const float* x = img.data<float>();
  for (int64_t r = 0; r < 12; ++r)
    for (int64_t c = 4; c >= 0; --c) mirrored.push_back(x[r * 5 + c]);
  REQUIRE(augment(RandomHorizontalFlip(1.0f), img, {}).to_vector<float>() == mirrored);
  REQUIRE(equal_bits(augment(RandomHorizontalFlip(0.0f), img, {}), img));
  int flips = 0;
  RandomHorizontalFlip half;
  for (uint64_t i = 0; i < 2000; ++i) {
    bool flipped = !equal_bits(augment(half, img, {5, 0, i}), img);
    REQUIRE(flipped == (uniform_f32(5, stream_id("augment:flip"), i) < 0.5f));
    flips += flipped;
  }
  CHECK(std::abs(flips - 1000) < 120);
  REQUIRE_THROWS_AS(RandomHorizontalFlip(1.5f), std::invalid_argument);
}

TEST_CASE("transforms: Gaussian noise uses the documented positions", "[data][deterministic]") {
  Tensor img = Tensor::zeros({1, 28, 28});
  GaussianNoise noise(0.5f);
  SampleKey key{3, 2, 17};
  std::vector<float> got = augment(noise, img, key).to_vector<float>();
  const uint64_t base = ((uint64_t{2} << 32) + 17) * 1024;  // 784 rounded up to 1024
  double sum = 0, sum2 = 0;
  for (int k = 0; k < 784; ++k) {
    REQUIRE(got[k] == 0.0f + 0.5f * normal_f32(3, stream_id("augment:noise"), base + k));
    sum += got[k], sum2 += double(got[k]) * got[k];
  }
  CHECK(std::abs(sum / 784) < 0.06);
  CHECK(std::abs(std::sqrt(sum2 / 784) - 0.5) < 0.06);
  // epoch * 2^32 * width must fit in 64 bits
  REQUIRE_THROWS_AS(augment(noise, img, {3, uint64_t{1} << 22, 0}), std::invalid_argument);
  REQUIRE_NOTHROW(augment(noise, img, {3, (uint64_t{1} << 22) - 1, 0}));
}

TEST_CASE("transforms: keyed by (seed, epoch, index) only, Compose keeps streams apart", "[data][deterministic]") {
  Tensor img = test_image(1, 28, 28);
  auto crop = std::make_shared<RandomCrop>(4);
  auto flip = std::make_shared<RandomHorizontalFlip>();
  Compose two({crop, flip});
  Compose three({crop, flip, std::make_shared<GaussianNoise>(0.0f)});
  std::set<std::vector<float>> seen;
  for (uint64_t seed : {1, 2})
    for (uint64_t epoch : {0, 1})
      for (uint64_t index : {0, 1, 2}) {
        SampleKey key{seed, epoch, index};
        Tensor a = augment(two, img, key);
        REQUIRE(equal_bits(a, augment(two, img, key)));              // same key, same bits
        REQUIRE(equal_bits(a, augment(*flip, augment(*crop, img, key), key)));  // = in sequence
        REQUIRE(equal_bits(a, augment(three, img, key)));            // noise of std 0 changes nothing
        seen.insert(a.to_vector<float>());
      }
  CHECK(seen.size() >= 11);  // 12 keys; two may land on the same crop and flip by chance
}
