#include "nn/embedding.h"

#include "core/autograd.h"
#include "core/random.h"

namespace lockstep::nn {

Embedding::Embedding(int64_t num_embeddings, int64_t embedding_dim, EmbeddingOptions opts)
    : Module("Embedding"), n_(num_embeddings), dim_(embedding_dim), opts_(opts) {
  LS_CHECK_ARG(num_embeddings > 0 && embedding_dim > 0, "Embedding", "expected positive sizes, got num_embeddings=",
               num_embeddings, ", embedding_dim=", embedding_dim);
  weight_ = register_parameter("weight", Tensor::empty({n_, dim_}));
  reset_own(opts_.seed, "");
}

void Embedding::reset_own(uint64_t seed, const std::string& prefix) {
  NoGradGuard ng;
  fill_normal(weight_, 0.0, opts_.init_std, seed, stream_id("init:" + prefix + "weight"));
}

Tensor Embedding::forward(const Tensor& ids) { return embedding(weight_, ids); }

std::string Embedding::extra_repr() const { return str_cat(n_, ", ", dim_); }

}  // namespace lockstep::nn
