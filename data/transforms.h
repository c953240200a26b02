// Data augmentation without random state. A transform's randomness for one sample is a pure
// function of SampleKey (seed, epoch, index), where index is the sample's index in the
// dataset -- not its position in the shuffled order, not the worker or thread that handles
// it -- so an epoch's augmented images are the same for any worker count or resume point.
//
// The draws: a transform owns a stream (stream_id of its name, "augment:crop" etc.) and
// reserves `width` consecutive Philox positions per sample, width a power of two:
//   base(key) = (epoch * 2^32 + index) * width
// and draw k of the sample is at position base + k. This needs index < 2^32 and
// epoch * 2^32 * width < 2^64, which apply() checks.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace lockstep::data {

struct SampleKey {
  uint64_t seed = 0;
  uint64_t epoch = 0;
  uint64_t index = 0;  // the sample's dataset index
};

class Transform {
 public:
  virtual ~Transform() = default;
  // Throws std::invalid_argument unless images of this shape are supported.
  virtual void check_shape(const Shape& sample_shape) const = 0;
  // Transforms one image of sample_shape in place.
  virtual void apply(float* image, const Shape& sample_shape, const SampleKey& key) const = 0;
};

// Random crop with zero padding: the image (last two dims H, W) is padded with `pad` zeros
// on every side and an H x W window is cut at offset (dy, dx), dy, dx uniform in [0, 2 pad]:
// dy = uniform_below(2 pad + 1, seed, stream, base), dx = the same at base + 1 (width 2).
class RandomCrop : public Transform {
 public:
  explicit RandomCrop(int64_t pad, const std::string& name = "augment:crop");
  void check_shape(const Shape& s) const override;
  void apply(float* image, const Shape& s, const SampleKey& key) const override;

 private:
  int64_t pad_;
  uint64_t stream_;
};

// Horizontal flip (reverse the last dim) when uniform_f32(seed, stream, base) < p (width 1).
class RandomHorizontalFlip : public Transform {
 public:
  explicit RandomHorizontalFlip(float p = 0.5f, const std::string& name = "augment:flip");
  void check_shape(const Shape& s) const override;
  void apply(float* image, const Shape& s, const SampleKey& key) const override;

 private:
  float p_;
  uint64_t stream_;
};

// Additive Gaussian noise: x[k] = x[k] + std * normal_f32(seed, stream, base + k) for every
// element k (row-major); width = numel rounded up to a power of two.
class GaussianNoise : public Transform {
 public:
  explicit GaussianNoise(float std, const std::string& name = "augment:noise");
  void check_shape(const Shape& s) const override;
  void apply(float* image, const Shape& s, const SampleKey& key) const override;

 private:
  float std_;
  uint64_t stream_;
};

// Applies its transforms in order; each keeps its own stream, so adding one never changes
// the draws of another.
class Compose : public Transform {
 public:
  explicit Compose(std::vector<std::shared_ptr<const Transform>> transforms);
  void check_shape(const Shape& s) const override;
  void apply(float* image, const Shape& s, const SampleKey& key) const override;

 private:
  std::vector<std::shared_ptr<const Transform>> transforms_;
};

// A transformed copy of one float32 image tensor (for tests and one-off use).
Tensor augment(const Transform& t, const Tensor& image, const SampleKey& key);

// The first Philox position of a sample for a transform reserving `width` draws (see top).
uint64_t sample_position(const SampleKey& key, uint64_t width);

}  // namespace lockstep::data
