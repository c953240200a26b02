#include "nn/gpt.h"

#include <cmath>

#include "core/autograd.h"
#include "core/random.h"

namespace lockstep::nn {

void GptConfig::validate() const {
  auto need = [](bool ok, const char* field, const std::string& expected, int64_t got) {
    if (!ok) throw std::invalid_argument(str_cat("[make_gpt] expected ", field, " ", expected, ", got ", got));
  };
  need(vocab_size >= 1 && vocab_size < (int64_t{1} << 24), "vocab_size", "in [1, 2^24)", vocab_size);
  need(context >= 1 && context <= 65536, "context", "in [1, 65536]", context);
  need(n_layer >= 1 && n_layer <= 256, "n_layer", "in [1, 256]", n_layer);
  need(n_head >= 1, "n_head", ">= 1", n_head);
  need(n_embd >= 1 && n_embd <= 65536, "n_embd", "in [1, 65536]", n_embd);
  need(n_embd % n_head == 0, "n_embd", str_cat("a multiple of n_head (", n_head, ")"), n_embd);
}

// ---- attention, MLP, block ----

namespace {

LayerNormOptions ln_options(const GptConfig& c) {
  LayerNormOptions o;
  o.eps = c.ln_eps;
  return o;
}

LinearOptions normal_init(double std) {
  LinearOptions o;
  o.init = Init::normal, o.normal_std = std;
  return o;
}

}  // namespace

CausalSelfAttention::CausalSelfAttention(const GptConfig& c)
    : Module("CausalSelfAttention"), n_head_(c.n_head), n_embd_(c.n_embd) {
  c_attn_ = register_module("c_attn", std::make_shared<Linear>(c.n_embd, 3 * c.n_embd, normal_init(0.02)));
  const double proj_std = 0.02 / std::sqrt(2.0 * static_cast<double>(c.n_layer));
  c_proj_ = register_module("c_proj", std::make_shared<Linear>(c.n_embd, c.n_embd, normal_init(proj_std)));
}

Tensor CausalSelfAttention::forward(const Tensor& x) {
  const int64_t B = batch_, T = seq_, C = n_embd_, H = n_head_;
  LS_CHECK_ARG(x.dim() == 2 && x.size(0) == B * T && x.size(1) == C, "CausalSelfAttention", "expected [", B * T,
               ", ", C, "] (B ", B, ", T ", T, "), got ", shape_str(x.shape()));
  // [B T, 3C] -> [B, T, 3C]: q, k, v side by side; the op splits and merges the heads.
  Tensor qkv = c_attn_->forward(x).reshape({B, T, 3 * C});
  Tensor y = attention_qkv(qkv, H, /*causal=*/true);  // [B, T, C]
  return c_proj_->forward(y.reshape({B * T, C}));
}

Mlp::Mlp(const GptConfig& c) : Module("Mlp") {
  c_fc_ = register_module("c_fc", std::make_shared<Linear>(c.n_embd, 4 * c.n_embd, normal_init(0.02)));
  const double proj_std = 0.02 / std::sqrt(2.0 * static_cast<double>(c.n_layer));
  c_proj_ = register_module("c_proj", std::make_shared<Linear>(4 * c.n_embd, c.n_embd, normal_init(proj_std)));
}

Tensor Mlp::forward(const Tensor& x) { return c_proj_->forward(gelu(c_fc_->forward(x))); }

Block::Block(const GptConfig& c) : Module("Block") {
  ln_1_ = register_module("ln_1", std::make_shared<LayerNorm>(c.n_embd, ln_options(c)));
  attn_ = register_module("attn", std::make_shared<CausalSelfAttention>(c));
  ln_2_ = register_module("ln_2", std::make_shared<LayerNorm>(c.n_embd, ln_options(c)));
  mlp_ = register_module("mlp", std::make_shared<Mlp>(c));
}

Tensor Block::forward(const Tensor& x) {
  Tensor h = x + attn_->forward(ln_1_->forward(x));
  return h + mlp_->forward(ln_2_->forward(h));
}

// ---- the model ----

Gpt::Gpt(const GptConfig& c) : Module("GPT"), cfg_(c) {
  cfg_.validate();
  EmbeddingOptions eo;
  eo.init_std = 0.02;
  wte_ = register_module("wte", std::make_shared<Embedding>(c.vocab_size, c.n_embd, eo));
  wpe_ = register_module("wpe", std::make_shared<Embedding>(c.context, c.n_embd, eo));
  h_ = register_module("h", std::make_shared<Sequential>());
  for (int64_t i = 0; i < c.n_layer; ++i) h_->push_back(std::make_shared<Block>(c));
  ln_f_ = register_module("ln_f", std::make_shared<LayerNorm>(c.n_embd, ln_options(c)));
}

Block& Gpt::block(size_t i) { return static_cast<Block&>(*(*h_)[i]); }

void Gpt::check_ids(const Tensor& ids) const {
  LS_CHECK_ARG(ids.defined() && ids.dim() == 2 && ids.dtype() == DType::i64, "gpt",
               "expected int64 token ids [B, T], got ", ids.defined() ? ids.str() : "undefined");
  LS_CHECK_ARG(ids.size(1) >= 1 && ids.size(1) <= cfg_.context, "gpt", "expected a sequence of 1 to ", cfg_.context,
               " tokens (the model's context), got ", ids.size(1));
  const std::vector<int64_t> v = ids.to(Device::cpu).to_vector<int64_t>();
  for (size_t i = 0; i < v.size(); ++i)
    LS_CHECK_ARG(v[i] >= 0 && v[i] < cfg_.vocab_size, "gpt", "expected token ids in [0, ", cfg_.vocab_size,
                 "), got ", v[i], " at [", static_cast<int64_t>(i) / ids.size(1), ", ",
                 static_cast<int64_t>(i) % ids.size(1), "]");
}

Tensor Gpt::hidden(const Tensor& ids) {
  check_ids(ids);
  const int64_t B = ids.size(0), T = ids.size(1);
  // Positions as ids [B, T] (not a broadcast [T, C]): wpe's gradient is then a batch-order
  // sum over the B T token rows, like every other parameter's.
  std::vector<int64_t> pos(static_cast<size_t>(B * T));
  for (int64_t i = 0; i < B * T; ++i) pos[static_cast<size_t>(i)] = i % T;
  Tensor x = wte_->forward(ids.reshape({B * T})) + wpe_->forward(Tensor::from_vector(pos, {B * T}).to(ids.device()));
  for (size_t i = 0; i < h_->size(); ++i) {
    Block& b = block(i);
    b.attn().set_shape(B, T);
    OpScope scope(h_->label(i));
    x = b.forward(x);
  }
  return ln_f_->forward(x);
}

Tensor Gpt::forward(const Tensor& ids) {
  Tensor h = hidden(ids);
  if (!grad_enabled() || !wte_->weight().requires_grad()) return linear(h, wte_->weight(), Tensor());
  // The head reads its own leaf aliasing wte.weight (fold_tied_gradient adds its gradient).
  head_ = wte_->weight().detach();
  head_.set_requires_grad(true);
  return linear(h, head_, Tensor());
}

void Gpt::fold_tied_gradient() {
  if (!head_.defined() || !head_.grad().defined()) return;
  Tensor& w = wte_->weight();
  NoGradGuard ng;
  w.set_grad(w.grad().defined() ? w.grad() + head_.grad() : head_.grad().clone());
  head_.set_grad(Tensor());
}

std::shared_ptr<Gpt> make_gpt(uint64_t seed, const GptConfig& c) {
  auto m = std::make_shared<Gpt>(c);
  m->reset_parameters(seed);
  return m;
}

}  // namespace lockstep::nn
