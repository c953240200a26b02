// CUDA test binary. Without a device it returns 77, which CTest (SKIP_RETURN_CODE) reports
// as skipped: never as passed, never as failed. Listing (--list-tests, --list-tags) works
// without a device, so a machine without a GPU can still see what would run.
// Built against the CUDA emulation (LOCKSTEP_CUDA_EMU), --emu-coverage makes the run fail
// unless every __global__ function in kernels/ was launched at least once.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstring>
#include <vector>

#include "kernels/memory.h"

#if LOCKSTEP_CUDA_EMU
#include <cuda_runtime.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

namespace {

// The names of the __global__ functions in kernels/*.cu and kernels/*.cuh.
std::set<std::string> global_functions() {
  std::set<std::string> names;
  const std::regex global(R"(__global__\s+void\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?(\w+)\s*\()");
  for (const auto& e : std::filesystem::directory_iterator(std::string(LOCKSTEP_SOURCE_DIR) + "/kernels")) {
    const std::string ext = e.path().extension().string();
    if (ext != ".cu" && ext != ".cuh") continue;
    std::ifstream f(e.path());
    std::stringstream ss;
    ss << f.rdbuf();
    const std::string text = ss.str();
    for (std::sregex_iterator it(text.begin(), text.end(), global), end; it != end; ++it) names.insert((*it)[1]);
  }
  return names;
}

int coverage() {
  const std::set<std::string> defined = global_functions();
  std::set<std::string> launched;
  for (const auto& kv : lockstep_emu::launched_kernels()) launched.insert(kv.first);
  int covered = 0;
  for (const std::string& k : defined) {
    if (launched.count(k))
      ++covered;
    else
      std::printf("emu coverage: %s (kernels/) was never launched\n", k.c_str());
  }
  std::printf("emu coverage: %d of the %zu __global__ functions in kernels/ launched (seed %llu)\n", covered,
              defined.size(), static_cast<unsigned long long>(lockstep_emu::seed()));
  return defined.empty() || covered != static_cast<int>(defined.size()) ? 1 : 0;
}

}  // namespace
#endif

int main(int argc, char** argv) {
  bool listing = false, emu_coverage = false;
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    listing = listing || std::strncmp(argv[i], "--list", 6) == 0;
    if (std::strcmp(argv[i], "--emu-coverage") == 0)
      emu_coverage = true;
    else
      args.push_back(argv[i]);
  }
  if (!listing && !lockstep::cuda_device_available()) {
    std::printf("lockstep_cuda_tests: no CUDA device, skipping\n");
    return 77;
  }
  const int rc = Catch::Session().run(static_cast<int>(args.size()), args.data());
#if LOCKSTEP_CUDA_EMU
  if (emu_coverage && coverage() != 0) return rc != 0 ? rc : 1;
#else
  if (emu_coverage) {
    std::printf("lockstep_cuda_tests: --emu-coverage needs the CUDA emulation build (LOCKSTEP_CUDA_EMU)\n");
    return 2;
  }
#endif
  return rc;
}
