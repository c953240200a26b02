// `lockstep generate`: text from a `lockstep train --model gpt` checkpoint, greedy or seeded
// sampling, every request of a batch served together (generate/generator.h): in
// deterministic mode a request's tokens and logits are the same bits alone or in any batch.
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "commands.h"
#include "base/error.h"
#include "base/mode.h"
#include "base/parallel.h"
#include "core/sha256.h"
#include "core/tensor.h"
#include "generate/generator.h"
#include "serialize/safetensors.h"

namespace lockstep_cli {
namespace {

using namespace lockstep;

struct GenerateFlags {
  std::string checkpoint, batch_file, mode = "deterministic", logits_out;
  std::vector<std::string> prompts;
  int64_t max_new_tokens = 64;
  double temperature = 0.0;
  uint64_t seed = 0;
  int threads = 0;
  bool json = false;
};

// A request of --batch: a JSON string (the prompt) or an object with "prompt" (text) or
// "tokens" (ids), and optionally "id", "max_new_tokens", "temperature", "seed".
tools::GenRequest parse_request(const nlohmann::json& j, const GenerateFlags& f, const data::CharVocab& vocab,
                                uint64_t index, const std::string& where) {
  tools::GenRequest r;
  r.max_new_tokens = f.max_new_tokens, r.temperature = f.temperature, r.seed = f.seed, r.id = index;
  try {
    if (j.is_string()) {
      r.prompt = vocab.encode(j.get<std::string>());
      return r;
    }
    if (!j.is_object()) throw std::invalid_argument("expected a JSON string or object");
    if (j.contains("prompt")) r.prompt = vocab.encode(j.at("prompt").get<std::string>());
    else if (j.contains("tokens")) r.prompt = j.at("tokens").get<std::vector<int64_t>>();
    else throw std::invalid_argument("expected \"prompt\" (text) or \"tokens\" (ids)");
    if (j.contains("id")) r.id = j.at("id").get<uint64_t>();
    if (j.contains("max_new_tokens")) r.max_new_tokens = j.at("max_new_tokens").get<int64_t>();
    if (j.contains("temperature")) r.temperature = j.at("temperature").get<double>();
    if (j.contains("seed")) r.seed = j.at("seed").get<uint64_t>();
  } catch (const std::exception& e) {
    throw std::invalid_argument(str_cat("[generate] ", where, ": ", e.what()));
  }
  return r;
}

int run_generate(const GenerateFlags& f) {
  if (f.threads > 0) set_num_threads(f.threads);
  set_mode(f.mode == "fast" ? Mode::fast : Mode::deterministic);
  LS_CHECK_ARG(f.max_new_tokens >= 0, "generate", "--max-new-tokens: expected an integer >= 0, got ", f.max_new_tokens);
  LS_CHECK_ARG(f.temperature >= 0, "generate", "--temperature: expected a number >= 0 (0: greedy), got ",
               f.temperature);
  const tools::LoadedGpt g = tools::load_gpt_checkpoint(f.checkpoint);
  std::vector<tools::GenRequest> reqs;
  for (const std::string& p : f.prompts)
    reqs.push_back(parse_request(nlohmann::json(p), f, g.vocab, reqs.size(), "--prompt"));
  if (!f.batch_file.empty()) {
    std::ifstream in(f.batch_file);
    if (!in) throw std::runtime_error(str_cat("[generate] --batch ", f.batch_file, ": cannot open"));
    std::string line;
    for (int64_t n = 1; std::getline(in, line); ++n) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      const std::string where = str_cat("--batch ", f.batch_file, " line ", n);
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(line);
      } catch (const std::exception& e) {
        throw std::invalid_argument(str_cat("[generate] ", where, ": not JSON: ", e.what()));
      }
      reqs.push_back(parse_request(j, f, g.vocab, reqs.size(), where));
    }
  }
  if (reqs.empty()) throw std::invalid_argument("[generate] expected --prompt TEXT or --batch FILE");
  const std::vector<tools::GenResult> res = tools::generate(*g.model, reqs, true);
  nlohmann::ordered_json all = nlohmann::ordered_json::array();
  serialize::NamedTensors saved;  // --logits-out: "prompt.<i>" int64 [P], "tokens.<i>", "logits.<i>" float32 [n, V]
  for (size_t i = 0; i < reqs.size(); ++i) {
    const std::string prompt = g.vocab.decode(reqs[i].prompt), completion = g.vocab.decode(res[i].tokens);
    // The logits every token was chosen from, hashed as one float32 [n, V] tensor.
    std::vector<float> flat;
    for (const auto& row : res[i].logits) flat.insert(flat.end(), row.begin(), row.end());
    const Tensor lt = Tensor::from_vector(flat, {static_cast<int64_t>(res[i].logits.size()), g.model->config().vocab_size});
    const std::string lh = sha256_hex(lt);
    if (!f.logits_out.empty()) {
      const auto n = [](const std::vector<int64_t>& v) { return Shape{static_cast<int64_t>(v.size())}; };
      saved.push_back({str_cat("prompt.", i), Tensor::from_vector(reqs[i].prompt, n(reqs[i].prompt))});
      saved.push_back({str_cat("tokens.", i), Tensor::from_vector(res[i].tokens, n(res[i].tokens))});
      saved.push_back({str_cat("logits.", i), lt});
    }
    if (!f.json) {
      std::printf("--- request %llu (%zu + %zu tokens, logits %s)\n%s%s\n",
                  static_cast<unsigned long long>(reqs[i].id), reqs[i].prompt.size(), res[i].tokens.size(),
                  lh.substr(0, 16).c_str(), prompt.c_str(), completion.c_str());
      continue;
    }
    nlohmann::ordered_json j;
    j["id"] = reqs[i].id;
    j["prompt"] = prompt;
    j["completion"] = completion;
    j["tokens"] = res[i].tokens;
    j["logits_sha256"] = lh;
    all.push_back(j);
  }
  if (!f.logits_out.empty()) serialize::save_safetensors(f.logits_out, saved);
  if (f.json) {
    nlohmann::ordered_json j;
    j["checkpoint"] = g.file;
    j["mode"] = f.mode;
    j["threads"] = num_threads();
    j["requests"] = all;
    std::printf("%s\n", j.dump().c_str());
  }
  return 0;
}

}  // namespace

void add_generate(CLI::App& app, int* rc) {
  auto f = std::make_shared<GenerateFlags>();
  CLI::App* sub = app.add_subcommand("generate", "generate text from a --model gpt checkpoint (batch-invariant)");
  sub->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  sub->add_option("--checkpoint", f->checkpoint, "a checkpoint file or a --save directory (its latest)")->required();
  sub->add_option("--prompt", f->prompts, "prompt text (repeat for a batch)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  sub->add_option("--batch", f->batch_file,
                  "JSON Lines of requests: a string, or {\"prompt\"|\"tokens\", \"id\", \"max_new_tokens\", "
                  "\"temperature\", \"seed\"}");
  sub->add_option("--max-new-tokens", f->max_new_tokens, "tokens to generate per request")->capture_default_str();
  sub->add_option("--temperature", f->temperature, "0: greedy; > 0: sampling")->capture_default_str();
  sub->add_option("--seed", f->seed, "sampling seed (Philox keyed by request id and position)")->capture_default_str();
  sub->add_option("--threads", f->threads, "CPU threads (0: default)");
  sub->add_option("--mode", f->mode, "deterministic or fast")
      ->check(CLI::IsMember({"deterministic", "fast"}))
      ->capture_default_str();
  sub->add_option("--logits-out", f->logits_out,
                  "safetensors: each request's prompt.<i>, tokens.<i> and logits.<i> (the rows tokens came from)");
  sub->add_flag("--json", f->json, "one JSON object: each request's completion, tokens and logits hash");
  sub->callback([f, rc] { *rc = run_generate(*f); });
}

}  // namespace lockstep_cli
