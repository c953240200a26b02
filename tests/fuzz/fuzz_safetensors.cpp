// libFuzzer target for the safetensors reader: any bytes must either decode or raise the
// reader's std::runtime_error -- never crash, hang, read out of bounds or throw anything
// else. Build and run with tests/fuzz/run_fuzz.sh (clang, -fsanitize=fuzzer,address).
#include <cstddef>
#include <cstdint>
#include <stdexcept>

#include "serialize/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    lockstep::serialize::decode_safetensors(data, size, "<fuzz>");
  } catch (const std::runtime_error&) {
    // rejected with a message: the expected outcome for almost every input
  }
  return 0;
}
