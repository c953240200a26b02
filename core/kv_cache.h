// A key/value cache for attention at inference (one per attention layer).
// Storage: keys and values, each B x H x capacity x D (float32 or float64, CPU or CUDA);
// row b holds length(b) positions. append() writes new positions after each row's last;
// attend(q) runs attention_cached (core/ops.h) for queries that are the rows' newest
// positions. There is no split of the keys that depends on anything (kernels/attention.h):
// a query's result is a function of its own q and its row's cached keys and values, so
// prefilling T tokens at once gives the bits of T one-token steps, and a row's bits do not
// depend on the other rows of the batch or on their lengths. No gradients.
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace lockstep {

class KVCache {
 public:
  KVCache() = default;
  KVCache(int64_t batch, int64_t heads, int64_t capacity, int64_t head_dim, DType dtype = DType::f32,
          Device device = Device::cpu);

  // k, v: B x H x Tn x D; every row gets Tn positions (Tn may differ between calls).
  void append(const Tensor& k, const Tensor& v);
  // k, v: H x Tn x D or 1 x H x Tn x D; row b alone gets Tn positions.
  void append_row(int64_t b, const Tensor& k, const Tensor& v);
  // q: B x H x Tq x D: query t of row b is that row's position length(b) - Tq + t.
  // causal: each query sees the positions up to its own.
  Tensor attend(const Tensor& q, bool causal = true, double scale = 0.0) const;

  int64_t length(int64_t b) const;
  const std::vector<int64_t>& lengths() const { return len_; }
  int64_t batch() const { return B_; }
  int64_t capacity() const { return cap_; }
  void reset();              // every row back to length 0 (storage kept)
  void reset_row(int64_t b);
  const Tensor& keys() const { return k_; }
  const Tensor& values() const { return v_; }

 private:
  void write(int64_t b, const Tensor& k, const Tensor& v, int64_t src_row);
  int64_t B_ = 0, H_ = 0, cap_ = 0, D_ = 0;
  Tensor k_, v_;
  std::vector<int64_t> len_;
};

}  // namespace lockstep
