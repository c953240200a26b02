// CUDA test binary. Without a device it returns 77, which CTest (SKIP_RETURN_CODE) reports
// as skipped: never as passed, never as failed.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>

#include "kernels/memory.h"

int main(int argc, char** argv) {
  if (!lockstep::cuda_device_available()) {
    std::printf("lockstep_cuda_tests: no CUDA device, skipping\n");
    return 77;
  }
  return Catch::Session().run(argc, argv);
}
