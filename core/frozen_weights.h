// FrozenWeights: a scope in which the given tensors are promised not to change (inference:
// lockstep generate). While one is alive on a thread, a deterministic float32 CPU product
// on that thread whose B operand is one of them packs it once (gemm_pack_b_cpu) and reuses
// the packed copy in every later product with the same layout (GemmArgs::b_packed), instead
// of packing it again per call: for one-row products (batch-1 generation) the packing
// was most of the work. The packing is a copy, so every result has the same bits as
// without the scope (tests/test_frozen_weights.cpp).
//
// Writing into a frozen tensor while the scope is alive gives stale products: the scope is
// for code that only reads its weights. Scopes nest; the innermost one is used, and the
// packed copies are freed with their scope. The scope holds references to the tensors.
#pragma once
#include <memory>
#include <vector>

#include "core/tensor.h"
#include "kernels/gemm.h"

namespace lockstep {

class FrozenWeights {
 public:
  explicit FrozenWeights(const std::vector<Tensor>& tensors);
  ~FrozenWeights();
  FrozenWeights(const FrozenWeights&) = delete;
  FrozenWeights& operator=(const FrozenWeights&) = delete;

  struct State;

 private:
  std::unique_ptr<State> state_;
  State* saved_;  // the enclosing scope's state on this thread, restored on exit
};

// The packed op(B) for g when g.B is the data of a float32 CPU tensor frozen by the
// innermost scope of this thread (packed now on first use), else nullptr.
const float* frozen_packed_b(const Exec& ex, const GemmArgs& g);

}  // namespace lockstep
