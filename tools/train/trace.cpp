#include "train/trace.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "core/sha256.h"
#include "serialize/safetensors.h"

namespace lockstep::tools {

std::vector<std::pair<std::string, Tensor>> trace_tensors(const StepRecord& r) {
  std::vector<std::pair<std::string, Tensor>> out;
  if (r.batch_data) {
    out.push_back({"batch.indices", r.batch_data->indices});
    out.push_back({"batch.labels", r.batch_data->labels});
    out.push_back({"batch.images", r.batch_data->images});
  }
  for (const auto& kv : r.outputs) out.push_back(kv);
  out.push_back({"loss", Tensor::from_vector(std::vector<float>{r.loss}, {})});
  for (auto it = r.grads.rbegin(); it != r.grads.rend(); ++it) out.push_back(*it);
  for (const auto& kv : r.params) out.push_back(kv);
  return out;
}

std::string float_text(float v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(v));
  return buf;
}

std::string float_bits_hex(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", u);
  return buf;
}

namespace {

std::string base_name(const std::string& p) {
  const size_t s = p.find_last_of('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}
std::string dir_name(const std::string& p) {
  const size_t s = p.find_last_of('/');
  return s == std::string::npos ? "." : (s == 0 ? "/" : p.substr(0, s));
}

}  // namespace

TraceWriter::TraceWriter(const std::string& path, bool values) : path_(path) {
  f_ = std::fopen(path.c_str(), "w");
  if (!f_) throw std::runtime_error(str_cat("[train] --trace ", path, ": cannot create: ", std::strerror(errno)));
  if (values) {
    values_rel_ = base_name(path) + ".values";
    values_dir_ = path + ".values";
    if (::mkdir(values_dir_.c_str(), 0777) != 0 && errno != EEXIST) {
      std::fclose(f_);
      throw std::runtime_error(str_cat("[train] --trace-values ", values_dir_, ": cannot create: ", std::strerror(errno)));
    }
  }
}

TraceWriter::~TraceWriter() {
  if (f_) std::fclose(f_);
}

void TraceWriter::write(const StepRecord& r) {
  const auto tensors = trace_tensors(r);
  char head[256];
  std::snprintf(head, sizeof head,
                "{\"step\":%lld,\"epoch\":%lld,\"batch\":%lld,\"batch_size\":%lld,\"loss\":%s,\"loss_bits\":\"%s\","
                "\"lr\":%.17g,\"tensors\":{",
                static_cast<long long>(r.step), static_cast<long long>(r.epoch), static_cast<long long>(r.batch),
                static_cast<long long>(r.batch_data ? r.batch_data->images.size(0) : 0), float_text(r.loss).c_str(),
                float_bits_hex(r.loss).c_str(), r.lr);
  std::string line = head;
  for (size_t i = 0; i < tensors.size(); ++i)
    line += (i ? ",\"" : "\"") + tensors[i].first + "\":\"" + sha256_hex(tensors[i].second) + "\"";
  line += "}";
  if (!values_dir_.empty()) {
    char name[64];
    std::snprintf(name, sizeof name, "/step-%012lld.safetensors", static_cast<long long>(r.step));
    serialize::SaveOptions so;
    so.atomic.durable = false;
    serialize::save_safetensors(values_dir_ + name, tensors, {{"step", std::to_string(r.step)}}, so);
    line += ",\"values\":\"" + values_rel_ + name + "\"";
  }
  line += "}\n";
  if (std::fwrite(line.data(), 1, line.size(), f_) != line.size() || std::fflush(f_) != 0)
    throw std::runtime_error(str_cat("[train] --trace ", path_, ": write failed: ", std::strerror(errno)));
}

std::vector<TraceStep> read_trace(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(str_cat(path, ": cannot open: ", std::strerror(errno)));
  std::vector<TraceStep> steps;
  std::string text;
  int64_t lineno = 0;
  while (std::getline(in, text)) {
    ++lineno;
    if (text.empty()) continue;
    auto fail = [&](const std::string& what) -> void {
      throw std::runtime_error(str_cat(path, ":", lineno, ": ", what));
    };
    nlohmann::ordered_json j;
    try {
      j = nlohmann::ordered_json::parse(text);
    } catch (const std::exception& e) {
      fail(str_cat("not a JSON object (", e.what(), ")"));
    }
    if (!j.is_object()) fail("expected a JSON object per line");
    TraceStep s;
    s.line = lineno;
    auto int_field = [&](const char* k) -> int64_t {
      if (!j.contains(k) || !j[k].is_number_integer()) fail(str_cat("field \"", k, "\": expected an integer"));
      return j[k].get<int64_t>();
    };
    s.step = int_field("step"), s.epoch = int_field("epoch"), s.batch = int_field("batch");
    if (!j.contains("loss") || !j["loss"].is_number()) fail("field \"loss\": expected a number");
    if (!j.contains("lr") || !j["lr"].is_number()) fail("field \"lr\": expected a number");
    if (!j.contains("loss_bits") || !j["loss_bits"].is_string()) fail("field \"loss_bits\": expected a string");
    s.loss = j["loss"].get<double>(), s.lr = j["lr"].get<double>(), s.loss_bits = j["loss_bits"].get<std::string>();
    if (!j.contains("tensors") || !j["tensors"].is_object()) fail("field \"tensors\": expected an object");
    for (const auto& [name, h] : j["tensors"].items()) {
      if (!h.is_string()) fail(str_cat("tensors.", name, ": expected a hash string"));
      s.tensors.push_back({name, h.get<std::string>()});
    }
    if (j.contains("values")) {
      if (!j["values"].is_string()) fail("field \"values\": expected a path string");
      const std::string v = j["values"].get<std::string>();
      s.values_path = !v.empty() && v[0] == '/' ? v : dir_name(path) + "/" + v;
    }
    steps.push_back(std::move(s));
  }
  if (steps.empty()) throw std::runtime_error(str_cat(path, ": empty trace (no step lines)"));
  return steps;
}

}  // namespace lockstep::tools
