// Embedding: a lookup table, torch.nn.Embedding. Parameter "weight": num_embeddings x dim,
// initialised N(0, 1) keyed by (seed, "init:" + its full name). forward(ids): int64 ids of
// any shape -> [ids.shape..., dim]; an id outside [0, num_embeddings) is a
// std::invalid_argument naming embedding, the id and the range. The weight gradient sums
// each row's gradients in the batch order over the id positions (kernels/index.h): no
// atomics, the same bits for any thread count, world size or device.
#pragma once
#include "nn/module.h"

namespace lockstep::nn {

struct EmbeddingOptions {
  double init_std = 1.0;  // N(0, init_std^2) (PyTorch: 1; GPT-2 style models use 0.02)
  uint64_t seed = 0;
};

class Embedding : public Module {
 public:
  Embedding(int64_t num_embeddings, int64_t embedding_dim, EmbeddingOptions opts = {});
  Tensor forward(const Tensor& ids) override;
  Tensor& weight() { return weight_; }
  int64_t num_embeddings() const { return n_; }
  int64_t embedding_dim() const { return dim_; }

 protected:
  void reset_own(uint64_t seed, const std::string& prefix) override;
  std::string extra_repr() const override;

 private:
  int64_t n_, dim_;
  EmbeddingOptions opts_;
  Tensor weight_;
};

}  // namespace lockstep::nn
