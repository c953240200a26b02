// Host memory: 64-byte aligned blocks with a small cache of freed large blocks.
//
// Why a cache: a training step allocates the same activation and gradient sizes every step
// (hundreds of KiB to MiB each). From malloc these come from mmap or a trimmed heap, so
// every step page-faulted and zeroed them afresh (~10% of a small GPT's step). Freed blocks
// of at least kCacheMin bytes go to a free list keyed by their rounded size and are handed
// out again for the same size. Contents are never relied on (the memory is uninitialised
// either way), so no bits change. The cache holds at most LOCKSTEP_HOST_CACHE_MB MiB
// (default 256: the small GPT's step needs about that to fault nothing; a larger cap only kept
// the CNN's training blocks through its evaluation, +37% peak RSS at 1024); beyond that freed
// blocks go back to the system.
// Sanitizer builds skip the cache so use-after-free stays visible.
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "kernels/memory.h"

#if defined(__SANITIZE_ADDRESS__)
#define LS_HOST_CACHE_OFF 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LS_HOST_CACHE_OFF 1
#endif
#endif

namespace lockstep {

namespace {

constexpr size_t kHeader = 64;                 // the block's size, stored before the user pointer
constexpr size_t kCacheMin = size_t{64} << 10;  // smaller blocks: straight to malloc/free

struct HostCache {
  std::mutex mu;
  std::unordered_map<size_t, std::vector<void*>> free;  // size -> base pointers
  size_t cached = 0;
  size_t limit = 0;
  HostMemoryStats stats;
  HostCache() {
#ifndef LS_HOST_CACHE_OFF
    limit = size_t{256} << 20;
    if (const char* e = std::getenv("LOCKSTEP_HOST_CACHE_MB")) {
      char* end = nullptr;
      const unsigned long long mb = std::strtoull(e, &end, 10);
      if (end != e && *end == '\0') limit = static_cast<size_t>(mb) << 20;
    }
#endif
  }
  ~HostCache() {
    for (auto& kv : free)
      for (void* b : kv.second) std::free(b);
  }
};

HostCache& cache() {
  static HostCache* c = new HostCache;  // never destroyed: frees may come after static destructors
  return *c;
}

size_t rounded(size_t nbytes) {
  size_t n = (nbytes + 63) / 64 * 64;
  if (n == 0) n = 64;
  if (n >= kCacheMin) n = (n + 4095) / 4096 * 4096;  // page multiples: more sizes share a list
  return n;
}

}  // namespace

void* host_alloc(size_t nbytes) {
  const size_t n = rounded(nbytes);
  if (n >= kCacheMin) {
    HostCache& c = cache();
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.free.find(n);
    if (it != c.free.end() && !it->second.empty()) {
      void* base = it->second.back();
      it->second.pop_back();
      c.cached -= n;
      ++c.stats.cache_hits;
      c.stats.bytes_cached = c.cached;
      return static_cast<char*>(base) + kHeader;
    }
  }
  void* base = std::aligned_alloc(64, n + kHeader);
  if (!base) throw std::runtime_error("[alloc] out of host memory allocating " + std::to_string(nbytes) + " bytes");
  *static_cast<size_t*>(base) = n;
  if (n >= kCacheMin) {
    HostCache& c = cache();
    std::lock_guard<std::mutex> lock(c.mu);
    ++c.stats.system_allocs;
  }
  return static_cast<char*>(base) + kHeader;
}

void host_free(void* p) {
  if (!p) return;
  void* base = static_cast<char*>(p) - kHeader;
  const size_t n = *static_cast<size_t*>(base);
  if (n >= kCacheMin) {
    HostCache& c = cache();
    std::lock_guard<std::mutex> lock(c.mu);
    if (c.cached + n <= c.limit) {
      c.free[n].push_back(base);
      c.cached += n;
      c.stats.bytes_cached = c.cached;
      return;
    }
  }
  std::free(base);
}

HostMemoryStats host_memory_stats() {
  HostCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.stats;
}

void host_empty_cache() {
  HostCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  for (auto& kv : c.free)
    for (void* b : kv.second) std::free(b);
  c.free.clear();
  c.cached = 0;
  c.stats.bytes_cached = 0;
}

}  // namespace lockstep
