// `lockstep diff A B`: where two runs that should agree stopped agreeing. A and B are two
// traces (`train --trace`) or two safetensors files (checkpoints, weights); the kind is
// recognised from the content. Prints the first step, the first tensor (in the trace's
// documented order, tools/train/trace.h) and, when values are available, the first element
// where they differ, with both values, |Δ| and the distance in ulps.
// Two op traces (`train --trace-ops`) give the culprit op instead: the first op whose output
// differs while its inputs matched (tools/train/op_trace.h).
// Exit status as cmp: 0 identical, 1 different, 2 trouble (missing or malformed input).
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "serialize/safetensors.h"
#include "train/op_trace.h"
#include "train/trace.h"

namespace lockstep_cli {
namespace {

using namespace lockstep;

enum class Kind { trace, op_trace, safetensors };

Kind detect(const std::string& path) {
  // A FIFO would block the open below until a writer came; only regular files are inputs.
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw std::runtime_error(path + ": cannot open: " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw std::runtime_error(path + ": not a regular file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open: " + std::strerror(errno));
  char head[9] = {};
  in.read(head, 9);
  const std::streamsize n = in.gcount();
  if (n >= 1 && head[0] == '{') return tools::is_op_trace(path) ? Kind::op_trace : Kind::trace;
  if (n == 9 && head[8] == '{') return Kind::safetensors;
  throw std::runtime_error(path + ": neither a trace (JSON Lines) nor a safetensors file");
}

std::string index_str(int64_t flat, const Shape& shape) {
  std::vector<int64_t> idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    idx[d] = flat % shape[d];
    flat /= shape[d];
  }
  std::string s = "[";
  for (size_t d = 0; d < idx.size(); ++d) s += (d ? ", " : "") + std::to_string(idx[d]);
  return s + "]";
}

// Distance in representable values between two finite floats of the same type.
template <typename F, typename I>
uint64_t ulp_distance(F a, F b) {
  I ia, ib;
  std::memcpy(&ia, &a, sizeof a);
  std::memcpy(&ib, &b, sizeof b);
  const I sign = static_cast<I>(I(1) << (sizeof(I) * 8 - 1));
  // Map to a monotonic integer line: negative floats count down from zero.
  auto key = [&](I v) -> int64_t {
    return v < 0 ? -static_cast<int64_t>(static_cast<uint64_t>(v) & ~static_cast<uint64_t>(sign)) : v;
  };
  const int64_t ka = key(ia), kb = key(ib);
  return ka > kb ? static_cast<uint64_t>(ka - kb) : static_cast<uint64_t>(kb - ka);
}

// Compares two tensors known to have the same dtype and shape; prints the first differing
// element, the count of differing elements and the largest |Δ|. Returns true if equal.
bool report_elements(const Tensor& a, const Tensor& b, const char* indent) {
  const int64_t n = a.numel();
  const size_t es = dtype_size(a.dtype());
  const auto* pa = static_cast<const unsigned char*>(a.raw_data());
  const auto* pb = static_cast<const unsigned char*>(b.raw_data());
  int64_t first = -1, count = 0;
  double max_abs = 0;
  auto value = [&](const unsigned char* p, int64_t i) -> double {
    switch (a.dtype()) {
      case DType::f32: { float v; std::memcpy(&v, p + i * 4, 4); return v; }
      case DType::f64: { double v; std::memcpy(&v, p + i * 8, 8); return v; }
      case DType::i64: { int64_t v; std::memcpy(&v, p + i * 8, 8); return static_cast<double>(v); }
      default: return p[i];
    }
  };
  for (int64_t i = 0; i < n; ++i) {
    if (std::memcmp(pa + i * es, pb + i * es, es) == 0) continue;
    if (first < 0) first = i;
    ++count;
    const double d = std::fabs(value(pa, i) - value(pb, i));
    if (d > max_abs || std::isnan(d)) max_abs = d;
  }
  if (first < 0) return true;
  const double va = value(pa, first), vb = value(pb, first);
  std::printf("%sfirst differing element: index %" PRId64 " %s: A = %.9g, B = %.9g, |delta| = %.3g", indent, first,
              index_str(first, a.shape()).c_str(), va, vb, std::fabs(va - vb));
  if (a.dtype() == DType::f32) {
    float fa, fb;
    std::memcpy(&fa, pa + first * 4, 4), std::memcpy(&fb, pb + first * 4, 4);
    if (std::isfinite(fa) && std::isfinite(fb)) std::printf(" (%" PRIu64 " ulp)", ulp_distance<float, int32_t>(fa, fb));
  } else if (a.dtype() == DType::f64 && std::isfinite(va) && std::isfinite(vb)) {
    std::printf(" (%" PRIu64 " ulp)", ulp_distance<double, int64_t>(va, vb));
  }
  std::printf("\n%sdiffering elements: %" PRId64 " of %" PRId64 ", largest |delta| = %.3g\n", indent, count, n, max_abs);
  return false;
}

// Compares tensor `name` of two loaded files: returns true if identical, else prints why.
bool compare_tensor(const std::string& name, const nn::StateDict& a, const nn::StateDict& b, const char* indent) {
  if (!b.contains(name)) return std::printf("%stensor %s: only in A\n", indent, name.c_str()), false;
  const Tensor& ta = a.at(name);
  const Tensor& tb = b.at(name);
  if (ta.dtype() != tb.dtype() || ta.shape() != tb.shape()) {
    std::printf("%stensor %s: A is %s %s, B is %s %s\n", indent, name.c_str(), dtype_name(ta.dtype()),
                shape_str(ta.shape()).c_str(), dtype_name(tb.dtype()), shape_str(tb.shape()).c_str());
    return false;
  }
  if (equal_bits(ta, tb)) return true;
  std::printf("%sfirst differing tensor: %s (%s %s)\n", indent, name.c_str(), dtype_name(ta.dtype()),
              shape_str(ta.shape()).c_str());
  report_elements(ta, tb, indent);
  return false;
}

int diff_files(const std::string& pa, const std::string& pb) {
  const serialize::SafetensorsContents a = serialize::load_safetensors(pa), b = serialize::load_safetensors(pb);
  for (const auto& [name, t] : a.tensors.items()) {
    if (b.tensors.contains(name) && equal_bits(t, b.tensors.at(name))) continue;
    std::printf("files differ at tensor %s (file order)\n", name.c_str());
    compare_tensor(name, a.tensors, b.tensors, "  ");
    return 1;
  }
  for (const auto& [name, t] : b.tensors.items()) {
    (void)t;
    if (!a.tensors.contains(name)) return std::printf("files differ: tensor %s only in B\n", name.c_str()), 1;
  }
  for (const auto& [k, v] : a.metadata) {
    auto it = b.metadata.find(k);
    if (it == b.metadata.end() || it->second != v) {
      std::printf("files differ: metadata %s: A = '%s', B = %s\n", k.c_str(), v.c_str(),
                  it == b.metadata.end() ? "absent" : ("'" + it->second + "'").c_str());
      return 1;
    }
  }
  for (const auto& [k, v] : b.metadata)
    if (!a.metadata.count(k)) return std::printf("files differ: metadata %s only in B ('%s')\n", k.c_str(), v.c_str()), 1;
  std::printf("identical: %zu tensors, %zu metadata keys\n", a.tensors.size(), a.metadata.size());
  return 0;
}

// The first entry of step sa/sb (same step) that differs: the lr, then tensors in A's order.
int diff_step(const tools::TraceStep& sa, const tools::TraceStep& sb) {
  std::map<std::string, std::string> hb(sb.tensors.begin(), sb.tensors.end());
  std::string first;
  int64_t differing = 0;
  for (size_t i = 0; i < sa.tensors.size(); ++i) {
    auto it = hb.find(sa.tensors[i].first);
    if (it == hb.end() || it->second != sa.tensors[i].second) {
      if (first.empty()) first = sa.tensors[i].first;
      ++differing;
    }
  }
  for (const auto& [name, h] : sb.tensors) {
    (void)h;
    if (std::none_of(sa.tensors.begin(), sa.tensors.end(), [&name = name](auto& e) { return e.first == name; })) {
      if (first.empty()) first = name;
      ++differing;
    }
  }
  const bool lr_differs = sa.lr != sb.lr;
  if (first.empty() && !lr_differs && sa.loss_bits == sb.loss_bits) return 0;
  std::printf("traces differ at step %" PRId64 " (epoch %" PRId64 ", batch %" PRId64 "; line %" PRId64 " of A, line %" PRId64
              " of B)\n",
              sa.step, sa.epoch, sa.batch, sa.line, sb.line);
  std::printf("  loss: A = %.9g (%s), B = %.9g (%s)\n", sa.loss, sa.loss_bits.c_str(), sb.loss, sb.loss_bits.c_str());
  if (lr_differs) std::printf("  lr: A = %.17g, B = %.17g\n", sa.lr, sb.lr);
  if (first.empty()) return 1;
  std::printf("  differing tensors: %" PRId64 " of %zu; the first in trace order: %s\n", differing, sa.tensors.size(),
              first.c_str());
  if (hb.find(first) == hb.end()) return std::printf("  tensor %s: only in A\n", first.c_str()), 1;
  if (sa.values_path.empty() || sb.values_path.empty()) {
    std::printf("  (no values stored: run both with --trace-values to see the first element)\n");
    return 1;
  }
  const auto va = serialize::load_safetensors(sa.values_path), vb = serialize::load_safetensors(sb.values_path);
  if (!va.tensors.contains(first))
    throw std::runtime_error(sa.values_path + ": tensor " + first + " missing from the stored values");
  compare_tensor(first, va.tensors, vb.tensors, "  ");
  return 1;
}

int diff_traces(const std::string& pa, const std::string& pb) {
  const auto a = tools::read_trace(pa), b = tools::read_trace(pb);
  const size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    if (a[i].step != b[i].step) {
      std::printf("traces differ at line %" PRId64 " of A / %" PRId64 " of B: step %" PRId64 " vs step %" PRId64 "\n",
                  a[i].line, b[i].line, a[i].step, b[i].step);
      return 1;
    }
    if (diff_step(a[i], b[i]) != 0) return 1;
  }
  if (a.size() != b.size()) {
    std::printf("traces differ in length: identical for the first %zu steps; A has %zu steps, B has %zu\n", n,
                a.size(), b.size());
    return 1;
  }
  std::printf("identical: %zu steps (%" PRId64 " to %" PRId64 "), %zu tensors per step\n", n, a.front().step,
              a.back().step, a.front().tensors.size());
  return 0;
}

// Two op traces (`train --trace-ops`): the culprit op, tools/train/op_trace.h.
int diff_op_traces(const std::string& pa, const std::string& pb) {
  std::string va, vb;
  const auto a = tools::read_op_trace(pa, &va), b = tools::read_op_trace(pb, &vb);
  const tools::CulpritReport r = tools::find_culprit(a, b, va, vb);
  std::fputs(r.text.c_str(), stdout);
  return r.identical ? 0 : 1;
}

int run_diff(const std::string& a, const std::string& b) {
  try {
    if (a.empty() || b.empty()) throw std::runtime_error("expected two files: lockstep diff A B");
    const Kind ka = detect(a), kb = detect(b);
    if (ka != kb) throw std::runtime_error("cannot compare files of different kinds (step trace, op trace, "
                                           "safetensors): " + a + ", " + b);
    std::fflush(stdout);
    if (ka == Kind::op_trace) return diff_op_traces(a, b);
    return ka == Kind::trace ? diff_traces(a, b) : diff_files(a, b);
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "lockstep diff: error: %s\n", e.what());
    return 2;
  }
}

}  // namespace

void add_diff(CLI::App& app, int* rc) {
  auto files = std::make_shared<std::vector<std::string>>(2);
  CLI::App* sub = app.add_subcommand(
      "diff", "first step, tensor and element where two traces or checkpoints differ (exit 0 same, 1 differ, 2 error)");
  sub->add_option("A", (*files)[0], "trace (JSON Lines) or safetensors file");
  sub->add_option("B", (*files)[1], "trace (JSON Lines) or safetensors file");
  sub->callback([files, rc] { *rc = run_diff((*files)[0], (*files)[1]); });
}

}  // namespace lockstep_cli
