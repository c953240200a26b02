// The MLP builder used by the tests, the benchmarks, `lockstep train`, the lab and data
// parallelism: one layout, one initialisation, so the same options give the same bits.
#pragma once
#include <memory>
#include <vector>

#include "base/error.h"
#include "nn/nn.h"
#include "nn/sync_batchnorm.h"

namespace lockstep::nn {

struct MlpOptions {
  std::vector<int64_t> sizes{784, 256, 128, 10};  // input, hidden..., output
  bool batchnorm = true;                         // BatchNorm1d after each hidden Linear
  double dropout = 0.2;                          // Dropout(p) after each hidden ReLU (p = 0 too)
  // Non-null: the BatchNorm layers are SyncBatchNorm sharing it (the same keys and initial
  // bits; the same outputs until a data-parallel step attaches the sync).
  std::shared_ptr<BatchSync> sync;
};

// Linear, [BatchNorm], ReLU, Dropout for each hidden size, then the output Linear; children
// are numbered in that order (784-256-128-10: 0.weight 0.bias 1.weight 1.bias
// 1.running_mean ... 8.weight 8.bias), initialised by reset_parameters(seed).
inline std::shared_ptr<Sequential> make_mlp(uint64_t seed, const MlpOptions& o) {
  LS_CHECK_ARG(o.sizes.size() >= 2, "make_mlp", "expected at least input and output sizes, got ", o.sizes.size());
  auto m = std::make_shared<Sequential>();
  for (size_t l = 0; l + 2 < o.sizes.size(); ++l) {
    const int64_t width = o.sizes[l + 1];
    m->push_back(std::make_shared<Linear>(o.sizes[l], width));
    if (o.batchnorm && o.sync)
      m->push_back(std::make_shared<SyncBatchNorm>(width, o.sync));
    else if (o.batchnorm)
      m->push_back(std::make_shared<BatchNorm1d>(width));
    m->push_back(std::make_shared<ReLU>());
    m->push_back(std::make_shared<Dropout>(o.dropout));
  }
  m->push_back(std::make_shared<Linear>(o.sizes[o.sizes.size() - 2], o.sizes.back()));
  m->reset_parameters(seed);
  return m;
}

// The reference 784-256-128-10 MLP with BatchNorm and Dropout(p).
inline std::shared_ptr<Sequential> make_mlp(uint64_t seed, double dropout_p = 0.2) {
  MlpOptions o;
  o.dropout = dropout_p;
  return make_mlp(seed, o);
}

}  // namespace lockstep::nn
