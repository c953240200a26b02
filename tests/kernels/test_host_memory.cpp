// The host allocator's cache (kernels/memory_cpu.cpp): freed large blocks are handed out
// again, alignment holds, small blocks bypass it, and emptying it returns the blocks.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>

#include "kernels/memory.h"

using namespace lockstep;

TEST_CASE("host_alloc: 64-byte aligned, large freed blocks come back from the cache", "[memory]") {
  host_empty_cache();
  const size_t big = (size_t{1} << 20) + 12;  // 1 MiB and a bit: cached
  void* a = host_alloc(big);
  REQUIRE(reinterpret_cast<uintptr_t>(a) % 64 == 0);
  std::memset(a, 0x5a, big);  // the whole block is usable
  const HostMemoryStats s0 = host_memory_stats();
  host_free(a);
#if !defined(__SANITIZE_ADDRESS__)
  if (host_memory_stats().bytes_cached == 0) return;  // LOCKSTEP_HOST_CACHE_MB=0: nothing to test
  REQUIRE(host_memory_stats().bytes_cached >= big);
  void* b = host_alloc(big - 8);  // same rounded size: the same block
  CHECK(b == a);
  CHECK(host_memory_stats().cache_hits == s0.cache_hits + 1);
  CHECK(host_memory_stats().system_allocs == s0.system_allocs);
  void* c = host_alloc(big);  // the list is empty again: from the system
  CHECK(c != b);
  CHECK(host_memory_stats().system_allocs == s0.system_allocs + 1);
  host_free(b), host_free(c);
  host_empty_cache();
  CHECK(host_memory_stats().bytes_cached == 0);
#endif
  void* small = host_alloc(100);  // below the cache's minimum: never counted
  REQUIRE(reinterpret_cast<uintptr_t>(small) % 64 == 0);
  const HostMemoryStats s1 = host_memory_stats();
  host_free(small);
  CHECK(host_memory_stats().bytes_cached == s1.bytes_cached);
  host_free(nullptr);
}
