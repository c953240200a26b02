// The safetensors format (https://github.com/huggingface/safetensors), read and written
// without any other library than nlohmann-json:
//
//   [8 bytes]  N, the header length, unsigned little-endian
//   [N bytes]  JSON object: "<name>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [b, e]}
//              for each tensor, and optionally "__metadata__": {"key": "value", ...}
//              (strings only). Written compact, padded with spaces so 8 + N is a multiple of 8.
//   [rest]     the data section: tensor bytes, row-major, little-endian; [b, e) is relative
//              to the start of the data section.
//
// dtypes: F32, F64, I64, U8 (lockstep's four); other safetensors dtypes are rejected.
//
// Reading checks everything before returning a tensor, and every failure is a
// std::runtime_error "[safetensors] <file>: <field>: ..." naming the file and the field:
// header length against the file size and kMaxHeaderBytes; the JSON; each entry's keys,
// dtype, shape (at most kMaxDims dims) and offsets; numel x dtype size == e - b; the ranges
// inside the data section, not overlapping, and covering it exactly; and the checksums.
//
// Checksums (lockstep's own metadata, ignored by other tools): "lockstep.data_checksum" is
// checksum64 of the data section; "lockstep.header_checksum" is checksum64 of the parsed
// header in a canonical form (each tensor in data order as name, dtype, shape, offsets;
// then every other metadata key and value in key order), so a damaged name, shape or
// metadata value is caught as well as damaged data. Files without them (written by other
// tools) load unless the caller requires them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "core/state_dict.h"
#include "serialize/atomic_file.h"

namespace lockstep::serialize {

using Metadata = std::map<std::string, std::string>;
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// The largest header accepted (the reference implementation's limit, 100 MB).
inline constexpr uint64_t kMaxHeaderBytes = 100'000'000;
inline constexpr const char* kDataChecksumKey = "lockstep.data_checksum";
inline constexpr const char* kHeaderChecksumKey = "lockstep.header_checksum";

// checksum64: FNV-1a 64 run on 8 interleaved lanes of 64-bit little-endian words (word i
// of the stream goes to lane i mod 8: h = (h ^ word) * 0x100000001b3, each lane starting
// from the FNV offset basis), then FNV-1a over the 8 lane values, the trailing bytes (fewer
// than 64) and the total length. About 8 words per multiply latency instead of one byte, so
// it runs at memory speed; any change confined to one lane is always detected.
class Checksum64 {
 public:
  Checksum64();
  void update(const void* data, size_t n);
  uint64_t digest() const;

 private:
  void block(const unsigned char* p);  // 64 bytes
  uint64_t lane_[8];
  unsigned char buf_[64];
  size_t buffered_ = 0;
  uint64_t length_ = 0;
};
std::string checksum_hex(uint64_t c);  // 16 lowercase hex digits

struct SaveOptions {
  bool checksum = true;       // write lockstep.data_checksum and lockstep.header_checksum
  AtomicWriteOptions atomic;  // durable (fsync) by default; fault-injection hook for tests
};

struct LoadOptions {
  bool require_checksum = false;  // a file without the lockstep checksums is an error
};

// A loaded file: tensors in data order (as PyTorch writes state dicts, that is key order
// for files written here), and the metadata without the checksum keys.
struct SafetensorsContents {
  StateDict tensors;
  Metadata metadata;
};

// Writes `tensors` (any device and layout; copied to contiguous CPU memory only when
// needed) atomically to `path`. Names must be unique and non-empty, must not be
// "__metadata__"; metadata keys must not be the lockstep.* checksum keys.
void save_safetensors(const std::string& path, const NamedTensors& tensors, const Metadata& metadata = {},
                      const SaveOptions& options = {});
// The same file as bytes in memory.
std::string encode_safetensors(const NamedTensors& tensors, const Metadata& metadata = {}, bool checksum = true);

// Reads `path`: the header is read and checked first, then each tensor is read straight
// into its own storage.
SafetensorsContents load_safetensors(const std::string& path, const LoadOptions& options = {});
// Parses a file held in memory (`source` names it in errors): the fuzzing entry point.
SafetensorsContents decode_safetensors(const void* data, size_t size, const std::string& source = "<memory>",
                                       const LoadOptions& options = {});

// ---- weights only, with PyTorch's state-dict names ("0.weight", "1.running_mean") ----
void save_state_dict(const std::string& path, const StateDict& sd, const Metadata& metadata = {},
                     const SaveOptions& options = {});
StateDict load_state_dict_file(const std::string& path, const LoadOptions& options = {});
// Loads the file into `model`: keys (strict: none missing or unexpected), shapes and dtypes
// are checked against the model first, naming the file and the key; a failed load leaves
// the model unchanged. Not strict: keys missing from the file keep their values, keys the
// model lacks are ignored.
void load_weights(const std::string& path, Stateful& model, bool strict = true);

// Throws "[<op>] <file>: <key>: ..." unless `sd` matches `reference` (the model's own state
// dict): every key of reference present (strict), no other key (strict), same shape and dtype.
void check_state_dict_matches(const StateDict& sd, const StateDict& reference, const std::string& file,
                              const std::string& op, bool strict = true);

}  // namespace lockstep::serialize
