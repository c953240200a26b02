// A small GPT (decoder-only transformer), char-level in `lockstep train --model gpt`:
// pre-LN blocks with LayerNorm, causal multi-head self-attention, a GELU (tanh) MLP, tied
// input and output embeddings. The state dict uses nanoGPT's names without its
// "transformer." prefix, so a PyTorch twin loads it by name (bench/peers/gpt_twin.py):
//
//   wte.weight [V, C]   wpe.weight [T, C]
//   h.<i>.ln_1.weight/bias [C]       h.<i>.attn.c_attn.weight [3C, C] / bias [3C]
//   h.<i>.attn.c_proj.weight [C, C] / bias [C]     h.<i>.ln_2.weight/bias [C]
//   h.<i>.mlp.c_fc.weight [4C, C] / bias [4C]       h.<i>.mlp.c_proj.weight [C, 4C] / bias [C]
//   ln_f.weight/bias [C]            (the head is wte: logits = ln_f(x) wte^T, no bias)
//
// Linear weights are [out, in] (PyTorch's nn.Linear, nanoGPT), c_attn's rows are q, k, v in
// that order, each C rows with head h at rows [h D, (h + 1) D), D = C / H.
// Init (GPT-2's): every Linear and embedding weight N(0, 0.02), the two c_proj weights
// N(0, 0.02 / sqrt(2 L)), biases 0, LayerNorm weight 1 and bias 0; each tensor keyed by
// (seed, its name) as every lockstep module is.
//
// One block (x: [B T, C], rows in batch-major order):
//   x = x + c_proj(attn(c_attn(ln_1(x))))      attn: causal softmax(q k^T / sqrt(D)) v per head
//   x = x + mlp.c_proj(gelu(mlp.c_fc(ln_2(x))))
// Every op is row-wise except attention (within one sequence) and the parameter gradients
// (batch-order sums): so a sequence's logits do not depend on the other sequences of the
// batch, and data parallelism over whole sequences gives the single-process bits.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nn/embedding.h"
#include "nn/layernorm.h"
#include "nn/linear.h"
#include "nn/module.h"
#include "nn/sequential.h"

namespace lockstep::nn {

struct GptConfig {
  int64_t vocab_size = 0;    // set from the data
  int64_t context = 128;     // T: the longest sequence (wpe rows)
  int64_t n_layer = 4;
  int64_t n_head = 4;
  int64_t n_embd = 128;      // C; a multiple of n_head
  double ln_eps = 1e-5;
  // Checks ranges; std::invalid_argument naming the field ("[make_gpt] expected n_embd ...").
  void validate() const;
};

class CausalSelfAttention : public Module {
 public:
  CausalSelfAttention(const GptConfig& c);
  // x: [B T, C] for B sequences of T tokens (set_shape first) -> [B T, C].
  Tensor forward(const Tensor& x) override;
  void set_shape(int64_t batch, int64_t seq) { batch_ = batch, seq_ = seq; }
  Linear& c_attn() { return *c_attn_; }
  Linear& c_proj() { return *c_proj_; }

 private:
  int64_t n_head_, n_embd_, batch_ = 1, seq_ = 1;
  std::shared_ptr<Linear> c_attn_, c_proj_;
};

class Mlp : public Module {
 public:
  explicit Mlp(const GptConfig& c);
  Tensor forward(const Tensor& x) override;  // c_proj(gelu(c_fc(x)))
  Linear& c_fc() { return *c_fc_; }
  Linear& c_proj() { return *c_proj_; }

 private:
  std::shared_ptr<Linear> c_fc_, c_proj_;
};

class Block : public Module {
 public:
  explicit Block(const GptConfig& c);
  Tensor forward(const Tensor& x) override;  // x: [B T, C] (attn's shape set)
  LayerNorm& ln_1() { return *ln_1_; }
  LayerNorm& ln_2() { return *ln_2_; }
  CausalSelfAttention& attn() { return *attn_; }
  Mlp& mlp() { return *mlp_; }

 private:
  std::shared_ptr<LayerNorm> ln_1_, ln_2_;
  std::shared_ptr<CausalSelfAttention> attn_;
  std::shared_ptr<Mlp> mlp_;
};

class Gpt : public Module {
 public:
  explicit Gpt(const GptConfig& c);
  // ids: int64 [B, T], T <= context, each id in [0, vocab) -> logits float32 [B T, V].
  // std::invalid_argument naming the id or the length otherwise.
  Tensor forward(const Tensor& ids) override;
  // The final hidden state ln_f(x) [B T, C] (forward without the head).
  Tensor hidden(const Tensor& ids);
  const GptConfig& config() const { return cfg_; }

  // Tied embeddings under data parallelism: the head's gradient is kept apart from the
  // embedding's (the head reads head_weight(), an alias of wte.weight that is its own leaf),
  // so each is a batch-order sum that can be combined on its own; fold_tied_gradient()
  // then sets wte.grad = wte.grad + head.grad (in that order, one rounding per element)
  // and clears the head's. Call it after backward (and after combining, data-parallel),
  // before the optimizer step. The single process does the same: the same bits.
  Tensor& head_weight() { return head_; }
  void fold_tied_gradient();

  Embedding& wte() { return *wte_; }
  Embedding& wpe() { return *wpe_; }
  Sequential& h() { return *h_; }
  Block& block(size_t i);
  LayerNorm& ln_f() { return *ln_f_; }

  // The embedding modules' names: no weight decay (optim::split_weight_decay).
  static std::vector<std::string> no_decay_modules() { return {"wte", "wpe"}; }

 private:
  void check_ids(const Tensor& ids) const;
  GptConfig cfg_;
  std::shared_ptr<Embedding> wte_, wpe_;
  std::shared_ptr<Sequential> h_;
  std::shared_ptr<LayerNorm> ln_f_;
  Tensor head_;  // alias of wte.weight, a separate leaf (not a registered parameter)
};

// Builds and initialises a GPT from `seed` (GPT-2's init, keyed by name).
std::shared_ptr<Gpt> make_gpt(uint64_t seed, const GptConfig& c);

}  // namespace lockstep::nn
