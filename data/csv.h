// Numeric CSV datasets: one example per line, one column holding an integer label and the
// others float32 features. Fields are parsed with std::from_chars (locale-independent, so a
// file gives the same bits everywhere); spaces around a field and a final '\r' are ignored,
// blank lines are skipped.
//
// Errors are std::runtime_error naming the file and the 1-based line: missing or empty
// file, a header but no data, a row with a different number of fields than the first,
// a field that is not a number, a label that is not a non-negative integer or is >=
// num_classes.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "core/tensor.h"
#include "data/dataset.h"

namespace lockstep::data {

struct CsvOptions {
  int label_column = 0;        // index of the label field; negative counts from the end (-1 = last)
  bool header = false;         // skip the first line
  char delimiter = ',';
  int64_t num_classes = 0;     // > 0: labels must lie in [0, num_classes)
  Shape sample_shape = {};     // shape of one example's features; empty = [features]
};

// The whole file as an in-memory dataset: images float32 [N, sample_shape...], labels int64.
std::shared_ptr<TensorDataset> read_csv(const std::string& path, const CsvOptions& options = {});

}  // namespace lockstep::data
