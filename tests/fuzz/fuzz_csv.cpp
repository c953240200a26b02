// libFuzzer target for the CSV reader (data/csv.h). The first input byte picks the options
// -- header line or not, label column (first, second, last), delimiter (, ; tab space) and
// whether labels are limited to 10 classes -- and the rest is the file.
#include <cstddef>
#include <cstdint>

#include "data/csv.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const lockstep_fuzz::ScratchFile file(lockstep_fuzz::scratch_path("csv", ".csv"));
  if (size == 0) return 0;
  const uint8_t o = data[0];
  lockstep::data::CsvOptions opt;
  opt.header = o & 1;
  static const int kLabelColumns[] = {0, 1, -1, 0};
  opt.label_column = kLabelColumns[(o >> 1) & 3];
  static const char kDelimiters[] = {',', ';', '\t', ' '};
  opt.delimiter = kDelimiters[(o >> 3) & 3];
  opt.num_classes = (o & 32) ? 10 : 0;
  lockstep_fuzz::write_file(file.path, data + 1, size - 1);
  lockstep_fuzz::read_or_reject([&] { lockstep::data::read_csv(file.path, opt); });
  return 0;
}
