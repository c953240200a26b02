// libFuzzer target for the IDX reader (data/idx.h) on raw file bytes: plain IDX, and gzip
// streams as they come (corrupt, truncated, forged size trailer, several members), since a
// file starting 1f 8b is inflated first. fuzz_idx_gzip.cpp reaches the IDX parser behind
// valid gzip. Every input is read as an image file and as a label file with 10 classes.
#include <cstddef>
#include <cstdint>

#include "data/idx.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const lockstep_fuzz::ScratchFile file(lockstep_fuzz::scratch_path("idx"));
  lockstep_fuzz::write_file(file.path, data, size);
  lockstep_fuzz::read_or_reject([&] { lockstep::data::read_idx_images(file.path); });
  lockstep_fuzz::read_or_reject([&] { lockstep::data::read_idx_labels(file.path, 10); });
  return 0;
}
