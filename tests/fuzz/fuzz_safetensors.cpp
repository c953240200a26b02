// libFuzzer target for the safetensors reader (serialize/safetensors.h) on raw bytes, through
// both entry points: decode_safetensors (bytes in memory) and load_state_dict_file (a file,
// read with pread into each tensor's storage). Any bytes must either load or raise the
// reader's std::runtime_error. Inputs with lockstep's checksums mostly stop at the checksum
// check; fuzz_checkpoint.cpp re-computes them to reach what lies behind.
#include <cstddef>
#include <cstdint>

#include "fuzz_util.h"
#include "serialize/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const lockstep_fuzz::ScratchFile file(lockstep_fuzz::scratch_path("safetensors", ".safetensors"));
  lockstep_fuzz::read_or_reject([&] { lockstep::serialize::decode_safetensors(data, size, "<fuzz>"); });
  lockstep_fuzz::write_file(file.path, data, size);
  lockstep_fuzz::read_or_reject([&] { lockstep::serialize::load_state_dict_file(file.path); });
  return 0;
}
