// Host memory (kernels/memory.h): 64-byte aligned blocks, each behind a 64-byte header that
// holds its size.
//
// Freed blocks of 32 KiB to 8 MiB go to a cache keyed by their exact (rounded) size and are
// handed out again to the next request of that size. A training step asks for the same sizes
// every step (activations, gradients, GEMM packing buffers); a fresh block from malloc is
// mapped by the kernel one page fault per 4 KiB on first touch (above glibc's mmap threshold
// it is also unmapped on free, so every step paid that again, on each thread touching it),
// while a cached block is already mapped. The cache holds at most 64 MiB: a free that would
// pass that empties it first, so sizes no longer asked for do not stay. Contents are
// uninitialised either way. Off under AddressSanitizer (which has to see every free) and
// when the environment sets LOCKSTEP_HOST_CACHE=0.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "kernels/memory.h"

#if defined(__SANITIZE_ADDRESS__)
#define LS_HOST_CACHE_DEFAULT false
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define LS_HOST_CACHE_DEFAULT false
#endif
#endif
#ifndef LS_HOST_CACHE_DEFAULT
#define LS_HOST_CACHE_DEFAULT true
#endif

namespace lockstep {
namespace {

constexpr size_t kHeader = 64;  // keeps the block 64-byte aligned
constexpr size_t kMinCached = size_t{32} << 10, kMaxCached = size_t{8} << 20, kCacheCap = size_t{64} << 20;

struct HostCache {
  std::mutex mu;
  std::unordered_map<size_t, std::vector<void*>> blocks;  // size -> freed blocks (user pointers)
  size_t bytes = 0;
};

// Never destroyed: tensors held by other static objects are freed after exit's destructors.
HostCache& cache() {
  static HostCache* c = new HostCache;
  return *c;
}

bool cache_on(size_t n) { return host_cache_enabled() && n >= kMinCached && n <= kMaxCached; }

void release(void* p) { std::free(static_cast<char*>(p) - kHeader); }

}  // namespace

bool host_cache_enabled() {
  static const bool on = [] {
    const char* env = std::getenv("LOCKSTEP_HOST_CACHE");
    return env ? std::strcmp(env, "0") != 0 : LS_HOST_CACHE_DEFAULT;
  }();
  return on;
}

void* host_alloc(size_t nbytes) {
  // Round up to the alignment; never ask for 0 bytes.
  size_t n = (nbytes + 63) / 64 * 64;
  if (n == 0) n = 64;
  if (cache_on(n)) {
    HostCache& c = cache();
    std::lock_guard<std::mutex> lk(c.mu);
    auto it = c.blocks.find(n);
    if (it != c.blocks.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      c.bytes -= n;
      return p;
    }
  }
  void* base = n <= SIZE_MAX - kHeader ? std::aligned_alloc(64, n + kHeader) : nullptr;
  if (!base) throw std::runtime_error("[alloc] out of host memory allocating " + std::to_string(nbytes) + " bytes");
  *static_cast<size_t*>(base) = n;
  return static_cast<char*>(base) + kHeader;
}

void host_free(void* p) {
  if (!p) return;
  const size_t n = *reinterpret_cast<const size_t*>(static_cast<char*>(p) - kHeader);
  if (cache_on(n)) {
    HostCache& c = cache();
    std::lock_guard<std::mutex> lk(c.mu);
    if (c.bytes + n > kCacheCap) {
      for (auto& [size, list] : c.blocks)
        for (void* q : list) release(q);
      c.blocks.clear();
      c.bytes = 0;
    }
    c.blocks[n].push_back(p);
    c.bytes += n;
    return;
  }
  release(p);
}

}  // namespace lockstep
