#include "data/csv.h"

#include <charconv>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string_view>
#include <vector>

namespace lockstep::data {

namespace {

[[noreturn]] void fail(const std::string& path, int64_t line, const std::string& what) {
  if (line > 0) throw std::runtime_error(str_cat("[read_csv] ", path, ":", line, ": ", what));
  throw std::runtime_error(str_cat("[read_csv] ", path, ": ", what));
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split(std::string_view line, char delim) {
  std::vector<std::string_view> fields;
  size_t start = 0;
  for (;;) {
    size_t end = line.find(delim, start);
    fields.push_back(trim(line.substr(start, end == std::string_view::npos ? end : end - start)));
    if (end == std::string_view::npos) return fields;
    start = end + 1;
  }
}

// The whole field must be a finite number: "1.5x", "", "nan" and "inf" are rejected.
bool parse_double(std::string_view f, double& out) {
  if (f.empty()) return false;
  if (f.front() == '+') f.remove_prefix(1);  // from_chars does not take a leading '+'
  auto r = std::from_chars(f.data(), f.data() + f.size(), out);
  return r.ec == std::errc() && r.ptr == f.data() + f.size() && out - out == 0.0;
}

}  // namespace

std::shared_ptr<TensorDataset> read_csv(const std::string& path, const CsvOptions& opt) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, 0, str_cat("cannot open (", std::strerror(errno), ")"));
  std::vector<float> features;
  std::vector<int64_t> labels;
  size_t ncols = 0, label_col = 0;
  int64_t line_no = 0;
  bool any_line = false, header_pending = opt.header;
  std::string line;
  while (std::getline(in, line)) {
    ++line_no;
    any_line = true;
    if (trim(line).empty()) continue;
    if (header_pending) {
      header_pending = false;
      continue;
    }
    std::vector<std::string_view> fields = split(line, opt.delimiter);
    if (ncols == 0) {
      ncols = fields.size();
      if (ncols < 2) fail(path, line_no, str_cat("expected a label and at least one feature, got ", ncols, " field"));
      int64_t lc = opt.label_column < 0 ? static_cast<int64_t>(ncols) + opt.label_column : opt.label_column;
      if (lc < 0 || lc >= static_cast<int64_t>(ncols))
        fail(path, line_no, str_cat("label column ", opt.label_column, " is outside the ", ncols, " fields"));
      label_col = static_cast<size_t>(lc);
    } else if (fields.size() != ncols) {
      fail(path, line_no, str_cat("expected ", ncols, " fields (as on the first data row), got ", fields.size()));
    }
    for (size_t c = 0; c < ncols; ++c) {
      double v;
      if (!parse_double(fields[c], v))
        fail(path, line_no, str_cat("field ", c + 1, " '", std::string(fields[c]), "' is not a number"));
      if (c != label_col) {
        features.push_back(static_cast<float>(v));
        continue;
      }
      // range first: converting a double outside int64's range is undefined behaviour
      if (!(v >= 0 && v <= 9.0e15) || v != static_cast<double>(static_cast<int64_t>(v)))
        fail(path, line_no, str_cat("label '", std::string(fields[c]), "' is not a non-negative integer"));
      if (opt.num_classes > 0 && v >= static_cast<double>(opt.num_classes))
        fail(path, line_no, str_cat("label ", static_cast<int64_t>(v), " is out of range [0, ", opt.num_classes, ")"));
      labels.push_back(static_cast<int64_t>(v));
    }
  }
  if (in.bad()) fail(path, 0, "read error");
  if (!any_line) fail(path, 0, "empty file");
  if (labels.empty()) fail(path, 0, "no data rows");

  const int64_t n = static_cast<int64_t>(labels.size()), nfeat = static_cast<int64_t>(ncols) - 1;
  Shape shape = opt.sample_shape.empty() ? Shape{nfeat} : opt.sample_shape;
  if (shape_numel(shape) != nfeat)
    throw std::invalid_argument(str_cat("[read_csv] ", path, ": sample_shape ", shape_str(shape), " has ",
                                        shape_numel(shape), " elements, but rows have ", nfeat, " features"));
  shape.insert(shape.begin(), n);
  return std::make_shared<TensorDataset>(Tensor::from_vector(features, shape), Tensor::from_vector(labels, {n}),
                                         opt.num_classes);
}

}  // namespace lockstep::data
