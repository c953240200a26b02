#include "data/idx.h"

#include <sys/stat.h>

#include "lockstep/config.h"
#if LOCKSTEP_HAS_ZLIB
#include <zlib.h>
#endif

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace lockstep::data {

namespace {

[[noreturn]] void fail(const char* op, const std::string& path, const std::string& what) {
  throw std::runtime_error(str_cat("[", op, "] ", path, ": ", what));
}

std::vector<uint8_t> read_file(const char* op, const std::string& path) {
  // A directory opens as a stream of size 2^63 - 1, and a FIFO would block: regular files only.
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) fail(op, path, str_cat("cannot open (", std::strerror(errno), ")"));
  if (!S_ISREG(st.st_mode))
    fail(op, path, S_ISDIR(st.st_mode) ? "is a directory, expected a file" : "is not a regular file");
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) fail(op, path, str_cat("cannot open (", std::strerror(errno), ")"));
  std::streamoff size = f.tellg();
  if (size < 0) fail(op, path, "cannot determine the file size (not a regular file?)");
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  f.seekg(0);
  if (size > 0 && !f.read(reinterpret_cast<char*>(bytes.data()), size))
    fail(op, path, "read error");
  return bytes;
}

#if LOCKSTEP_HAS_ZLIB
// Inflates every gzip member in `in`; the trailer is only a reservation hint
// (gzip_reservation), never trusted for the result.
std::vector<uint8_t> gunzip(const char* op, const std::string& path, const std::vector<uint8_t>& in) {
  std::vector<uint8_t> out;
  out.reserve(gzip_reservation(in));
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) fail(op, path, "zlib inflateInit2 failed");
  zs.next_in = const_cast<Bytef*>(in.data());
  zs.avail_in = static_cast<uInt>(in.size());  // IDX files are far below 4 GiB
  if (in.size() > 0xffffffffu) {
    inflateEnd(&zs);
    fail(op, path, "compressed file larger than 4 GiB is not supported");
  }
  uint8_t chunk[1 << 16];
  int rc = Z_OK;
  for (;;) {
    zs.next_out = chunk;
    zs.avail_out = sizeof(chunk);
    rc = inflate(&zs, Z_NO_FLUSH);
    out.insert(out.end(), chunk, chunk + (sizeof(chunk) - zs.avail_out));
    if (rc == Z_STREAM_END) {
      if (zs.avail_in == 0) break;
      inflateReset(&zs);  // another gzip member follows
      continue;
    }
    if (rc == Z_OK) continue;
    // Z_BUF_ERROR with no input left means the stream stopped before its end.
    std::string why = (rc == Z_BUF_ERROR && zs.avail_in == 0)
                          ? "truncated gzip stream (ends before the end-of-stream marker)"
                          : str_cat("corrupt gzip stream (zlib: ", zs.msg ? zs.msg : zError(rc), ")");
    inflateEnd(&zs);
    fail(op, path, why);
  }
  inflateEnd(&zs);
  return out;
}
#else
// A build without zlib (LOCKSTEP_ZLIB=OFF, e.g. the cross builds) reads plain IDX files only.
std::vector<uint8_t> gunzip(const char* op, const std::string& path, const std::vector<uint8_t>&) {
  fail(op, path, "is gzip-compressed, but this build has no zlib (LOCKSTEP_ZLIB=OFF): gunzip it first");
}
#endif

uint32_t be32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (p[1] << 16) | (p[2] << 8) | p[3];
}

std::string hex(uint32_t v, int width) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%0*x", width, v);
  return buf;
}

}  // namespace

size_t gzip_reservation(const std::vector<uint8_t>& in) {
  if (in.size() < 18) return 0;  // smaller than a gzip header and trailer
  const uint8_t* t = in.data() + in.size() - 4;
  const uint32_t hint = t[0] | (t[1] << 8) | (t[2] << 16) | (static_cast<uint32_t>(t[3]) << 24);
  return std::min<size_t>({hint, 16 * in.size(), size_t{1} << 30});
}

std::vector<uint8_t> read_maybe_gzip(const std::string& path) {
  std::vector<uint8_t> bytes = read_file("read_idx", path);
  if (bytes.empty()) fail("read_idx", path, "empty file");
  if (bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b) {
    bytes = gunzip("read_idx", path, bytes);
    if (bytes.empty()) fail("read_idx", path, "empty file (after gzip decompression)");
  }
  return bytes;
}

namespace {

// Parses and validates the IDX header of `bytes`; returns the shape.
Shape parse_header(const std::string& path, const std::vector<uint8_t>& bytes, int expected_dims,
                   size_t& header_size) {
  const char* op = "read_idx";
  if (bytes.size() < 4) fail(op, path, str_cat("expected a 4-byte magic number, got a ", bytes.size(), "-byte file"));
  if (bytes[0] != 0 || bytes[1] != 0)
    fail(op, path, str_cat("expected an IDX magic number starting with two zero bytes, got ",
                           hex(be32(bytes.data()), 8), " (not an IDX file?)"));
  if (bytes[2] != 0x08)
    fail(op, path, str_cat("expected data type 0x08 (unsigned byte), got type ", hex(bytes[2], 2)));
  const int dims = bytes[3];
  if (dims != expected_dims)
    fail(op, path, str_cat("expected magic number 0x0000080", expected_dims, " (", expected_dims,
                           " dimensions), got 0x0000080", dims, " (", dims, " dimensions)"));
  header_size = 4 + 4 * static_cast<size_t>(dims);
  if (bytes.size() < header_size)
    fail(op, path, str_cat("truncated header: expected ", header_size, " bytes, got ", bytes.size()));
  Shape shape(static_cast<size_t>(dims));
  for (int d = 0; d < dims; ++d) shape[d] = be32(bytes.data() + 4 + 4 * d);
  // Checked before each product, so nothing wraps (three 32-bit sizes can reach 2^96). A
  // zero size counts as 1 here: [0, 2^32, 2^32] holds no bytes, but its strides would.
  const uint64_t kMaxBytes = uint64_t{1} << 40;
  uint64_t span = 1, count = 1;
  for (int d = 0; d < dims; ++d) {
    const uint64_t size = static_cast<uint64_t>(shape[d]);
    if (span > kMaxBytes / std::max<uint64_t>(size, 1))
      fail(op, path, str_cat("header sizes ", shape_str(shape), " describe more than 2^40 bytes"));
    span *= std::max<uint64_t>(size, 1);
    count *= size;
  }
  const uint64_t have = bytes.size() - header_size;
  if (have < count)
    fail(op, path, str_cat("truncated data: header says ", shape_str(shape), " = ", count, " bytes, file has ",
                           have, " after the header"));
  if (have > count)
    fail(op, path, str_cat("data longer than the header says: ", shape_str(shape), " = ", count, " bytes, file has ",
                           have, " after the header"));
  return shape;
}

}  // namespace

Tensor read_idx(const std::string& path, int expected_dims) {
  LS_CHECK_ARG(expected_dims >= 1 && expected_dims <= 255, "read_idx", "expected 1..255 dimensions, got ",
               expected_dims);
  std::vector<uint8_t> bytes = read_maybe_gzip(path);
  size_t header = 0;
  Shape shape = parse_header(path, bytes, expected_dims, header);
  Tensor t = Tensor::empty(shape, DType::u8);
  if (t.numel() > 0) std::memcpy(t.data<uint8_t>(), bytes.data() + header, static_cast<size_t>(t.numel()));
  return t;
}

Tensor read_idx_images(const std::string& path) { return read_idx(path, 3); }

Tensor read_idx_labels(const std::string& path, int64_t num_classes) {
  Tensor raw = read_idx(path, 1);
  const int64_t n = raw.numel();
  Tensor labels = Tensor::empty({n}, DType::i64);
  const uint8_t* s = raw.data<uint8_t>();
  int64_t* d = labels.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    if (num_classes > 0 && s[i] >= num_classes)
      fail("read_idx", path, str_cat("label ", int(s[i]), " at index ", i, " is out of range [0, ", num_classes, ")"));
    d[i] = s[i];
  }
  return labels;
}

}  // namespace lockstep::data
