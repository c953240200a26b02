// Batched text generation with a GPT (nn/gpt.h) over KV caches (core/kv_cache.h): the
// engine behind `lockstep generate` and the lab's batched-generation scenario.
//
// Every request of a batch advances by one token per tick: a tick feeds each active
// request's next token (its next prompt token while prefilling, else the token it sampled
// last) as one row of an N-row forward (N = the batch's requests), so prompts of any length
// mix in one batch. The row-wise ops (embedding, LayerNorm, Linear, GELU) and the cached
// attention (each row over its own keys, no split derived from the batch) give a row the
// same bits whatever the other rows are: in deterministic mode a request's tokens and
// logits do not depend on the batch it is served in (tests/tools/test_generate.cpp).
// Fast mode keeps the library GEMM and the split-KV attention, whose bits depend on N.
//
// Choosing a token from the logits of the last position:
//   temperature == 0: greedy, the first index of the maximum;
//   temperature > 0:  p = softmax(logits / temperature) (the project's exp); u = the Philox
//                     uint32 at (seed, stream_id("generate:<request id>"), position) / 2^32;
//                     the token is the first i whose running sum (double, increasing i) of p
//                     exceeds u * sum(p). Keyed by the request id, not its place in the batch.
// A request stops after max_new_tokens tokens or when its sequence fills the context.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/text.h"
#include "nn/gpt.h"

namespace lockstep::tools {

struct GenRequest {
  std::vector<int64_t> prompt;  // at least one token, at most the context
  int64_t max_new_tokens = 64;
  double temperature = 0.0;     // 0: greedy
  uint64_t seed = 0;
  uint64_t id = 0;              // the sampling stream's key
};

struct GenResult {
  std::vector<int64_t> tokens;            // generated tokens (the prompt not included)
  std::vector<std::vector<float>> logits; // with keep_logits: the logits each token was chosen from
};

// Runs the requests as one batch (model in eval mode, no gradients). Checks every prompt
// first: empty, longer than the context, or holding an id outside [0, vocab) ->
// std::invalid_argument naming the request and the position.
std::vector<GenResult> generate(nn::Gpt& model, const std::vector<GenRequest>& requests, bool keep_logits = false);

// The GPT of a `lockstep train --model gpt` checkpoint: `path` a checkpoint file or a
// --save directory (its latest checkpoint). std::runtime_error naming the file when it is
// unreadable, damaged, or a checkpoint of another model (its user.recipe named).
struct LoadedGpt {
  std::shared_ptr<nn::Gpt> model;
  data::CharVocab vocab;
  std::string file;
};
LoadedGpt load_gpt_checkpoint(const std::string& path);

// The token chosen from one row of logits by the rule above (exposed for tests).
int64_t choose_token(const float* logits, int64_t vocab, double temperature, uint64_t seed, uint64_t id,
                     int64_t position);

}  // namespace lockstep::tools
