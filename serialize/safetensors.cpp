#include "serialize/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

#include "base/error.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "serialize/safetensors.cpp assumes a little-endian host (safetensors data is little-endian)"
#endif

namespace lockstep::serialize {

namespace {

constexpr uint64_t kFnvBasis = 0xcbf29ce484222325ull;
constexpr uint64_t kFnvPrime = 0x100000001b3ull;

// "[safetensors] <file>: <field>: <message>"
template <typename... Args>
[[noreturn]] void fail_safetensors(const std::string& file, const std::string& field, const Args&... args) {
  throw std::runtime_error(str_cat("[safetensors] ", file, ": ", field, ": ", args...));
}

const char* dtype_code(DType t) {
  switch (t) {
    case DType::f32: return "F32";
    case DType::f64: return "F64";
    case DType::i64: return "I64";
    case DType::u8: return "U8";
  }
  return "?";
}

bool parse_dtype(const std::string& s, DType* out) {
  for (DType t : {DType::f32, DType::f64, DType::i64, DType::u8})
    if (s == dtype_code(t)) return *out = t, true;
  return false;
}

// One tensor of a header; begin/end relative to the data section.
struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;
};

struct Header {
  std::vector<Entry> entries;  // in data order
  Metadata metadata;           // including the checksum keys
};

uint64_t header_checksum(const std::vector<Entry>& entries, const Metadata& metadata) {
  Checksum64 c;
  auto put = [&](const std::string& s) { c.update(s.data(), s.size() + 1); };  // with its '\0'
  for (const Entry& e : entries) {
    put(e.name);
    put(dtype_code(e.dtype));
    std::string dims;
    for (int64_t d : e.shape) dims += str_cat(d, ",");
    put(dims);
    put(str_cat(e.begin, ",", e.end));
  }
  for (const auto& kv : metadata)
    if (kv.first != kDataChecksumKey && kv.first != kHeaderChecksumKey) put(kv.first), put(kv.second);
  return c.digest();
}

// Parses and checks header bytes [p, p + n) of a file whose data section has data_size bytes.
Header parse_header(const char* p, size_t n, uint64_t data_size, const std::string& file) {
  // nlohmann-json stops at a NUL as at the end of input; valid JSON never holds a raw one.
  if (std::memchr(p, 0, n) != nullptr) fail_safetensors(file, "header", "contains a NUL byte (not JSON)");
  nlohmann::json j = nlohmann::json::parse(p, p + n, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) fail_safetensors(file, "header", "not well-formed JSON (", n, " bytes)");
  if (!j.is_object()) fail_safetensors(file, "header", "expected a JSON object, got a ", j.type_name());
  Header h;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    const nlohmann::json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) fail_safetensors(file, "__metadata__", "expected an object of strings, got a ", v.type_name());
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string())
          fail_safetensors(file, str_cat("__metadata__.", m.key()), "expected a string, got a ", m.value().type_name());
        h.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string field = str_cat("tensor '", name, "'");
    if (!v.is_object()) fail_safetensors(file, field, "expected an object, got a ", v.type_name());
    for (auto k = v.begin(); k != v.end(); ++k)
      if (k.key() != "dtype" && k.key() != "shape" && k.key() != "data_offsets")
        fail_safetensors(file, field + ".'" + k.key() + "'", "unknown field (expected dtype, shape, data_offsets)");
    Entry e{name, DType::f32, {}, 0, 0};
    auto dt = v.find("dtype");
    if (dt == v.end() || !dt->is_string()) fail_safetensors(file, field + ".dtype", "missing or not a string");
    if (!parse_dtype(dt->get<std::string>(), &e.dtype))
      fail_safetensors(file, field + ".dtype", "unsupported dtype '", dt->get<std::string>(), "' (lockstep reads F32, F64, I64, U8)");
    auto sh = v.find("shape");
    if (sh == v.end() || !sh->is_array()) fail_safetensors(file, field + ".shape", "missing or not an array");
    if (sh->size() > static_cast<size_t>(kMaxDims))
      fail_safetensors(file, field + ".shape", sh->size(), " dimensions, at most ", kMaxDims, " supported");
    // numel counts the elements; span counts zeros as 1, so that the strides of an empty
    // tensor ([0, 2^32, 2^32]) must fit in int64 too.
    uint64_t numel = 1, span = 1;
    for (const auto& d : *sh) {
      if (!d.is_number_unsigned()) fail_safetensors(file, field + ".shape", "expected non-negative integers, got ", d.dump());
      const uint64_t x = d.get<uint64_t>();
      const uint64_t limit = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
      if (x > limit) fail_safetensors(file, field + ".shape", "dimension ", x, " is too large");
      if (span > limit / std::max<uint64_t>(x, 1))
        fail_safetensors(file, field + ".shape", "the product of the dimensions overflows int64 at dimension ", e.shape.size(),
             " (", x, ")");
      span *= std::max<uint64_t>(x, 1);
      numel *= x;
      e.shape.push_back(static_cast<int64_t>(x));
    }
    const uint64_t esize = dtype_size(e.dtype);
    if (numel > data_size / esize)
      fail_safetensors(file, field + ".shape", shape_str(e.shape), " x ", dtype_code(e.dtype), " is larger than the data section (",
           data_size, " bytes)");
    auto off = v.find("data_offsets");
    if (off == v.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
        !(*off)[1].is_number_unsigned())
      fail_safetensors(file, field + ".data_offsets", "expected [begin, end] non-negative integers, got ",
           off == v.end() ? std::string("nothing") : off->dump());
    e.begin = (*off)[0].get<uint64_t>();
    e.end = (*off)[1].get<uint64_t>();
    if (e.begin > e.end || e.end > data_size)
      fail_safetensors(file, field + ".data_offsets", "[", e.begin, ", ", e.end, "] is not a range inside the data section (",
           data_size, " bytes)");
    if (e.end - e.begin != numel * esize)
      fail_safetensors(file, field + ".data_offsets", "[", e.begin, ", ", e.end, "] holds ", e.end - e.begin, " bytes, but ",
           dtype_code(e.dtype), " ", shape_str(e.shape), " needs ", numel * esize);
    h.entries.push_back(std::move(e));
  }
  // The ranges must tile the data section: sorted by begin, each starts where the last ended.
  std::stable_sort(h.entries.begin(), h.entries.end(),
                   [](const Entry& a, const Entry& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  uint64_t at = 0;
  for (const Entry& e : h.entries) {
    if (e.begin < at)
      fail_safetensors(file, str_cat("tensor '", e.name, "'.data_offsets"), "[", e.begin, ", ", e.end,
           "] overlaps the previous tensor, which ends at ", at);
    if (e.begin > at)
      fail_safetensors(file, str_cat("tensor '", e.name, "'.data_offsets"), "[", e.begin, ", ", e.end,
           "] leaves a gap: bytes [", at, ", ", e.begin, ") belong to no tensor");
    at = e.end;
  }
  if (at != data_size)
    fail_safetensors(file, "data section", data_size - at, " trailing bytes after the last tensor belong to no tensor");
  // Written together: one without the other means a damaged key (which would otherwise
  // switch the header check off).
  if (h.metadata.count(kHeaderChecksumKey) != h.metadata.count(kDataChecksumKey))
    fail_safetensors(file, str_cat("__metadata__.", h.metadata.count(kHeaderChecksumKey) ? kDataChecksumKey : kHeaderChecksumKey),
         "missing while the other lockstep checksum is present (damaged header?)");
  auto hc = h.metadata.find(kHeaderChecksumKey);
  if (hc != h.metadata.end() && hc->second != checksum_hex(header_checksum(h.entries, h.metadata)))
    fail_safetensors(file, str_cat("__metadata__.", kHeaderChecksumKey), "mismatch: the header was modified or damaged (stored ",
         hc->second, ", computed ", checksum_hex(header_checksum(h.entries, h.metadata)), ")");
  return h;
}

// The header length from the first 8 bytes, checked against the file size.
uint64_t header_length(const unsigned char* first8, uint64_t file_size, const std::string& file) {
  if (file_size < 8) fail_safetensors(file, "header length", "the file has ", file_size, " bytes, fewer than the 8 of the length");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | first8[i];
  if (n > kMaxHeaderBytes) fail_safetensors(file, "header length", n, " exceeds the limit of ", kMaxHeaderBytes, " bytes");
  if (n > file_size - 8)
    fail_safetensors(file, "header length", n, " exceeds the ", file_size - 8, " bytes after the length field (truncated file?)");
  return n;
}

void check_checksums_present(const Header& h, const std::string& file, const LoadOptions& options) {
  if (!options.require_checksum) return;
  for (const char* k : {kHeaderChecksumKey, kDataChecksumKey})
    if (!h.metadata.count(k)) fail_safetensors(file, str_cat("__metadata__.", k), "missing (required for this file)");
}

void check_data_checksum(const Header& h, uint64_t computed, const std::string& file) {
  auto dc = h.metadata.find(kDataChecksumKey);
  if (dc != h.metadata.end() && dc->second != checksum_hex(computed))
    fail_safetensors(file, str_cat("__metadata__.", kDataChecksumKey), "mismatch: the data section is damaged (stored ", dc->second,
         ", computed ", checksum_hex(computed), ")");
}

SafetensorsContents finish(Header& h, std::vector<Tensor>& tensors) {
  SafetensorsContents out;
  for (size_t i = 0; i < h.entries.size(); ++i) out.tensors.insert(h.entries[i].name, tensors[i]);
  h.metadata.erase(kDataChecksumKey);
  h.metadata.erase(kHeaderChecksumKey);
  out.metadata = std::move(h.metadata);
  return out;
}

// The tensors as contiguous CPU tensors, with the header they get (names checked).
struct Prepared {
  std::vector<Tensor> tensors;
  std::string header;  // padded, without the length field
  uint64_t data_size = 0;
};

Prepared prepare(const NamedTensors& tensors, const Metadata& metadata, bool checksum, const std::string& file) {
  Prepared p;
  std::vector<Entry> entries;
  std::set<std::string> seen;
  for (const auto& [name, t0] : tensors) {
    if (name.empty() || name == "__metadata__")
      throw std::invalid_argument(str_cat("[save_safetensors] ", file, ": invalid tensor name '", name, "'"));
    if (!seen.insert(name).second)
      throw std::invalid_argument(str_cat("[save_safetensors] ", file, ": duplicate tensor name '", name, "'"));
    if (!t0.defined())
      throw std::invalid_argument(str_cat("[save_safetensors] ", file, ": tensor '", name, "' is undefined"));
    Tensor t = t0.to(Device::cpu).contiguous();
    entries.push_back({name, t.dtype(), t.shape(), p.data_size, p.data_size + t.nbytes()});
    p.data_size += t.nbytes();
    p.tensors.push_back(t);
  }
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  Metadata meta = metadata;
  for (const char* k : {kDataChecksumKey, kHeaderChecksumKey})
    if (meta.count(k))
      throw std::invalid_argument(str_cat("[save_safetensors] ", file, ": metadata key '", k, "' is reserved"));
  if (checksum) {
    Checksum64 c;
    for (const Tensor& t : p.tensors) c.update(t.raw_data(), t.nbytes());
    meta[kDataChecksumKey] = checksum_hex(c.digest());
    meta[kHeaderChecksumKey] = checksum_hex(header_checksum(entries, meta));
  }
  if (!meta.empty()) {
    nlohmann::ordered_json m = nlohmann::ordered_json::object();
    for (const auto& kv : meta) m[kv.first] = kv.second;
    j["__metadata__"] = m;
  }
  for (const Entry& e : entries)
    j[e.name] = {{"dtype", dtype_code(e.dtype)}, {"shape", e.shape}, {"data_offsets", {e.begin, e.end}}};
  p.header = j.dump();
  p.header.append((8 - p.header.size() % 8) % 8, ' ');  // 8 + N a multiple of 8, as the spec allows
  return p;
}

std::string length_field(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return s;
}

// A read-only file descriptor, closed on scope exit.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

void read_at(int fd, void* dst, uint64_t n, uint64_t offset, const std::string& file, const char* what) {
  char* p = static_cast<char*>(dst);
  while (n > 0) {
    ssize_t r = ::pread(fd, p, n < (uint64_t{1} << 30) ? n : (uint64_t{1} << 30), static_cast<off_t>(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail_safetensors(file, what, "read failed: ", std::strerror(errno));
    if (r == 0) fail_safetensors(file, what, "unexpected end of file (the file shrank while being read)");
    p += r, offset += static_cast<uint64_t>(r), n -= static_cast<uint64_t>(r);
  }
}

}  // namespace

// ---- checksum64 ------------------------------------------------------------------------

Checksum64::Checksum64() {
  for (auto& h : lane_) h = kFnvBasis;
}

void Checksum64::block(const unsigned char* p) {
  for (int l = 0; l < 8; ++l) {
    uint64_t w;
    std::memcpy(&w, p + 8 * l, 8);  // little-endian host: the word's little-endian value
    lane_[l] = (lane_[l] ^ w) * kFnvPrime;
  }
}

void Checksum64::update(const void* data, size_t n) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  length_ += n;
  if (buffered_ > 0) {  // complete a block started by an earlier call
    const size_t take = std::min(n, 64 - buffered_);
    std::memcpy(buf_ + buffered_, p, take);
    buffered_ += take, p += take, n -= take;
    if (buffered_ < 64) return;
    block(buf_);
    buffered_ = 0;
  }
  for (; n >= 64; p += 64, n -= 64) block(p);
  std::memcpy(buf_, p, n);
  buffered_ = n;
}

uint64_t Checksum64::digest() const {
  uint64_t h = kFnvBasis;
  auto byte = [&](unsigned char b) { h = (h ^ b) * kFnvPrime; };
  for (uint64_t lane : lane_)
    for (int i = 0; i < 8; ++i) byte(static_cast<unsigned char>(lane >> (8 * i)));
  for (size_t i = 0; i < buffered_; ++i) byte(buf_[i]);
  for (int i = 0; i < 8; ++i) byte(static_cast<unsigned char>(length_ >> (8 * i)));
  return h;
}

std::string checksum_hex(uint64_t c) {
  static const char* digits = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i, c >>= 4) s[i] = digits[c & 15];
  return s;
}

// ---- writing -----------------------------------------------------------------------------

std::string encode_safetensors(const NamedTensors& tensors, const Metadata& metadata, bool checksum) {
  Prepared p = prepare(tensors, metadata, checksum, "<memory>");
  std::string out = length_field(p.header.size()) + p.header;
  out.reserve(out.size() + p.data_size);
  for (const Tensor& t : p.tensors) out.append(static_cast<const char*>(t.raw_data()), t.nbytes());
  return out;
}

void save_safetensors(const std::string& path, const NamedTensors& tensors, const Metadata& metadata,
                      const SaveOptions& options) {
  Prepared p = prepare(tensors, metadata, options.checksum, path);
  AtomicFileWriter w(path, options.atomic);
  // Small tensors are gathered so that a state dict of many biases is not one syscall each;
  // large ones go straight from their storage to the file.
  constexpr size_t kSmall = 1 << 16;
  std::string staged = length_field(p.header.size()) + p.header;
  for (const Tensor& t : p.tensors) {
    if (t.nbytes() < kSmall) {
      staged.append(static_cast<const char*>(t.raw_data()), t.nbytes());
      if (staged.size() >= (1u << 20)) w.write(staged.data(), staged.size()), staged.clear();
      continue;
    }
    if (!staged.empty()) w.write(staged.data(), staged.size()), staged.clear();
    w.write(t.raw_data(), t.nbytes());
  }
  if (!staged.empty()) w.write(staged.data(), staged.size());
  w.commit();
}

// ---- reading -----------------------------------------------------------------------------

SafetensorsContents decode_safetensors(const void* data, size_t size, const std::string& source,
                                       const LoadOptions& options) {
  const unsigned char* bytes = static_cast<const unsigned char*>(data);
  const uint64_t n = header_length(bytes, size, source);
  const uint64_t data_start = 8 + n;
  Header h = parse_header(reinterpret_cast<const char*>(bytes) + 8, n, size - data_start, source);
  check_checksums_present(h, source, options);
  Checksum64 c;
  std::vector<Tensor> tensors;
  for (const Entry& e : h.entries) {
    Tensor t = Tensor::empty(e.shape, e.dtype);
    if (e.end > e.begin) std::memcpy(t.raw_data(), bytes + data_start + e.begin, e.end - e.begin);
    tensors.push_back(t);
  }
  c.update(bytes + data_start, size - data_start);
  check_data_checksum(h, c.digest(), source);
  return finish(h, tensors);
}

SafetensorsContents load_safetensors(const std::string& path, const LoadOptions& options) {
  Fd f;
  // O_NONBLOCK: opening a FIFO must not wait for a writer; the type check below refuses it.
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (f.fd < 0) fail_safetensors(path, "file", "cannot open: ", std::strerror(errno));
  struct stat st;
  if (::fstat(f.fd, &st) != 0) fail_safetensors(path, "file", "cannot stat: ", std::strerror(errno));
  if (!S_ISREG(st.st_mode)) fail_safetensors(path, "file", "not a regular file");
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  unsigned char first8[8] = {0};
  if (size >= 8) read_at(f.fd, first8, 8, 0, path, "header length");
  const uint64_t n = header_length(first8, size, path);
  std::string header(n, '\0');
  read_at(f.fd, header.data(), n, 8, path, "header");
  const uint64_t data_start = 8 + n;
  Header h = parse_header(header.data(), n, size - data_start, path);
  check_checksums_present(h, path, options);
  Checksum64 c;
  std::vector<Tensor> tensors;
  for (const Entry& e : h.entries) {
    Tensor t = Tensor::empty(e.shape, e.dtype);
    if (e.end > e.begin) {
      read_at(f.fd, t.raw_data(), e.end - e.begin, data_start + e.begin, path, ("tensor '" + e.name + "'").c_str());
      c.update(t.raw_data(), e.end - e.begin);
    }
    tensors.push_back(t);
  }
  check_data_checksum(h, c.digest(), path);
  return finish(h, tensors);
}

// ---- weights only ------------------------------------------------------------------------

void save_state_dict(const std::string& path, const StateDict& sd, const Metadata& metadata,
                     const SaveOptions& options) {
  save_safetensors(path, sd.items(), metadata, options);
}

StateDict load_state_dict_file(const std::string& path, const LoadOptions& options) {
  return load_safetensors(path, options).tensors;
}

void check_state_dict_matches(const StateDict& sd, const StateDict& reference, const std::string& file,
                              const std::string& op, bool strict) {
  for (const auto& [key, ref] : reference.items()) {
    if (!sd.contains(key)) {
      if (strict) throw std::runtime_error(str_cat("[", op, "] ", file, ": key '", key, "': missing from the file"));
      continue;
    }
    const Tensor& t = sd.at(key);
    if (t.dtype() != ref.dtype() || t.shape() != ref.shape())
      throw std::runtime_error(str_cat("[", op, "] ", file, ": key '", key, "': the file has ", dtype_name(t.dtype()),
                                       " ", shape_str(t.shape()), ", the model expects ", dtype_name(ref.dtype()), " ",
                                       shape_str(ref.shape())));
  }
  if (strict)
    for (const auto& kv : sd.items())
      if (!reference.contains(kv.first))
        throw std::runtime_error(str_cat("[", op, "] ", file, ": key '", kv.first, "': unexpected (not in the model)"));
}

void load_weights(const std::string& path, Stateful& model, bool strict) {
  StateDict sd = load_state_dict_file(path);
  const StateDict current = model.state_dict();
  check_state_dict_matches(sd, current, path, "load_weights", strict);
  if (strict) return model.load_state_dict(sd);
  // Stateful loads are whole: complete the file's keys with the model's own values.
  StateDict full;
  for (const auto& [key, t] : current.items()) full.insert(key, sd.contains(key) ? sd.at(key) : t.detach().clone());
  model.load_state_dict(full);
}

}  // namespace lockstep::serialize
