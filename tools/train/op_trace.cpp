#include "train/op_trace.h"

#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "base/error.h"

namespace lockstep::tools {
namespace {

const char* kDtypes[] = {"float32", "float64", "int64", "uint8"};

DType dtype_from(const std::string& s, bool* ok) {
  for (int i = 0; i < 4; ++i)
    if (s == kDtypes[i]) return *ok = true, static_cast<DType>(i);
  *ok = false;
  return DType::f32;
}

std::string hex64(uint64_t v) {
  char b[17];
  std::snprintf(b, sizeof b, "%016" PRIx64, v);
  return b;
}

std::string dir_of(const std::string& p) {
  const size_t s = p.rfind('/');
  return s == std::string::npos ? "." : p.substr(0, s);
}
std::string base_of(const std::string& p) {
  const size_t s = p.rfind('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}

// h <- (h ^ w) * odd: a bijection of h for each w, so one changed word always changes h.
uint64_t mix(uint64_t h, uint64_t w) { return (h ^ w) * 0x9E3779B97F4A7C15ull; }

Tensor host_copy(const Tensor& t) { return t.to(Device::cpu).contiguous(); }

void json_tensor(std::string& line, const OpTensor& t) {
  if (!t.defined) {
    line += "null";
    return;
  }
  line += "[\"";
  line += kDtypes[static_cast<int>(t.dtype)];
  line += "\",[";
  for (size_t d = 0; d < t.shape.size(); ++d) line += (d ? "," : "") + std::to_string(t.shape[d]);
  line += "],\"" + hex64(t.digest) + "\"";
  if (t.offset >= 0) line += "," + std::to_string(t.offset);
  line += "]";
}

// First differing element of two same-shape tensors' bytes, with both values and the ulps.
std::string element_report(const OpTensor& ta, const std::vector<unsigned char>& a,
                           const std::vector<unsigned char>& b) {
  const size_t es = dtype_size(ta.dtype);
  const size_t n = std::min(a.size(), b.size()) / es;
  int64_t first = -1, count = 0;
  for (size_t i = 0; i < n; ++i)
    if (std::memcmp(a.data() + i * es, b.data() + i * es, es) != 0) {
      if (first < 0) first = static_cast<int64_t>(i);
      ++count;
    }
  if (first < 0) return "  (the stored values are identical: digest collision?)\n";
  std::string idx = "[";
  {
    int64_t f = first;
    std::vector<int64_t> ix(ta.shape.size());
    for (size_t d = ta.shape.size(); d-- > 0;) ix[d] = f % ta.shape[d], f /= ta.shape[d];
    for (size_t d = 0; d < ix.size(); ++d) idx += (d ? ", " : "") + std::to_string(ix[d]);
    idx += "]";
  }
  char buf[256];
  if (ta.dtype == DType::f32) {
    float fa, fb;
    std::memcpy(&fa, a.data() + first * 4, 4), std::memcpy(&fb, b.data() + first * 4, 4);
    int32_t ia, ib;
    std::memcpy(&ia, &fa, 4), std::memcpy(&ib, &fb, 4);
    auto key = [](int32_t v) -> int64_t { return v < 0 ? -static_cast<int64_t>(v & 0x7fffffff) : v; };
    const int64_t d = key(ia) - key(ib);
    std::snprintf(buf, sizeof buf,
                  "  first differing element: index %" PRId64 " %s: A = %.9g, B = %.9g, |delta| = %.3g", first,
                  idx.c_str(), fa, fb, std::fabs(double(fa) - double(fb)));
    std::string s = buf;
    if (std::isfinite(fa) && std::isfinite(fb)) s += " (" + std::to_string(d < 0 ? -d : d) + " ulp)";
    std::snprintf(buf, sizeof buf, "\n  differing elements: %" PRId64 " of %zu\n", count, n);
    return s + buf;
  }
  std::snprintf(buf, sizeof buf, "  first differing element: index %" PRId64 " %s (%s); %" PRId64 " of %zu differ\n",
                first, idx.c_str(), kDtypes[static_cast<int>(ta.dtype)], count, n);
  return buf;
}

std::vector<unsigned char> read_bytes(const std::string& path, int64_t offset, size_t n) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open: " + std::strerror(errno));
  std::vector<unsigned char> v(n);
  in.seekg(offset);
  in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(n));
  if (static_cast<size_t>(in.gcount()) != n)
    throw std::runtime_error(path + ": truncated values file (expected " + std::to_string(n) + " bytes at offset " +
                             std::to_string(offset) + ")");
  return v;
}

// The stored values of t, or empty when none were stored.
std::vector<unsigned char> values_of(const OpTensor& t, const std::string& values_path) {
  if (t.bytes) return *t.bytes;
  if (t.offset < 0 || values_path.empty()) return {};
  return read_bytes(values_path, t.offset, static_cast<size_t>(shape_numel(t.shape)) * dtype_size(t.dtype));
}

bool same(const OpTensor& a, const OpTensor& b) {
  return a.defined == b.defined && (!a.defined || (a.dtype == b.dtype && a.shape == b.shape && a.digest == b.digest));
}

std::string where(const OpRecord& r) {
  return r.op + " (" + (r.backward ? "backward" : "forward") + ") in layer " + (r.layer.empty() ? "-" : r.layer) +
         " at step " + std::to_string(r.step);
}

std::string tensor_str(const OpTensor& t) {
  return t.defined ? str_cat(kDtypes[static_cast<int>(t.dtype)], " ", shape_str(t.shape)) : "none";
}

}  // namespace

uint64_t op_digest(const Tensor& t) {
  const Tensor h = host_copy(t);
  const auto* p = static_cast<const unsigned char*>(h.raw_data());
  const size_t n = h.nbytes();
  // Four independent lanes over 32-byte blocks (word k of a block feeds lane k), so the
  // multiplies overlap; then the tail, dtype, shape and size. Every step is a bijection of
  // its lane given the word, and the lanes are chained at the end the same way.
  uint64_t lane[4] = {0x243F6A8885A308D3ull, 0x13198A2E03707344ull, 0xA4093822299F31D0ull, 0x082EFA98EC4E6C89ull};
  size_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int k = 0; k < 4; ++k) {
      uint64_t w;
      std::memcpy(&w, p + i + 8 * k, 8);
      lane[k] = mix(lane[k], w);
    }
  uint64_t d = mix(mix(mix(mix(0x452821E638D01377ull, lane[0]), lane[1]), lane[2]), lane[3]);
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    d = mix(d, w);
  }
  if (i < n) {
    uint64_t w = 0;
    std::memcpy(&w, p + i, n - i);
    d = mix(d, w ^ (static_cast<uint64_t>(n - i) << 56));
  }
  d = mix(d, static_cast<uint64_t>(h.dtype()));
  for (int64_t s : h.shape()) d = mix(d, static_cast<uint64_t>(s));
  return mix(d, n);
}

OpTracer::OpTracer(Options o) : o_(std::move(o)) {
  if (o_.path.empty()) return;
  f_ = std::fopen(o_.path.c_str(), "w");
  if (!f_)
    throw std::runtime_error(str_cat("[train] --trace-ops ", o_.path, ": cannot create: ", std::strerror(errno)));
  std::string head = "{\"lockstep_op_trace\":1,\"values\":";
  if (o_.values) {
    const std::string vp = o_.path + ".values";
    values_ = std::fopen(vp.c_str(), "wb");
    if (!values_) {
      std::fclose(f_);
      throw std::runtime_error(str_cat("[train] --trace-ops-values ", vp, ": cannot create: ", std::strerror(errno)));
    }
    head += "\"" + base_of(o_.path) + ".values\"}\n";
  } else {
    head += "null}\n";
  }
  if (std::fputs(head.c_str(), f_) < 0 || std::fflush(f_) != 0)
    throw std::runtime_error(str_cat("[train] --trace-ops ", o_.path, ": write failed: ", std::strerror(errno)));
}

OpTracer::~OpTracer() {
  if (f_) std::fclose(f_);
  if (values_) std::fclose(values_);
}

OpTensor OpTracer::describe(const Tensor& t, bool with_values) {
  OpTensor d;
  if (!t.defined()) return d;
  d.defined = true, d.dtype = t.dtype(), d.shape = t.shape();
  // Within a step no traced tensor changes in place (the optimizer runs after the step), so
  // a tensor seen before in this step (same memory, dtype, shape, strides) has the same
  // digest; the cache holds the tensor, so its memory cannot be reused before end_step.
  auto hit = digests_.find(t.raw_data());
  const bool cached = hit != digests_.end() && hit->second.first.dtype() == t.dtype() &&
                      hit->second.first.shape() == t.shape() && hit->second.first.strides() == t.strides();
  if (cached && !with_values) {
    d.digest = hit->second.second;
    return d;
  }
  const Tensor h = host_copy(t);
  d.digest = cached ? hit->second.second : op_digest(h);  // h is on the CPU and contiguous: no second copy
  digests_[t.raw_data()] = {t, d.digest};
  if (with_values) {
    const auto* p = static_cast<const unsigned char*>(h.raw_data());
    std::vector<unsigned char> v(p, p + h.nbytes());
    if (f_) {
      d.offset = 0;  // placed at end_step, when the file position is known
      pending_values_.push_back(std::move(v));
    } else {
      d.bytes = std::make_shared<const std::vector<unsigned char>>(std::move(v));
    }
  }
  return d;
}

void OpTracer::on_op(OpEvent& e) {
  if (o_.max_steps > 0 && steps_ >= o_.max_steps) return;
  if (!e.backward && !perturbed_ && !o_.perturb_op.empty() && o_.perturb_op == e.op && !e.outputs.empty() &&
      e.outputs[0].defined() && e.outputs[0].dtype() == DType::f32 && e.outputs[0].numel() > 0) {
    Tensor& y = e.outputs[0];
    Tensor h = y.to(Device::cpu).clone();  // edited on the host, whatever the device
    float* p = h.data<float>();
    p[0] = std::nextafter(p[0], INFINITY);
    y.copy_(h.to(y.device()));
    perturbed_ = true;
  }
  OpRecord r;
  r.index = static_cast<int64_t>(pending_.size());
  r.backward = e.backward, r.op = e.op, r.layer = e.layer ? e.layer : "";
  for (const Tensor& t : e.inputs) r.in.push_back(describe(t, false));
  for (const Tensor& t : e.outputs) r.out.push_back(describe(t, o_.values));
  pending_.push_back(std::move(r));
}

void OpTracer::end_step(int64_t step) {
  if (o_.max_steps > 0 && steps_ >= o_.max_steps) return;
  ++steps_;
  size_t next_value = 0;
  std::string lines;
  for (OpRecord& r : pending_) {
    r.step = step;
    if (!f_) continue;
    for (OpTensor& t : r.out) {
      if (t.offset < 0) continue;
      const auto& v = pending_values_.at(next_value++);
      t.offset = values_at_;
      if (std::fwrite(v.data(), 1, v.size(), values_) != v.size())
        throw std::runtime_error(str_cat("[train] --trace-ops-values: write failed: ", std::strerror(errno)));
      values_at_ += static_cast<int64_t>(v.size());
    }
    lines += "{\"step\":" + std::to_string(step) + ",\"i\":" + std::to_string(r.index) + ",\"dir\":\"" +
             (r.backward ? "bwd" : "fwd") + "\",\"op\":\"" + r.op + "\",\"layer\":\"" + r.layer + "\",\"in\":[";
    for (size_t k = 0; k < r.in.size(); ++k) {
      if (k) lines += ",";
      json_tensor(lines, r.in[k]);
    }
    lines += "],\"out\":[";
    for (size_t k = 0; k < r.out.size(); ++k) {
      if (k) lines += ",";
      json_tensor(lines, r.out[k]);
    }
    lines += "]}\n";
  }
  if (f_ && (std::fwrite(lines.data(), 1, lines.size(), f_) != lines.size() || std::fflush(f_) != 0 ||
             (values_ && std::fflush(values_) != 0)))
    throw std::runtime_error(str_cat("[train] --trace-ops ", o_.path, ": write failed: ", std::strerror(errno)));
  if (o_.keep)
    kept_.insert(kept_.end(), std::make_move_iterator(pending_.begin()), std::make_move_iterator(pending_.end()));
  pending_.clear();
  pending_values_.clear();
  digests_.clear();  // the optimizer may now update tensors in place
}

bool is_op_trace(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string first;
  return in && std::getline(in, first) && first.rfind("{\"lockstep_op_trace\":", 0) == 0;
}

std::vector<OpRecord> read_op_trace(const std::string& path, std::string* values_path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(str_cat(path, ": cannot open: ", std::strerror(errno)));
  std::vector<OpRecord> out;
  std::string text;
  int64_t lineno = 0;
  if (values_path) values_path->clear();
  while (std::getline(in, text)) {
    ++lineno;
    if (text.empty()) continue;
    auto fail = [&](const std::string& what) -> void {
      throw std::runtime_error(str_cat(path, ":", lineno, ": ", what));
    };
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text);
    } catch (const std::exception& e) {
      fail(str_cat("not a JSON object (", e.what(), ")"));
    }
    if (!j.is_object()) fail("expected a JSON object per line");
    if (lineno == 1) {
      if (!j.contains("lockstep_op_trace")) fail("expected the op trace header {\"lockstep_op_trace\":1,...}");
      if (j.contains("values") && j["values"].is_string() && values_path) {
        const std::string v = j["values"].get<std::string>();
        *values_path = !v.empty() && v[0] == '/' ? v : dir_of(path) + "/" + v;
      }
      continue;
    }
    OpRecord r;
    auto int_field = [&](const char* k) -> int64_t {
      if (!j.contains(k) || !j[k].is_number_integer()) fail(str_cat("field \"", k, "\": expected an integer"));
      return j[k].get<int64_t>();
    };
    auto str_field = [&](const char* k) -> std::string {
      if (!j.contains(k) || !j[k].is_string()) fail(str_cat("field \"", k, "\": expected a string"));
      return j[k].get<std::string>();
    };
    r.step = int_field("step"), r.index = int_field("i");
    const std::string dir = str_field("dir");
    if (dir != "fwd" && dir != "bwd") fail("field \"dir\": expected \"fwd\" or \"bwd\", got \"" + dir + "\"");
    r.backward = dir == "bwd";
    r.op = str_field("op"), r.layer = str_field("layer");
    for (const char* k : {"in", "out"}) {
      if (!j.contains(k) || !j[k].is_array()) fail(str_cat("field \"", k, "\": expected an array"));
      for (const auto& e : j[k]) {
        OpTensor t;
        if (!e.is_null()) {
          bool ok = e.is_array() && e.size() >= 3 && e[0].is_string() && e[1].is_array() && e[2].is_string();
          if (ok) t.dtype = dtype_from(e[0].get<std::string>(), &ok);
          if (!ok) fail(str_cat("field \"", k, "\": expected [dtype, shape, digest] or null"));
          t.defined = true;
          for (const auto& s : e[1]) {
            if (!s.is_number_integer()) fail(str_cat("field \"", k, "\": shape: expected integers"));
            t.shape.push_back(s.get<int64_t>());
          }
          t.digest = std::strtoull(e[2].get<std::string>().c_str(), nullptr, 16);
          if (e.size() >= 4 && e[3].is_number_integer()) t.offset = e[3].get<int64_t>();
        }
        (std::string(k) == "in" ? r.in : r.out).push_back(std::move(t));
      }
    }
    out.push_back(std::move(r));
  }
  if (lineno == 0) throw std::runtime_error(str_cat(path, ": empty op trace (no header line)"));
  return out;
}

CulpritReport find_culprit(const std::vector<OpRecord>& a, const std::vector<OpRecord>& b, const std::string& values_a,
                           const std::string& values_b) {
  CulpritReport rep;
  const OpRecord* first_in = nullptr;   // the first record with a differing input (outputs before it matched)
  const OpRecord* first_out = nullptr;  // the first record with a differing output
  const OpRecord* culprit = nullptr;
  size_t first_in_k = 0, first_out_k = 0, first_out_in_k = 0;
  bool structure = false;
  auto first_diff = [](const std::vector<OpTensor>& x, const std::vector<OpTensor>& y) {
    for (size_t k = 0; k < x.size(); ++k)
      if (!same(x[k], y[k])) return k;
    return x.size();
  };
  const size_t n = std::min(a.size(), b.size());
  std::string body;
  for (size_t i = 0; i < n; ++i) {
    const OpRecord &ra = a[i], &rb = b[i];
    if (ra.step != rb.step || ra.op != rb.op || ra.backward != rb.backward || ra.layer != rb.layer ||
        ra.in.size() != rb.in.size() || ra.out.size() != rb.out.size()) {
      body += "op traces diverge in structure at record " + std::to_string(i + 1) + ": A ran " + where(ra) +
              ", B ran " + where(rb) + "\n";
      structure = true;
      break;
    }
    const size_t in_k = first_diff(ra.in, rb.in), out_k = first_diff(ra.out, rb.out);
    if (in_k < ra.in.size() && !first_in && !first_out) first_in = &ra, first_in_k = in_k;
    if (out_k == ra.out.size()) continue;
    if (!first_out) first_out = &ra, first_out_k = out_k, first_out_in_k = in_k;
    if (in_k != ra.in.size()) continue;
    // The culprit: its inputs matched, its output did not.
    rep.found = true;
    culprit = &ra;
    rep.step = ra.step, rep.op = ra.op, rep.layer = ra.layer, rep.direction = ra.backward ? "backward" : "forward";
    rep.summary = where(ra);
    body += "culprit op: " + rep.summary + " (op " + std::to_string(ra.index) + " of the step, record " +
            std::to_string(i + 1) + ")\n";
    body += "  its " + std::to_string(ra.in.size()) + " inputs matched; output " + std::to_string(out_k) + " (" +
            tensor_str(ra.out[out_k]) + ") differs\n";
    const auto va = values_of(ra.out[out_k], values_a), vb = values_of(rb.out[out_k], values_b);
    if (!va.empty() && va.size() == vb.size())
      body += element_report(ra.out[out_k], va, vb);
    else
      body += "  (no values stored: trace both runs with --trace-ops-values to see the element)\n";
    break;
  }
  std::string head;
  if (first_in)
    head += "first difference: input " + std::to_string(first_in_k) + " (" + tensor_str(first_in->in[first_in_k]) +
            ") of " + where(*first_in) +
            ", made by no traced op: it entered between traced ops (the optimizer "
            "update, the data, a buffer)\n";
  if (first_out && first_out != culprit)
    head += "first differing op output: " + where(*first_out) + ": output " + std::to_string(first_out_k) +
            " differs, its input " + std::to_string(first_out_in_k) + " differed already\n";
  if (first_in && !first_out && !structure)
    head += "every op output matched: the difference was absorbed by rounding\n";
  if (first_out && !culprit && !structure) head += "no op turned matching inputs into differing outputs\n";
  rep.text = head + body;
  if (!first_in && !first_out && !structure) {
    if (a.size() == b.size()) {
      rep.identical = true;
      rep.text =
          "identical: " + std::to_string(a.size()) + " op records" +
          (a.empty() ? ""
                     : " (steps " + std::to_string(a.front().step) + " to " + std::to_string(a.back().step) + ")") +
          "\n";
    } else {
      rep.text = "op traces differ in length: identical for the first " + std::to_string(n) + " records; A has " +
                 std::to_string(a.size()) + ", B has " + std::to_string(b.size()) + "\n";
    }
  }
  return rep;
}

}  // namespace lockstep::tools
