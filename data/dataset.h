// Datasets: indexable collections of (image, label) examples, and the deterministic ways to
// cut them up. Every random choice here (the train/validation split) is a pure function of
// an explicit seed, drawn from Philox as described in docs/data.md.
#pragma once
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace lockstep::data {

// One example: a float32 image of the dataset's sample_shape() and an integer label.
struct Example {
  Tensor image;
  int64_t label = 0;
};

// A random-access dataset. get() and read_into() must be safe to call from several threads
// at once (the DataLoader's workers do), which read-only datasets are by construction.
class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual Shape sample_shape() const = 0;  // shape of one image, e.g. {1, 28, 28}
  virtual Example get(int64_t i) const = 0;
  // Writes image i (numel(sample_shape()) floats) to dst and returns its label. The loader
  // uses this to fill a batch without a temporary tensor per sample; the default goes
  // through get().
  virtual int64_t read_into(int64_t i, float* dst) const;
  // A hint that read_into(i) comes soon: a dataset held in memory asks the CPU to bring
  // sample i's bytes into cache (the loader reads samples in a random order, so the hardware
  // prefetcher cannot guess the next one). Changes no value; out-of-range i is ignored.
  virtual void prefetch(int64_t i) const { (void)i; }
};

struct Normalize;

// Images and labels held in memory, labels int64 [N]. With num_classes > 0 every label must
// lie in [0, num_classes). The images are either float32 [N, ...], read as they are, or
// uint8 [N, ...] with a Normalize, kept as bytes (a quarter of the memory) and normalised
// sample by sample in read_into through the 256-entry table of normalize_bytes, so a
// sample's floats are the same bits as normalize_bytes(images, norm) would hold.
class TensorDataset : public Dataset {
 public:
  TensorDataset(Tensor images, Tensor labels, int64_t num_classes = 0);
  TensorDataset(Tensor bytes, Tensor labels, int64_t num_classes, const Normalize& norm);
  int64_t size() const override { return n_; }
  Shape sample_shape() const override;
  Example get(int64_t i) const override;
  int64_t read_into(int64_t i, float* dst) const override;
  void prefetch(int64_t i) const override;
  // float32 [N, ...]: the stored images, or for a dataset held as bytes, all of them
  // normalised now (a new tensor of 4 bytes per pixel).
  Tensor images() const;
  const Tensor& labels() const { return labels_; }
  int64_t num_classes() const { return num_classes_; }
  bool holds_bytes() const { return images_.dtype() == DType::u8; }

 private:
  void check_labels(const char* op);
  Tensor images_, labels_;
  int64_t n_, sample_numel_, num_classes_;
  std::vector<float> table_;  // byte value -> float, for a dataset held as bytes
};

// The examples of `base` at `indices`, in that order (repeats allowed).
class Subset : public Dataset {
 public:
  Subset(std::shared_ptr<const Dataset> base, std::vector<int64_t> indices);
  int64_t size() const override { return static_cast<int64_t>(indices_.size()); }
  Shape sample_shape() const override { return base_->sample_shape(); }
  Example get(int64_t i) const override;
  int64_t read_into(int64_t i, float* dst) const override;
  void prefetch(int64_t i) const override;
  const std::vector<int64_t>& indices() const { return indices_; }

 private:
  int64_t base_index(int64_t i) const;
  std::shared_ptr<const Dataset> base_;
  std::vector<int64_t> indices_;
};

// An integer uniform in [0, bound) at (seed, stream, position), 1 <= bound <= 2^32, by
// Lemire's multiply-and-reject: x = philox_uint32, m = x * bound (64-bit); accept when the
// low half of m is >= 2^32 mod bound, answer m >> 32. Attempt r (r = 0, 1, ...) draws x at
// the same position from stream `stream + r` (wrapping), so a rejection needs no other
// position and the answer stays a pure function of the arguments.
uint32_t uniform_below(uint32_t bound, uint64_t seed, uint64_t stream, uint64_t position);

// A permutation of 0..n-1 (n <= 2^32), a pure function of (seed, stream, epoch), epoch < 2^32:
// start from the identity and, for i = n-1 down to 1, swap p[i] with p[j],
// j = uniform_below(i + 1, seed, stream, epoch * 2^32 + i) (Fisher–Yates).
std::vector<int64_t> permutation(int64_t n, uint64_t seed, uint64_t stream, uint64_t epoch = 0);

// A train/validation split of `base` as a pure function of the seed:
// p = permutation(n, seed, stream_id("split"), 0); validation = p[0, validation_size),
// train = p[validation_size, n); each side sorted ascending, so it keeps dataset order.
struct Split {
  std::shared_ptr<Subset> train, validation;
};
Split random_split(std::shared_ptr<const Dataset> base, int64_t validation_size, uint64_t seed);

// Pixel normalisation: x = byte / 255 (so in [0, 1]), then, when standardize is set,
// x = (x - mean) / std, all in float32 with that exact order of operations.
struct Normalize {
  bool standardize = false;
  float mean = 0.0f, std = 1.0f;
};
// Fashion-MNIST training-set statistics of the [0, 1] pixels (mean 0.2860, std 0.3530).
inline constexpr Normalize kFashionMnistNormalize{true, 0.2860f, 0.3530f};

// uint8 tensor of any shape -> float32 tensor of the same shape, by `norm`.
Tensor normalize_bytes(const Tensor& bytes, const Normalize& norm = {});

// The 256 values normalize_bytes maps the bytes 0..255 to (checks std > 0).
std::vector<float> normalize_table(const Normalize& norm);

}  // namespace lockstep::data
