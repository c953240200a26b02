// libFuzzer target for checkpoint loading (serialize/checkpoint.h) behind valid checksums.
// A mutated file almost never keeps its checksums, and load_checkpoint requires them, so
// the harness re-signs each input before loading it:
//   1. drop the lockstep checksum keys from the JSON header (mutations elsewhere survive);
//   2. decode the result with the library's reader (no checksum required); an input that
//      is not a safetensors file any more ends here -- fuzz_safetensors.cpp covers that;
//   3. encode the same tensors and metadata again with checksums (the library's own
//      Checksum64, so nothing is re-implemented here) and write the file;
//   4. load it as weights only (checksums required) and as a checkpoint into a fresh
//      small training state: Linear-BatchNorm1d-Dropout-Linear, AdamW, a cosine schedule
//      and one named generator.
// Seeds (corpus/checkpoint) are checkpoints of that state: LOCKSTEP_FUZZ_WRITE_SEED=<file>
// makes the harness write one after `steps` training steps (the variable's value "file:steps").
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "core/autograd.h"
#include "core/random.h"
#include "fuzz_util.h"
#include "nn/models.h"
#include "optim/adam.h"
#include "optim/scheduler.h"
#include "serialize/checkpoint.h"

using namespace lockstep;

namespace {

struct State {
  std::shared_ptr<nn::Sequential> model;
  std::unique_ptr<optim::AdamW> opt;
  std::unique_ptr<optim::CosineAnnealingLR> sched;
  Generator gen{5, 0};
  serialize::TrainingState view() {
    serialize::TrainingState s;
    s.model = model.get(), s.optimizer = opt.get(), s.scheduler = sched.get();
    s.generators = {{"noise", &gen}};
    return s;
  }
};

std::unique_ptr<State> make_state(int steps) {
  auto s = std::make_unique<State>();
  s->model = std::make_shared<nn::Sequential>(std::make_shared<nn::Linear>(4, 3), std::make_shared<nn::BatchNorm1d>(3),
                                              std::make_shared<nn::Dropout>(0.25), std::make_shared<nn::Linear>(3, 2));
  s->model->reset_parameters(7);
  s->opt = std::make_unique<optim::AdamW>(s->model->parameters(), optim::AdamWOptions(1e-2));
  s->sched = std::make_unique<optim::CosineAnnealingLR>(*s->opt, 10);
  for (int i = 0; i < steps; ++i) {
    Tensor x = Tensor::empty({4, 4});
    s->gen.uniform_(x, -1, 1, 1);
    Tensor y = Tensor::from_vector(std::vector<int64_t>{0, 1, 1, 0}, {4});
    s->opt->zero_grad();
    cross_entropy(s->model->forward(x), y).backward();
    s->opt->step();
    s->sched->step();
  }
  return s;
}

// Step 1: the input without the checksum keys, or "" when its header is not JSON.
std::string strip_checksums(const uint8_t* data, size_t size) {
  if (size < 8) return "";
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | data[i];
  if (n > size - 8) return "";
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(data + 8, data + 8 + n, nullptr, false);
  if (j.is_discarded()) return "";
  if (j.is_object() && j.contains("__metadata__") && j["__metadata__"].is_object()) {
    j["__metadata__"].erase(serialize::kDataChecksumKey);
    j["__metadata__"].erase(serialize::kHeaderChecksumKey);
  }
  const std::string header = j.dump();
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  out += header;
  out.append(reinterpret_cast<const char*>(data) + 8 + n, size - 8 - n);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Seed writer (see the top): "file:steps".
  if (const char* seed = std::getenv("LOCKSTEP_FUZZ_WRITE_SEED")) {
    const std::string spec = seed;
    const size_t colon = spec.rfind(':');
    auto st = make_state(colon == std::string::npos ? 0 : std::atoi(spec.c_str() + colon + 1));
    auto view = st->view();
    view.step = 3, view.epoch = 1;
    serialize::save_checkpoint(spec.substr(0, colon), view);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const lockstep_fuzz::ScratchFile file(lockstep_fuzz::scratch_path("checkpoint", ".safetensors"));
  const std::string stripped = strip_checksums(data, size);
  if (stripped.empty()) return 0;
  serialize::SafetensorsContents contents;
  if (!lockstep_fuzz::read_or_reject(
          [&] { contents = serialize::decode_safetensors(stripped.data(), stripped.size(), "<fuzz>"); }))
    return 0;
  // Step 3. encode refuses, as caller misuse, names that decode accepts (an empty name):
  // such an input cannot be re-signed and ends here.
  std::string signed_file;
  try {
    signed_file = serialize::encode_safetensors(contents.tensors.items(), contents.metadata);
  } catch (const std::invalid_argument&) {
    return 0;
  }
  lockstep_fuzz::write_file(file.path, signed_file.data(), signed_file.size());
  serialize::LoadOptions require;
  require.require_checksum = true;
  const bool weights = lockstep_fuzz::read_or_reject([&] { serialize::load_state_dict_file(file.path, require); });
  auto st = make_state(0);
  auto view = st->view();
  const bool checkpoint = lockstep_fuzz::read_or_reject([&] { serialize::load_checkpoint(file.path, view); });
  // LOCKSTEP_FUZZ_VERBOSE: how far each input got, to judge the seeds.
  static const bool verbose = std::getenv("LOCKSTEP_FUZZ_VERBOSE") != nullptr;
  if (verbose) std::fprintf(stderr, "fuzz_checkpoint: re-signed; weights %d, checkpoint %d\n", weights, checkpoint);
  return 0;
}
