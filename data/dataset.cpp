#include "data/dataset.h"

#include <algorithm>
#include <cstring>

#include "core/random.h"
#include "base/philox.h"

namespace lockstep::data {

int64_t Dataset::read_into(int64_t i, float* dst) const {
  Example e = get(i);
  Tensor img = e.image.contiguous();
  std::memcpy(dst, img.data<float>(), img.nbytes());
  return e.label;
}

// ---- TensorDataset ------------------------------------------------------------

TensorDataset::TensorDataset(Tensor images, Tensor labels, int64_t num_classes)
    : images_(std::move(images)), labels_(std::move(labels)), num_classes_(num_classes) {
  const char* op = "TensorDataset";
  LS_CHECK_ARG(images_.defined() && images_.dim() >= 1 && images_.dtype() == DType::f32 &&
                   images_.device() == Device::cpu,
               op, "expected float32 CPU images [N, ...], got ", images_.defined() ? images_.str() : "undefined");
  check_labels(op);
}

TensorDataset::TensorDataset(Tensor bytes, Tensor labels, int64_t num_classes, const Normalize& norm)
    : images_(std::move(bytes)), labels_(std::move(labels)), num_classes_(num_classes) {
  const char* op = "TensorDataset";
  LS_CHECK_ARG(images_.defined() && images_.dim() >= 1 && images_.dtype() == DType::u8 &&
                   images_.device() == Device::cpu,
               op, "expected uint8 CPU images [N, ...] with a Normalize, got ",
               images_.defined() ? images_.str() : "undefined");
  table_ = normalize_table(norm);
  check_labels(op);
}

void TensorDataset::check_labels(const char* op) {
  LS_CHECK_ARG(labels_.defined() && labels_.dim() == 1 && labels_.dtype() == DType::i64 &&
                   labels_.device() == Device::cpu,
               op, "expected int64 CPU labels [N], got ", labels_.defined() ? labels_.str() : "undefined");
  LS_CHECK_ARG(images_.size(0) == labels_.size(0), op, "expected as many labels as images, got ",
               labels_.size(0), " labels for ", images_.size(0), " images");
  LS_CHECK_ARG(num_classes_ >= 0, op, "expected num_classes >= 0, got ", num_classes_);
  images_ = images_.contiguous();
  labels_ = labels_.contiguous();
  n_ = images_.size(0);
  sample_numel_ = n_ > 0 ? images_.numel() / n_ : shape_numel(sample_shape());
  if (num_classes_ > 0) {
    const int64_t* l = labels_.data<int64_t>();
    for (int64_t i = 0; i < n_; ++i)
      LS_CHECK_ARG(l[i] >= 0 && l[i] < num_classes_, op, "expected labels in [0, ", num_classes_,
                   "), got ", l[i], " at index ", i);
  }
}

Tensor TensorDataset::images() const {
  if (!holds_bytes()) return images_;
  Tensor out = Tensor::empty(images_.shape());
  const uint8_t* s = images_.data<uint8_t>();
  float* d = out.data<float>();
  for (int64_t i = 0; i < images_.numel(); ++i) d[i] = table_[s[i]];
  return out;
}

Shape TensorDataset::sample_shape() const {
  return Shape(images_.shape().begin() + 1, images_.shape().end());
}

Example TensorDataset::get(int64_t i) const {
  Tensor img = Tensor::empty(sample_shape());
  int64_t label = read_into(i, img.data<float>());
  return Example{img, label};
}

int64_t TensorDataset::read_into(int64_t i, float* dst) const {
  LS_CHECK_ARG(i >= 0 && i < n_, "TensorDataset", "expected an index in [0, ", n_, "), got ", i);
  if (holds_bytes()) {
    const uint8_t* s = images_.data<uint8_t>() + i * sample_numel_;
    for (int64_t k = 0; k < sample_numel_; ++k) dst[k] = table_[s[k]];
  } else {
    std::memcpy(dst, images_.data<float>() + i * sample_numel_, static_cast<size_t>(sample_numel_) * sizeof(float));
  }
  return labels_.data<int64_t>()[i];
}

void TensorDataset::prefetch(int64_t i) const {
  if (i < 0 || i >= n_) return;
  const int64_t bytes = sample_numel_ * static_cast<int64_t>(holds_bytes() ? 1 : sizeof(float));
  const char* p = static_cast<const char*>(images_.raw_data()) + i * bytes;
  for (int64_t off = 0; off < bytes; off += 64) __builtin_prefetch(p + off);
}

// ---- Subset --------------------------------------------------------------------

Subset::Subset(std::shared_ptr<const Dataset> base, std::vector<int64_t> indices)
    : base_(std::move(base)), indices_(std::move(indices)) {
  LS_CHECK_ARG(base_ != nullptr, "Subset", "expected a dataset, got null");
  const int64_t n = base_->size();
  for (size_t k = 0; k < indices_.size(); ++k)
    LS_CHECK_ARG(indices_[k] >= 0 && indices_[k] < n, "Subset", "expected indices in [0, ", n, "), got ",
                 indices_[k], " at position ", k);
}

int64_t Subset::base_index(int64_t i) const {
  LS_CHECK_ARG(i >= 0 && i < size(), "Subset", "expected an index in [0, ", size(), "), got ", i);
  return indices_[static_cast<size_t>(i)];
}

Example Subset::get(int64_t i) const { return base_->get(base_index(i)); }

int64_t Subset::read_into(int64_t i, float* dst) const { return base_->read_into(base_index(i), dst); }

void Subset::prefetch(int64_t i) const {
  if (i >= 0 && i < size()) base_->prefetch(indices_[static_cast<size_t>(i)]);
}

// ---- deterministic randomness --------------------------------------------------

uint32_t uniform_below(uint32_t bound, uint64_t seed, uint64_t stream, uint64_t position) {
  // bound == 0 stands for 2^32 only in the caller's mind; reject it instead of dividing by 0.
  LS_CHECK_ARG(bound >= 1, "uniform_below", "expected bound >= 1, got ", bound);
  const uint32_t threshold = static_cast<uint32_t>(-bound) % bound;  // 2^32 mod bound
  for (uint64_t r = 0;; ++r) {
    uint64_t m = static_cast<uint64_t>(philox_uint32(seed, stream + r, position)) * bound;
    if (static_cast<uint32_t>(m) >= threshold) return static_cast<uint32_t>(m >> 32);
  }
}

std::vector<int64_t> permutation(int64_t n, uint64_t seed, uint64_t stream, uint64_t epoch) {
  LS_CHECK_ARG(n >= 0 && n <= (int64_t{1} << 32), "permutation", "expected 0 <= n <= 2^32, got ", n);
  LS_CHECK_ARG(epoch < (uint64_t{1} << 32), "permutation", "expected epoch < 2^32, got ", epoch);
  std::vector<int64_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[i] = i;
  // i + 1 <= 2^32 fits uint32 except at i = 2^32 - 1, where the bound is 2^32 itself: there
  // no rejection is needed and the answer is x.
  for (int64_t i = n - 1; i >= 1; --i) {
    const uint64_t pos = (epoch << 32) + static_cast<uint64_t>(i);
    int64_t j = (i + 1 == (int64_t{1} << 32)) ? philox_uint32(seed, stream, pos)
                                               : uniform_below(static_cast<uint32_t>(i + 1), seed, stream, pos);
    std::swap(p[i], p[j]);
  }
  return p;
}

Split random_split(std::shared_ptr<const Dataset> base, int64_t validation_size, uint64_t seed) {
  LS_CHECK_ARG(base != nullptr, "random_split", "expected a dataset, got null");
  const int64_t n = base->size();
  LS_CHECK_ARG(validation_size >= 0 && validation_size <= n, "random_split", "expected validation_size in [0, ",
               n, "], got ", validation_size);
  std::vector<int64_t> p = permutation(n, seed, stream_id("split"), 0);
  std::vector<int64_t> val(p.begin(), p.begin() + validation_size), train(p.begin() + validation_size, p.end());
  std::sort(val.begin(), val.end());
  std::sort(train.begin(), train.end());
  return Split{std::make_shared<Subset>(base, std::move(train)), std::make_shared<Subset>(base, std::move(val))};
}

std::vector<float> normalize_table(const Normalize& norm) {
  LS_CHECK_ARG(!norm.standardize || norm.std > 0.0f, "normalize_bytes", "expected std > 0, got ", norm.std);
  // Every pixel value maps to the same bits wherever it occurs.
  std::vector<float> table(256);
  for (int v = 0; v < 256; ++v) {
    float x = static_cast<float>(v) / 255.0f;
    table[v] = norm.standardize ? (x - norm.mean) / norm.std : x;
  }
  return table;
}

Tensor normalize_bytes(const Tensor& bytes, const Normalize& norm) {
  LS_CHECK_ARG(bytes.defined() && bytes.dtype() == DType::u8 && bytes.device() == Device::cpu, "normalize_bytes",
               "expected a uint8 CPU tensor, got ", bytes.defined() ? bytes.str() : "undefined");
  const std::vector<float> table = normalize_table(norm);
  Tensor src = bytes.contiguous();
  Tensor out = Tensor::empty(src.shape());
  const uint8_t* s = src.data<uint8_t>();
  float* d = out.data<float>();
  const int64_t n = src.numel();
  for (int64_t i = 0; i < n; ++i) d[i] = table[s[i]];
  return out;
}

}  // namespace lockstep::data
