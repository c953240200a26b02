#include "generate/generator.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "base/error.h"
#include "base/philox.h"
#include "core/autograd.h"
#include "core/frozen_weights.h"
#include "core/kv_cache.h"
#include "core/ops.h"
#include "core/random.h"
#include "serialize/checkpoint.h"
#include "serialize/safetensors.h"

namespace lockstep::tools {

LoadedGpt load_gpt_checkpoint(const std::string& path) {
  struct stat sb {};
  if (::stat(path.c_str(), &sb) != 0)
    throw std::runtime_error(str_cat("[generate] --checkpoint ", path, ": no such file or directory"));
  LoadedGpt g;
  g.file = path;
  if (S_ISDIR(sb.st_mode)) {
    const auto latest = serialize::latest_checkpoint(path, "ckpt");
    if (!latest)
      throw std::runtime_error(str_cat("[generate] --checkpoint ", path, ": no checkpoint (ckpt-<step>.safetensors) "
                                       "in that directory"));
    g.file = *latest;
  }
  serialize::LoadOptions lo;
  lo.require_checksum = true;
  const serialize::SafetensorsContents f = serialize::load_safetensors(g.file, lo);
  auto meta = [&](const std::string& key) -> const std::string& {
    auto it = f.metadata.find("user." + key);
    if (it == f.metadata.end())
      throw std::runtime_error(str_cat("[generate] ", g.file, ": metadata user.", key,
                                       " missing: not a checkpoint of lockstep train --model gpt"));
    return it->second;
  };
  if (meta("recipe") != "gpt-char")
    throw std::runtime_error(str_cat("[generate] ", g.file, ": a checkpoint of another model (user.recipe = ",
                                     meta("recipe"), "); expected one of lockstep train --model gpt (gpt-char)"));
  auto num = [&](const char* key) {
    const std::string& v = meta(key);
    try {
      size_t used = 0;
      const int64_t x = std::stoll(v, &used);
      if (used == v.size()) return x;
    } catch (const std::exception&) {
    }
    throw std::runtime_error(str_cat("[generate] ", g.file, ": metadata user.", key, ": expected an integer, got '",
                                     v, "'"));
  };
  try {
    g.vocab = data::CharVocab::parse(meta("vocab"), g.file + ": user.vocab");
    nn::GptConfig c;
    c.vocab_size = g.vocab.size(), c.context = num("context"), c.n_layer = num("n_layer"), c.n_head = num("n_head");
    c.n_embd = num("n_embd");
    g.model = std::make_shared<nn::Gpt>(c);
    StateDict sd;
    for (const auto& [name, t] : f.tensors.items())
      if (name.rfind("model.", 0) == 0) sd.insert(name.substr(6), t);
    g.model->load_state_dict(sd, true);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(str_cat("[generate] ", g.file, ": ", e.what()));
  }
  g.model->eval();
  return g;
}

int64_t choose_token(const float* logits, int64_t vocab, double temperature, uint64_t seed, uint64_t id,
                     int64_t position) {
  if (temperature <= 0.0) {
    int64_t best = 0;
    for (int64_t i = 1; i < vocab; ++i)
      if (logits[i] > logits[best]) best = i;
    return best;
  }
  // p = softmax(logits / temperature) with the softmax op (the project's exp).
  Tensor row = Tensor::from_vector(std::vector<float>(logits, logits + vocab), {1, vocab});
  const std::vector<float> p = softmax(row * (1.0 / temperature)).to_vector<float>();
  double total = 0.0;
  for (float v : p) total += static_cast<double>(v);
  const double u = uniform_f64(seed, stream_id("generate:" + std::to_string(id)), static_cast<uint64_t>(position));
  const double target = u * total;
  double run = 0.0;
  for (int64_t i = 0; i < vocab; ++i) {
    run += static_cast<double>(p[static_cast<size_t>(i)]);
    if (run > target) return i;
  }
  return vocab - 1;  // rounding left the target at the very end
}

std::vector<GenResult> generate(nn::Gpt& model, const std::vector<GenRequest>& reqs, bool keep_logits) {
  const nn::GptConfig& c = model.config();
  const int64_t N = static_cast<int64_t>(reqs.size()), C = c.n_embd, H = c.n_head, D = C / H, V = c.vocab_size;
  for (int64_t r = 0; r < N; ++r) {
    const GenRequest& q = reqs[static_cast<size_t>(r)];
    LS_CHECK_ARG(!q.prompt.empty(), "generate", "request ", r, ": expected a prompt of at least one token");
    LS_CHECK_ARG(static_cast<int64_t>(q.prompt.size()) <= c.context, "generate", "request ", r, ": the prompt has ",
                 q.prompt.size(), " tokens, longer than the model's context of ", c.context);
    for (size_t t = 0; t < q.prompt.size(); ++t)
      LS_CHECK_ARG(q.prompt[t] >= 0 && q.prompt[t] < V, "generate", "request ", r, ": token id ", q.prompt[t],
                   " at position ", t, " is outside the vocabulary [0, ", V, ")");
    LS_CHECK_ARG(q.max_new_tokens >= 0, "generate", "request ", r, ": expected max_new_tokens >= 0, got ",
                 q.max_new_tokens);
    LS_CHECK_ARG(q.temperature >= 0, "generate", "request ", r, ": expected a temperature >= 0, got ", q.temperature);
  }
  std::vector<GenResult> out(static_cast<size_t>(N));
  if (N == 0) return out;
  NoGradGuard ng;
  model.eval();
  // The weights do not change while generating: each is packed for the GEMM once, not per
  // one-row product (core/frozen_weights.h; the same bits).
  FrozenWeights frozen(model.parameters());
  std::vector<KVCache> caches;
  for (int64_t l = 0; l < c.n_layer; ++l) caches.emplace_back(N, H, c.context, D);
  std::vector<int64_t> pos(static_cast<size_t>(N), 0);  // the position each request feeds next
  auto active = [&](int64_t r) {
    const GenRequest& q = reqs[static_cast<size_t>(r)];
    const auto& g = out[static_cast<size_t>(r)].tokens;
    const int64_t p = pos[static_cast<size_t>(r)];
    if (p < static_cast<int64_t>(q.prompt.size())) return true;  // prefilling
    return static_cast<int64_t>(g.size()) < q.max_new_tokens && p < c.context && !g.empty();
  };
  std::vector<int64_t> ids(static_cast<size_t>(N)), where(static_cast<size_t>(N));
  for (;;) {
    bool any = false;
    for (int64_t r = 0; r < N; ++r) {
      const GenRequest& q = reqs[static_cast<size_t>(r)];
      const int64_t p = pos[static_cast<size_t>(r)];
      const bool on = active(r);
      any = any || on;
      // An idle row feeds token 0 at position 0; its outputs are never read.
      ids[static_cast<size_t>(r)] = !on ? 0 : p < static_cast<int64_t>(q.prompt.size())
                                                  ? q.prompt[static_cast<size_t>(p)]
                                                  : out[static_cast<size_t>(r)].tokens.back();
      where[static_cast<size_t>(r)] = on ? p : 0;
    }
    if (!any) break;
    Tensor x = model.wte().forward(Tensor::from_vector(ids, {N})) +
               model.wpe().forward(Tensor::from_vector(where, {N}));  // [N, C]
    for (int64_t l = 0; l < c.n_layer; ++l) {
      nn::Block& b = model.block(static_cast<size_t>(l));
      const Tensor qkv = b.attn().c_attn().forward(b.ln_1().forward(x)).contiguous();  // [N, 3C]: q, k, v
      const float* src = qkv.data<float>();
      Tensor q = Tensor::empty({N, H, 1, D});
      for (int64_t r = 0; r < N; ++r) {
        std::memcpy(q.data<float>() + r * C, src + r * 3 * C, static_cast<size_t>(C) * sizeof(float));
        if (!active(r)) continue;
        Tensor k = Tensor::empty({H, 1, D}), v = Tensor::empty({H, 1, D});
        std::memcpy(k.data<float>(), src + r * 3 * C + C, static_cast<size_t>(C) * sizeof(float));
        std::memcpy(v.data<float>(), src + r * 3 * C + 2 * C, static_cast<size_t>(C) * sizeof(float));
        caches[static_cast<size_t>(l)].append_row(r, k, v);
      }
      // [N, H, 1, D] is [N, C] with the heads side by side: c_proj's input as is.
      const Tensor y = caches[static_cast<size_t>(l)].attend(q, true).reshape({N, C});
      x = x + b.attn().c_proj().forward(y);
      x = x + b.mlp().forward(b.ln_2().forward(x));
    }
    const Tensor logits = linear(model.ln_f().forward(x), model.wte().weight(), Tensor()).contiguous();  // [N, V]
    const float* lp = logits.data<float>();
    for (int64_t r = 0; r < N; ++r) {
      if (!active(r)) continue;
      const GenRequest& q = reqs[static_cast<size_t>(r)];
      const int64_t p = pos[static_cast<size_t>(r)]++;
      GenResult& g = out[static_cast<size_t>(r)];
      // The logits of the last prompt token and of every generated one choose the next.
      if (p + 1 < static_cast<int64_t>(q.prompt.size()) || static_cast<int64_t>(g.tokens.size()) >= q.max_new_tokens)
        continue;
      const float* row = lp + r * V;
      g.tokens.push_back(choose_token(row, V, q.temperature, q.seed, q.id, p + 1));
      if (keep_logits) g.logits.emplace_back(row, row + V);
    }
  }
  return out;
}

}  // namespace lockstep::tools
