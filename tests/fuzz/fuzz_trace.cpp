// libFuzzer target for the step-trace reader that `lockstep diff` uses (tools/train/trace.h,
// read_trace): JSON Lines of any shape, nesting, size and encoding.
#include <cstddef>
#include <cstdint>

#include "fuzz_util.h"
#include "train/trace.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const lockstep_fuzz::ScratchFile file(lockstep_fuzz::scratch_path("trace", ".jsonl"));
  lockstep_fuzz::write_file(file.path, data, size);
  lockstep_fuzz::read_or_reject([&] { lockstep::tools::read_trace(file.path); });
  return 0;
}
