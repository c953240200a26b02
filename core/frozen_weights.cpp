// FrozenWeights (core/frozen_weights.h): the frozen tensors by data pointer, and their
// packed copies by (pointer, trans_b, ldb, N, K).
#include "core/frozen_weights.h"

#include <map>
#include <tuple>

#include "kernels/memory.h"

namespace lockstep {

struct FrozenWeights::State {
  std::vector<Tensor> held;                 // keeps the frozen storage alive (no address reuse)
  std::map<const float*, int64_t> extent;   // data pointer -> elements from there
  using Key = std::tuple<const float*, bool, int64_t, int64_t, int64_t>;
  std::map<Key, std::unique_ptr<float, void (*)(void*)>> packed;
};

namespace {
thread_local FrozenWeights::State* active = nullptr;
}  // namespace

FrozenWeights::FrozenWeights(const std::vector<Tensor>& tensors) : state_(new State), saved_(active) {
  for (const Tensor& t : tensors) {
    if (!t.defined() || t.dtype() != DType::f32 || t.device() != Device::cpu || !t.is_contiguous()) continue;
    state_->held.push_back(t);
    state_->extent[t.data<float>()] = t.numel();
  }
  active = state_.get();
}

FrozenWeights::~FrozenWeights() { active = saved_; }

const float* frozen_packed_b(const Exec& ex, const GemmArgs& g) {
  if (!active || g.N <= 0 || g.K <= 0) return nullptr;
  auto it = active->extent.find(g.B);
  if (it == active->extent.end()) return nullptr;
  // op(B) must lie inside the tensor: N rows of ldb (trans_b) or K rows of ldb.
  const int64_t rows = g.trans_b ? g.N : g.K, cols = g.trans_b ? g.K : g.N;
  if ((rows - 1) * g.ldb + cols > it->second) return nullptr;
  const FrozenWeights::State::Key key{g.B, g.trans_b, g.ldb, g.N, g.K};
  auto hit = active->packed.find(key);
  if (hit != active->packed.end()) return hit->second.get();
  std::unique_ptr<float, void (*)(void*)> buf(
      static_cast<float*>(host_alloc(sizeof(float) * static_cast<size_t>(gemm_packed_b_floats(g.N, g.K)))), host_free);
  gemm_pack_b_cpu(ex, g, buf.get());
  return active->packed.emplace(key, std::move(buf)).first->second.get();
}

}  // namespace lockstep
