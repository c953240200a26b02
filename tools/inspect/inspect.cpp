// `lockstep inspect FILE` lists a safetensors file's (checkpoint's) tensors, shapes, dtypes
// and metadata; `lockstep hash FILE` prints its weights' SHA-256. Both validate the whole
// file first -- header, bounds, and lockstep's checksums (serialize/safetensors.h) -- and
// exit 1 with the reader's message on any corruption.
//
// The weights hash is state_dict_sha256 of the "model.*" tensors with the prefix
// removed, in file order (a checkpoint), or of all tensors (a plain state dict such as
// `train --export-init` writes): for a checkpoint of the final step it equals the
// weights_sha256 that `train --json` printed.
#include <sys/stat.h>

#include <cstdio>
#include <memory>
#include <string>

#include "commands.h"
#include "core/sha256.h"
#include "serialize/safetensors.h"

namespace lockstep_cli {
namespace {

using namespace lockstep;

struct InspectFlags {
  std::string file;
  bool no_checksum = false;
};

serialize::SafetensorsContents load_checked(const InspectFlags& f) {
  if (f.file.empty()) throw std::invalid_argument("expected a FILE");
  serialize::LoadOptions lo;
  lo.require_checksum = !f.no_checksum;
  try {
    return serialize::load_safetensors(f.file, lo);
  } catch (const std::runtime_error& e) {
    // A file from another writer (PyTorch, the safetensors library) has no lockstep checksum.
    const std::string what = e.what();
    if (!f.no_checksum && what.find("missing (required for this file)") != std::string::npos)
      throw std::runtime_error(what + "; a file written by another program has none: use --no-checksum");
    throw;
  }
}

// The weights: model.* without the prefix, or every tensor when there is no model section.
StateDict weights_of(const serialize::SafetensorsContents& c) {
  StateDict model, all;
  for (const auto& [name, t] : c.tensors.items()) {
    all.insert(name, t);
    if (name.compare(0, 6, "model.") == 0) model.insert(name.substr(6), t);
  }
  return model.size() > 0 ? model : all;
}

int run_inspect(const InspectFlags& f) {
  const serialize::SafetensorsContents c = load_checked(f);
  struct stat st {};
  ::stat(f.file.c_str(), &st);
  std::printf("%s: safetensors, %lld bytes, %zu tensors, %s\n", f.file.c_str(), static_cast<long long>(st.st_size),
              c.tensors.size(), f.no_checksum ? "checksums not required" : "header and data checksums verified");
  std::printf("metadata (%zu):\n", c.metadata.size());
  for (const auto& [k, v] : c.metadata) std::printf("  %-26s %s\n", k.c_str(), v.c_str());
  std::printf("tensors:\n");
  for (const auto& [name, t] : c.tensors.items())
    std::printf("  %-34s %-8s %-12s %10zu bytes  sha256 %.16s\n", name.c_str(), dtype_name(t.dtype()),
                shape_str(t.shape()).c_str(), t.nbytes(), sha256_hex(t).c_str());
  const StateDict w = weights_of(c);
  std::printf("weights_sha256 %s (%zu tensors)\n", state_dict_sha256(w).c_str(), w.size());
  return 0;
}

int run_hash(const InspectFlags& f) {
  const serialize::SafetensorsContents c = load_checked(f);
  std::printf("%s  %s\n", state_dict_sha256(weights_of(c)).c_str(), f.file.c_str());
  return 0;
}

CLI::App* add_file_command(CLI::App& app, const char* name, const char* help, std::shared_ptr<InspectFlags> f) {
  CLI::App* sub = app.add_subcommand(name, help);
  sub->add_option("FILE", f->file, "safetensors file (a checkpoint or a state dict)")->required();
  sub->add_flag("--no-checksum", f->no_checksum, "accept files without lockstep's checksums (other writers)");
  return sub;
}

}  // namespace

void add_inspect(CLI::App& app, int* rc) {
  auto f = std::make_shared<InspectFlags>();
  add_file_command(app, "inspect", "validate a checkpoint and list its tensors, shapes, dtypes and metadata", f)
      ->callback([f, rc] { *rc = run_inspect(*f); });
  auto g = std::make_shared<InspectFlags>();
  add_file_command(app, "hash", "validate a checkpoint and print its weights' SHA-256", g)
      ->callback([g, rc] { *rc = run_hash(*g); });
}

}  // namespace lockstep_cli
