// KVCache (core/kv_cache.h): appends are copies of whole D-vectors (bits kept), per (row,
// head) one contiguous run of Tn x D values; attention is attention_cached.
#include "core/kv_cache.h"

#include <cstring>

#include "core/autograd.h"
#include "kernels/memory.h"

namespace lockstep {

KVCache::KVCache(int64_t batch, int64_t heads, int64_t capacity, int64_t head_dim, DType dtype, Device device)
    : B_(batch), H_(heads), cap_(capacity), D_(head_dim), len_(static_cast<size_t>(batch > 0 ? batch : 0), 0) {
  LS_CHECK_ARG(batch > 0 && heads > 0 && capacity > 0 && head_dim > 0, "KVCache",
               "expected positive batch, heads, capacity and head_dim, got ", batch, ", ", heads, ", ", capacity,
               ", ", head_dim);
  LS_CHECK_ARG(is_floating(dtype), "KVCache", "expected a float dtype, got ", dtype_name(dtype));
  k_ = Tensor::zeros({B_, H_, cap_, D_}, dtype, device);
  v_ = Tensor::zeros({B_, H_, cap_, D_}, dtype, device);
}

int64_t KVCache::length(int64_t b) const {
  LS_CHECK_ARG(b >= 0 && b < B_, "KVCache", "row ", b, " out of range [0, ", B_, ")");
  return len_[static_cast<size_t>(b)];
}

void KVCache::reset() { std::fill(len_.begin(), len_.end(), 0); }
void KVCache::reset_row(int64_t b) {
  length(b);  // checks b
  len_[static_cast<size_t>(b)] = 0;
}

// Row src_row of k, v (n x H x Tn x D, contiguous, cache dtype/device) into row b.
void KVCache::write(int64_t b, const Tensor& k, const Tensor& v, int64_t src_row) {
  const int64_t Tn = k.size(2), pos = len_[static_cast<size_t>(b)];
  LS_CHECK_ARG(pos + Tn <= cap_, "KVCache", "row ", b, " holds ", pos, " positions; ", Tn,
               " more exceed the capacity ", cap_);
  const size_t es = dtype_size(k_.dtype()), run = static_cast<size_t>(Tn * D_) * es;
  for (int64_t h = 0; h < H_; ++h)
    for (const auto& [dst, src] : {std::pair<const Tensor*, const Tensor*>{&k_, &k}, {&v_, &v}}) {
      char* d = static_cast<char*>(dst->raw_data()) + static_cast<size_t>(((b * H_ + h) * cap_ + pos) * D_) * es;
      const char* s =
          static_cast<const char*>(src->raw_data()) + static_cast<size_t>((src_row * H_ + h) * Tn * D_) * es;
      if (run == 0) continue;
      if (k_.device() == Device::cuda)
        cuda_copy_device_to_device(d, s, run);
      else
        std::memcpy(d, s, run);
    }
  len_[static_cast<size_t>(b)] = pos + Tn;
}

namespace {
Tensor prepared(const char* what, const Tensor& t, int64_t n, int64_t H, int64_t D, const Tensor& like) {
  LS_CHECK_ARG(t.defined() && t.dim() == 4 && t.size(0) == n && t.size(1) == H && t.size(3) == D, "KVCache", what,
               " must be ", n, " x ", H, " x Tn x ", D, ", got ", t.defined() ? shape_str(t.shape()) : "undefined");
  LS_CHECK_ARG(t.dtype() == like.dtype() && t.device() == like.device(), "KVCache", what, " is ", t.str(),
               ", the cache holds ", like.str());
  return t.contiguous().detach();
}
}  // namespace

void KVCache::append(const Tensor& k_in, const Tensor& v_in) {
  const Tensor k = prepared("k", k_in, B_, H_, D_, k_), v = prepared("v", v_in, B_, H_, D_, k_);
  LS_CHECK_ARG(k.size(2) == v.size(2), "KVCache", "k has ", k.size(2), " positions, v ", v.size(2));
  for (int64_t b = 0; b < B_; ++b) write(b, k, v, b);
}

void KVCache::append_row(int64_t b, const Tensor& k_in, const Tensor& v_in) {
  length(b);  // checks b
  auto four = [](const Tensor& t) {
    return t.defined() && t.dim() == 3 ? t.reshape({1, t.size(0), t.size(1), t.size(2)}) : t;
  };
  const Tensor k = prepared("k", four(k_in), 1, H_, D_, k_), v = prepared("v", four(v_in), 1, H_, D_, k_);
  LS_CHECK_ARG(k.size(2) == v.size(2), "KVCache", "k has ", k.size(2), " positions, v ", v.size(2));
  write(b, k, v, 0);
}

Tensor KVCache::attend(const Tensor& q, bool causal, double scale) const {
  LS_CHECK_ARG(k_.defined(), "KVCache", "the cache was default-constructed (no storage)");
  NoGradGuard ng;
  return attention_cached(q, k_, v_, len_, causal, scale);
}

}  // namespace lockstep
