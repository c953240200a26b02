// Reader for the IDX format of MNIST and Fashion-MNIST, plain or gzip-compressed (a file
// starting with the gzip magic 1f 8b is inflated with zlib; concatenated gzip members are
// read one after another, as gunzip does).
//
// Layout: a big-endian header -- two zero bytes, a type byte (only 0x08, unsigned byte, is
// supported), a byte with the number of dimensions d, then d big-endian uint32 sizes --
// followed by exactly prod(sizes) bytes of data, row-major. Image files are magic
// 0x00000803 (N x rows x cols), label files 0x00000801 (N).
//
// Every check failure throws std::runtime_error naming the file and what is wrong: missing
// or unreadable file, empty file, corrupt or truncated gzip stream, wrong magic, wrong
// number of dimensions, data shorter or longer than the header says, labels out of range.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace lockstep::data {

// The raw bytes of a file, inflated if it is gzip-compressed.
std::vector<uint8_t> read_maybe_gzip(const std::string& path);

// How many bytes to reserve before inflating the gzip file `in`: its trailer's size
// (mod 2^32), capped at 16 x the compressed size and 1 GiB; the output grows past it when
// the data really is larger. A forged trailer cannot make a small file reserve more.
size_t gzip_reservation(const std::vector<uint8_t>& in);

// An IDX file of unsigned bytes with exactly `expected_dims` dimensions, as a uint8 tensor
// of the header's shape.
Tensor read_idx(const std::string& path, int expected_dims);

// Images: magic 0x00000803, uint8 [N, rows, cols].
Tensor read_idx_images(const std::string& path);

// Labels: magic 0x00000801, int64 [N]. With num_classes > 0 every label must be < num_classes.
Tensor read_idx_labels(const std::string& path, int64_t num_classes = 0);

}  // namespace lockstep::data
