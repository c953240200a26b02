// Atomic, durable file replacement: the bytes go to a temporary file in the target's
// directory, which is fsync'ed, renamed over the target and followed by an fsync of the
// directory. A crash or a failure (full disk, I/O error) at any moment leaves either the
// previous file or the complete new one under `path`, never a mix; a failure reported by
// this code also removes the temporary file.
#pragma once
#include <cstddef>
#include <functional>
#include <string>

namespace lockstep::serialize {

// The system calls of one replacement, in order.
enum class WriteStage { open, write, fsync, rename, sync_dir };
const char* write_stage_name(WriteStage s);

// Test hook for failure injection: called before each stage (before every write() call for
// `write`); returning true makes that stage fail as if the system call had returned an error
// (ENOSPC for open and write, EIO for the others). A failed write first writes half of its
// chunk, so the temporary file is left partial, as on a full disk.
using WriteFaultHook = std::function<bool(WriteStage)>;

struct AtomicWriteOptions {
  bool durable = true;   // false: no fsync of the file nor of the directory (benchmarks, tests)
  WriteFaultHook fault;  // empty: no injected failures
};

// One replacement of `path`. Destroying a writer that was not committed closes and removes
// its temporary file, so an exception between the constructor and commit() cleans up.
class AtomicFileWriter {
 public:
  // Creates "<path>.tmp-<pid>-<n>" exclusively (std::runtime_error naming it on failure).
  explicit AtomicFileWriter(std::string path, AtomicWriteOptions options = {});
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(const void* data, size_t n);  // all n bytes, or throws
  void commit();                           // fsync, close, rename over path, fsync the directory
  const std::string& temp_path() const { return temp_; }

 private:
  void fail(WriteStage stage, int err);  // cleans up, then throws
  void cleanup();
  std::string path_, temp_;
  AtomicWriteOptions opt_;
  int fd_ = -1;
  bool done_ = false;
};

// Writes `n` bytes to `path` atomically (a single-buffer AtomicFileWriter).
void atomic_write_file(const std::string& path, const void* data, size_t n, const AtomicWriteOptions& options = {});

}  // namespace lockstep::serialize
