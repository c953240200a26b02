// The GPT (nn/gpt.h), its training through the tools' loop (--model gpt) and generation
// (tools/generate/generator.h): state-dict names, the tied head's gradient, batch-invariant
// generation (tokens and logits alone = in any batch), generation's logits = the training
// forward's, bad input, and data parallelism at world sizes 1-5 = one process.
#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <string>

#include "base/parallel.h"
#include "core/autograd.h"
#include "generate/generator.h"
#include "nn/gpt.h"
#include "test_util.h"
#include "train/distributed.h"
#include "train/trainer.h"

using namespace lockstep;
using namespace lockstep_test;
using Catch::Contains;

namespace {

// A small deterministic text with some structure (~3 KB, 30-odd characters).
const std::string& small_text_file() {
  static const std::string path = [] {
    std::string text;
    const char* words[] = {"the ", "cat ", "sat ", "on ", "a ", "mat. ", "Dogs ", "run! ", "why? ", "%\n"};
    for (int i = 0; i < 700; ++i) text += words[(i * 7 + i / 3) % 10];
    const std::string p = make_temp_dir("gpt_text") + "/text.txt";
    std::ofstream(p) << text;
    return p;
  }();
  return path;
}

nn::GptConfig tiny(int64_t vocab) {
  nn::GptConfig c;
  c.vocab_size = vocab, c.context = 16, c.n_layer = 2, c.n_head = 2, c.n_embd = 16;
  return c;
}

tools::TrainConfig tiny_train(int64_t context, int64_t batch) {
  tools::TrainConfig cfg;
  cfg.model = "gpt";
  tools::apply_gpt_defaults(cfg, {});
  cfg.text = small_text_file();
  cfg.context = context, cfg.n_layer = 2, cfg.n_head = 2, cfg.n_embd = 16, cfg.batch_size = batch;
  cfg.max_steps = 4, cfg.warmup = 2, cfg.seed = 3;
  return cfg;
}

}  // namespace

TEST_CASE("gpt: nanoGPT state-dict names and no decay on embeddings, norms and biases", "[gpt]") {
  auto m = nn::make_gpt(1, tiny(11));
  const auto sd = m->state_dict();
  std::vector<std::string> keys;
  for (const auto& kv : sd.items()) keys.push_back(kv.first);
  REQUIRE(keys.size() == 2 + 2 * 12 + 2);
  REQUIRE(keys[0] == "wte.weight");
  REQUIRE(keys[1] == "wpe.weight");
  REQUIRE(keys[2] == "h.0.ln_1.weight");
  REQUIRE(keys[4] == "h.0.attn.c_attn.weight");
  REQUIRE(sd.at("h.1.mlp.c_fc.weight").shape() == Shape{64, 16});
  REQUIRE(keys.back() == "ln_f.bias");
  const auto split = optim::split_weight_decay(m->named_parameters(), nn::Gpt::no_decay_modules());
  REQUIRE(split.decay_names.size() == 2 * 4);  // c_attn, attn.c_proj, c_fc, mlp.c_proj per block
  REQUIRE_THROWS_WITH(nn::make_gpt(1, [] { auto c = tiny(11); c.n_embd = 15; return c; }()),
                      Contains("[make_gpt] expected n_embd a multiple of n_head (2), got 15"));
}

TEST_CASE("gpt: the tied head's gradient is folded into wte's", "[gpt]") {
  auto m = nn::make_gpt(2, tiny(11));
  Tensor ids = Tensor::from_vector(std::vector<int64_t>{1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor loss = cross_entropy(m->forward(ids), Tensor::from_vector(std::vector<int64_t>{2, 3, 4, 5, 6, 7}, {6}));
  loss.backward();
  const Tensor emb = m->wte().weight().grad().clone(), head = m->head_weight().grad().clone();
  REQUIRE(emb.defined());
  REQUIRE(head.defined());
  m->fold_tied_gradient();
  REQUIRE(equal_bits(m->wte().weight().grad(), emb + head));
  REQUIRE_FALSE(m->head_weight().grad().defined());
  REQUIRE_THROWS_WITH(m->forward(Tensor::from_vector(std::vector<int64_t>{1, 11}, {1, 2})),
                      Contains("token ids in [0, 11), got 11 at [0, 1]"));
  REQUIRE_THROWS_WITH(m->forward(Tensor::zeros({1, 17}, DType::i64)), Contains("1 to 16 tokens") && Contains("17"));
}

TEST_CASE("gpt: generation is batch-invariant and equals the training forward", "[gpt][deterministic]") {
  auto m = nn::make_gpt(5, tiny(13));
  const std::vector<int64_t> p = {3, 1, 4, 1, 5};
  tools::GenRequest alone{p, 6, 0.0, 0, 7};
  const tools::GenResult a = tools::generate(*m, {alone}, true)[0];
  REQUIRE(a.tokens.size() == 6);
  // The logits of the last prompt token = the full forward's last row, bit for bit.
  {
    NoGradGuard ng;
    m->eval();
    const std::vector<float> full = m->forward(Tensor::from_vector(p, {1, 5})).to_vector<float>();
    REQUIRE(std::vector<float>(full.end() - 13, full.end()) == a.logits[0]);
  }
  for (int threads : {1, 3}) {
    ThreadsGuard tg(threads);
    // The same request among others of other lengths, in other places, with sampling ones.
    std::vector<tools::GenRequest> batch = {{{2}, 9, 0.8, 1, 100}, {{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 3, 0.0, 0, 101},
                                            alone, {{0, 0}, 12, 1.3, 9, 102}};
    const auto got = tools::generate(*m, batch, true);
    INFO("threads " << threads);
    REQUIRE(got[2].tokens == a.tokens);
    REQUIRE(got[2].logits == a.logits);
    REQUIRE(got[1].tokens.size() == 3);
    // A sampled request alone gives what it gave in the batch (keyed by its id, not its place).
    const auto s = tools::generate(*m, {batch[3]}, true)[0];
    REQUIRE(s.tokens == got[3].tokens);
    REQUIRE(s.logits == got[3].logits);
  }
  // Another id samples another stream.
  tools::GenRequest other = {{0, 0}, 12, 1.3, 9, 103};
  tools::GenRequest same = {{0, 0}, 12, 1.3, 9, 102};
  REQUIRE(tools::generate(*m, {other})[0].tokens != tools::generate(*m, {same})[0].tokens);
  // A sequence stops at the context.
  REQUIRE(tools::generate(*m, {{std::vector<int64_t>(14, 1), 10, 0.0, 0, 0}})[0].tokens.size() == 3);
}

TEST_CASE("gpt: generation refuses bad prompts naming the request", "[gpt]") {
  auto m = nn::make_gpt(5, tiny(13));
  REQUIRE_THROWS_WITH(tools::generate(*m, {{{1}, 1}, {{1, 13}, 1}}),
                      Contains("request 1: token id 13 at position 1 is outside the vocabulary [0, 13)"));
  REQUIRE_THROWS_WITH(tools::generate(*m, {{std::vector<int64_t>(17, 0), 1}}),
                      Contains("request 0: the prompt has 17 tokens, longer than the model's context of 16"));
  REQUIRE_THROWS_WITH(tools::generate(*m, {{{}, 1}}), Contains("at least one token"));
}

TEST_CASE("gpt: data-parallel training at world sizes 1-5 gives the single-process bits", "[gpt][deterministic][dist]") {
  // context 16: two sequences per 32-token chunk; context 64: two chunks per sequence.
  for (auto [context, batch] : {std::pair<int64_t, int64_t>{16, 8}, {64, 6}}) {
    const tools::TrainConfig cfg = tiny_train(context, batch);
    tools::Trainer plain(cfg);
    const tools::TrainResult ref = plain.run();
    REQUIRE(ref.steps == 4);
    REQUIRE(ref.val_loss > 0);
    for (int W = 1; W <= 5; ++W) {
      INFO("context " << context << ", world " << W);
      tools::DistributedOptions o;
      o.check_replicas = true;
      const tools::TrainResult r = tools::train_at_world_size(W, cfg, {}, o).train;
      REQUIRE(r.weights_sha256 == ref.weights_sha256);
      REQUIRE_BITWISE_EQUAL(r.losses, ref.losses);
      REQUIRE(r.val_loss == ref.val_loss);
    }
  }
  tools::TrainConfig odd = tiny_train(24, 4);
  REQUIRE_THROWS_WITH(tools::train_at_world_size(2, odd, {}), Contains("expected --context a power of two"));
}
