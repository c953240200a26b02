#include "data/transforms.h"

#include <algorithm>
#include <cstring>

#include "core/random.h"
#include "data/dataset.h"
#include "base/philox.h"

namespace lockstep::data {

namespace {

void check_image_shape(const char* op, const Shape& s) {
  LS_CHECK_ARG(s.size() >= 2 && shape_numel(s) > 0, op, "expected an image shape [..., H, W], got ", shape_str(s));
}

// Leading dims are channels: the transform acts on each H x W plane alike.
struct Planes {
  int64_t c, h, w;
};
Planes planes(const Shape& s) {
  int64_t h = s[s.size() - 2], w = s[s.size() - 1];
  return Planes{shape_numel(s) / (h * w), h, w};
}

}  // namespace

uint64_t sample_position(const SampleKey& key, uint64_t width) {
  LS_CHECK_ARG(width >= 1 && (width & (width - 1)) == 0, "augment", "expected a power-of-two width, got ", width);
  LS_CHECK_ARG(key.index < (uint64_t{1} << 32), "augment", "expected a sample index < 2^32, got ", key.index);
  // (epoch * 2^32 + index) * width must not wrap: epoch < 2^64 / (2^32 * width).
  LS_CHECK_ARG(key.epoch < ((uint64_t{1} << 32) / width), "augment", "expected epoch < ", (uint64_t{1} << 32) / width,
               " for ", width, " draws per sample, got ", key.epoch);
  return ((key.epoch << 32) + key.index) * width;
}

// ---- RandomCrop ---------------------------------------------------------------

RandomCrop::RandomCrop(int64_t pad, const std::string& name) : pad_(pad), stream_(stream_id(name)) {
  LS_CHECK_ARG(pad >= 0 && pad < (int64_t{1} << 30), "RandomCrop", "expected 0 <= pad < 2^30, got ", pad);
}

void RandomCrop::check_shape(const Shape& s) const { check_image_shape("RandomCrop", s); }

void RandomCrop::apply(float* image, const Shape& s, const SampleKey& key) const {
  const Planes p = planes(s);
  const uint64_t base = sample_position(key, 2);
  const uint32_t span = static_cast<uint32_t>(2 * pad_ + 1);
  // Window offset into the padded image, moved into unpadded coordinates: -pad .. +pad.
  const int64_t oy = static_cast<int64_t>(uniform_below(span, key.seed, stream_, base)) - pad_;
  const int64_t ox = static_cast<int64_t>(uniform_below(span, key.seed, stream_, base + 1)) - pad_;
  if (oy == 0 && ox == 0) return;
  thread_local std::vector<float> src;
  src.assign(image, image + p.c * p.h * p.w);
  // Output row y reads source row y + oy; only columns with 0 <= x + ox < W copy, rest 0.
  const int64_t x0 = std::max<int64_t>(0, -ox), x1 = std::min<int64_t>(p.w, p.w - ox);
  for (int64_t c = 0; c < p.c; ++c)
    for (int64_t y = 0; y < p.h; ++y) {
      float* out = image + (c * p.h + y) * p.w;
      const int64_t sy = y + oy;
      if (sy < 0 || sy >= p.h || x0 >= x1) {
        std::fill(out, out + p.w, 0.0f);
        continue;
      }
      const float* in = src.data() + (c * p.h + sy) * p.w;
      std::fill(out, out + x0, 0.0f);
      std::memcpy(out + x0, in + x0 + ox, static_cast<size_t>(x1 - x0) * sizeof(float));
      std::fill(out + x1, out + p.w, 0.0f);
    }
}

// ---- RandomHorizontalFlip -----------------------------------------------------

RandomHorizontalFlip::RandomHorizontalFlip(float p, const std::string& name) : p_(p), stream_(stream_id(name)) {
  LS_CHECK_ARG(p >= 0.0f && p <= 1.0f, "RandomHorizontalFlip", "expected p in [0, 1], got ", p);
}

void RandomHorizontalFlip::check_shape(const Shape& s) const { check_image_shape("RandomHorizontalFlip", s); }

void RandomHorizontalFlip::apply(float* image, const Shape& s, const SampleKey& key) const {
  if (!(uniform_f32(key.seed, stream_, sample_position(key, 1)) < p_)) return;
  const Planes p = planes(s);
  for (int64_t r = 0; r < p.c * p.h; ++r) std::reverse(image + r * p.w, image + (r + 1) * p.w);
}

// ---- GaussianNoise ------------------------------------------------------------

GaussianNoise::GaussianNoise(float std, const std::string& name) : std_(std), stream_(stream_id(name)) {
  LS_CHECK_ARG(std >= 0.0f, "GaussianNoise", "expected std >= 0, got ", std);
}

void GaussianNoise::check_shape(const Shape& s) const {
  LS_CHECK_ARG(!s.empty() && shape_numel(s) > 0 && shape_numel(s) <= (int64_t{1} << 31), "GaussianNoise",
               "expected 1 to 2^31 elements per sample, got shape ", shape_str(s));
}

void GaussianNoise::apply(float* image, const Shape& s, const SampleKey& key) const {
  const int64_t n = shape_numel(s);
  uint64_t width = 1;
  while (width < static_cast<uint64_t>(n)) width <<= 1;
  const uint64_t base = sample_position(key, width);
  for (int64_t k = 0; k < n; ++k) image[k] = image[k] + std_ * normal_f32(key.seed, stream_, base + k);
}

// ---- Compose ------------------------------------------------------------------

Compose::Compose(std::vector<std::shared_ptr<const Transform>> transforms) : transforms_(std::move(transforms)) {
  for (size_t i = 0; i < transforms_.size(); ++i)
    LS_CHECK_ARG(transforms_[i] != nullptr, "Compose", "expected transforms, got null at position ", i);
}

void Compose::check_shape(const Shape& s) const {
  for (const auto& t : transforms_) t->check_shape(s);
}

void Compose::apply(float* image, const Shape& s, const SampleKey& key) const {
  for (const auto& t : transforms_) t->apply(image, s, key);
}

Tensor augment(const Transform& t, const Tensor& image, const SampleKey& key) {
  LS_CHECK_ARG(image.defined() && image.dtype() == DType::f32 && image.device() == Device::cpu, "augment",
               "expected a float32 CPU image, got ", image.defined() ? image.str() : "undefined");
  t.check_shape(image.shape());
  Tensor out = image.clone();
  t.apply(out.data<float>(), out.shape(), key);
  return out;
}

}  // namespace lockstep::data
