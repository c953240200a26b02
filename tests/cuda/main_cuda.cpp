// CUDA test binary. Without a device it returns 77, which CTest (SKIP_RETURN_CODE) reports
// as skipped: never as passed, never as failed. Listing (--list-tests, --list-tags) works
// without a device, so a machine without a GPU can still see what would run.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstring>

#include "kernels/memory.h"

int main(int argc, char** argv) {
  bool listing = false;
  for (int i = 1; i < argc; ++i) listing = listing || std::strncmp(argv[i], "--list", 6) == 0;
  if (!listing && !lockstep::cuda_device_available()) {
    std::printf("lockstep_cuda_tests: no CUDA device, skipping\n");
    return 77;
  }
  return Catch::Session().run(argc, argv);
}
