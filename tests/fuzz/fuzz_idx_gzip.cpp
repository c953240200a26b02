// libFuzzer target for the IDX reader (data/idx.h) behind valid gzip: the input is the
// uncompressed IDX file after one control byte; the harness compresses it -- as one gzip
// member, or split into two concatenated members (as `cat a.gz b.gz` makes) at a point the
// control byte chooses -- so the mutations reach the IDX header and size checks rather
// than zlib's CRC check.
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "data/idx.h"
#include "fuzz_util.h"

namespace {

// Appends [p, p + n) to `out` as one gzip member (zlib's deflate with the gzip wrapper).
void gzip_member(const uint8_t* p, size_t n, std::vector<uint8_t>& out) {
  z_stream zs{};
  if (deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) std::abort();
  const size_t start = out.size();
  out.resize(start + deflateBound(&zs, n) + 32);
  zs.next_in = const_cast<Bytef*>(p);
  zs.avail_in = static_cast<uInt>(n);
  zs.next_out = out.data() + start;
  zs.avail_out = static_cast<uInt>(out.size() - start);
  if (deflate(&zs, Z_FINISH) != Z_STREAM_END) std::abort();
  out.resize(start + zs.total_out);
  deflateEnd(&zs);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const lockstep_fuzz::ScratchFile file(lockstep_fuzz::scratch_path("idx_gzip", ".gz"));
  // The first byte is the harness's, the rest the IDX file. Odd first byte: two members,
  // split at (first byte / 2) mod size; even: one member.
  if (size == 0) return 0;
  const uint8_t control = data[0];
  ++data, --size;
  size_t split = size;
  if ((control & 1) && size > 0) split = (control >> 1) % size;
  std::vector<uint8_t> gz;
  gzip_member(data, split, gz);
  if (split < size) gzip_member(data + split, size - split, gz);
  lockstep_fuzz::write_file(file.path, gz.data(), gz.size());
  lockstep_fuzz::read_or_reject([&] { lockstep::data::read_idx_images(file.path); });
  lockstep_fuzz::read_or_reject([&] { lockstep::data::read_idx_labels(file.path, 10); });
  return 0;
}
