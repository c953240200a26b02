// Shared by the libFuzzer harnesses (tests/fuzz/fuzz_*.cpp). The readers under test take
// file paths, so each harness writes its input to a scratch file of its own process and
// reads that back; the file is removed at exit.
//
// The contract every harness checks: a hostile file is either read or rejected with the
// reader's std::runtime_error. Anything else -- a crash, a sanitizer report, a hang, an
// allocation beyond libFuzzer's -rss_limit_mb, or any other exception (std::invalid_argument
// from a check meant for callers, std::bad_alloc, std::length_error) -- escapes and is
// reported by libFuzzer as a finding.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace lockstep_fuzz {

// "<TMPDIR>/lockstep_fuzz_<stem>_<pid><suffix>", created on first use, removed at exit.
inline std::string scratch_path(const std::string& stem, const std::string& suffix = "") {
  const char* tmp = std::getenv("TMPDIR");
  return std::string(tmp && *tmp ? tmp : "/tmp") + "/lockstep_fuzz_" + stem + "_" + std::to_string(::getpid()) +
         suffix;
}

// Writes [data, data + size) to `path` (truncating); aborts if the file cannot be written,
// which is the harness's failure, not the reader's.
inline void write_file(const std::string& path, const void* data, size_t size) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f || std::fwrite(data, 1, size, f) != size || std::fclose(f) != 0) {
    std::perror(path.c_str());
    std::abort();
  }
}

// Runs `read`; a std::runtime_error is the expected rejection, anything else propagates.
template <typename F>
bool read_or_reject(F&& read) {
  try {
    read();
    return true;
  } catch (const std::runtime_error&) {
    return false;
  }
}

// Removes the scratch files named by `path` at exit (one static per harness).
struct ScratchFile {
  std::string path;
  explicit ScratchFile(std::string p) : path(std::move(p)) {}
  ~ScratchFile() { std::remove(path.c_str()); }
};

}  // namespace lockstep_fuzz
