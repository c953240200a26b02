// SHA-256 (FIPS 180-4), for the hashes lockstep prints and compares: the weights hash of
// `lockstep train`, checkpoint and trace digests. Streaming: update() any number of times,
// then digest()/hex_digest() once.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/tensor.h"

namespace lockstep {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t n);
  void update(const std::string& s) { update(s.data(), s.size()); }
  std::array<uint8_t, 32> digest();  // finishes the hash; call once
  std::string hex_digest();          // 64 lowercase hex digits; call once

 private:
  void block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;  // bytes
  bool done_ = false;
};

std::string sha256_hex(const void* data, size_t n);
inline std::string sha256_hex(const std::string& s) { return sha256_hex(s.data(), s.size()); }

// Feeds one tensor into h as: dtype name, '\0', rank (u8), each dim (int64 little-endian),
// then its bytes in row-major order (from the CPU, contiguous). Shape and dtype are part of
// the hash, so a [2,3] and a [3,2] tensor of the same bytes hash differently.
void sha256_update(Sha256& h, const Tensor& t);
// SHA-256 of one tensor as sha256_update writes it.
std::string sha256_hex(const Tensor& t);

}  // namespace lockstep
