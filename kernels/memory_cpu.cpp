#include <cstdlib>
#include <stdexcept>
#include <string>

#include "kernels/memory.h"

namespace lockstep {

void* host_alloc(size_t nbytes) {
  // Round up so aligned_alloc's size is a multiple of the alignment; never ask for 0 bytes.
  size_t n = (nbytes + 63) / 64 * 64;
  if (n == 0) n = 64;
  void* p = std::aligned_alloc(64, n);
  if (!p) throw std::runtime_error("[alloc] out of host memory allocating " + std::to_string(nbytes) + " bytes");
  return p;
}

void host_free(void* p) { std::free(p); }

}  // namespace lockstep
