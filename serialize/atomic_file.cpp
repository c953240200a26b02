#include "serialize/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "base/error.h"

namespace lockstep::serialize {

namespace {

std::string dir_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::atomic<uint64_t> g_temp_counter{0};

}  // namespace

const char* write_stage_name(WriteStage s) {
  switch (s) {
    case WriteStage::open: return "open";
    case WriteStage::write: return "write";
    case WriteStage::fsync: return "fsync";
    case WriteStage::rename: return "rename";
    case WriteStage::sync_dir: return "fsync of the directory";
  }
  return "?";
}

AtomicFileWriter::AtomicFileWriter(std::string path, AtomicWriteOptions options)
    : path_(std::move(path)), opt_(std::move(options)) {
  temp_ = str_cat(path_, ".tmp-", static_cast<long>(getpid()), "-", g_temp_counter++);
  if (opt_.fault && opt_.fault(WriteStage::open)) fail(WriteStage::open, ENOSPC);
  fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd_ < 0) fail(WriteStage::open, errno);
}

AtomicFileWriter::~AtomicFileWriter() {
  if (!done_) cleanup();
}

void AtomicFileWriter::cleanup() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  ::unlink(temp_.c_str());  // may not exist (open failed); nothing to report then
  done_ = true;
}

void AtomicFileWriter::fail(WriteStage stage, int err) {
  cleanup();
  const bool had_file = ::access(path_.c_str(), F_OK) == 0;
  throw std::runtime_error(str_cat("[atomic_write] ", path_, ": ", write_stage_name(stage), " of temporary file '",
                                   temp_, "' failed: ", std::strerror(err),
                                   had_file ? "; the previous file is unchanged" : "; no file was written"));
}

void AtomicFileWriter::write(const void* data, size_t n) {
  if (done_) throw std::logic_error(str_cat("[atomic_write] ", path_, ": write after commit or failure"));
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    // Linux moves at most ~2 GiB per call; 1 GiB chunks keep every call well inside that.
    size_t chunk = n < (size_t{1} << 30) ? n : (size_t{1} << 30);
    const bool inject = opt_.fault && opt_.fault(WriteStage::write);
    if (inject) chunk /= 2;
    ssize_t w = chunk > 0 ? ::write(fd_, p, chunk) : 0;
    if (inject) fail(WriteStage::write, ENOSPC);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail(WriteStage::write, errno);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

void AtomicFileWriter::commit() {
  if (done_) throw std::logic_error(str_cat("[atomic_write] ", path_, ": commit after commit or failure"));
  if (opt_.durable) {
    if (opt_.fault && opt_.fault(WriteStage::fsync)) fail(WriteStage::fsync, EIO);
    if (::fsync(fd_) != 0) fail(WriteStage::fsync, errno);
  }
  if (::close(fd_) != 0) {
    fd_ = -1;
    fail(WriteStage::write, errno);  // delayed write errors (NFS) surface at close
  }
  fd_ = -1;
  if (opt_.fault && opt_.fault(WriteStage::rename)) fail(WriteStage::rename, EIO);
  if (::rename(temp_.c_str(), path_.c_str()) != 0) fail(WriteStage::rename, errno);
  done_ = true;  // the new file is in place; from here the temporary name no longer exists
  if (opt_.durable) {
    // Without this the rename itself may be lost by a crash (the old file comes back, whole).
    const bool inject = opt_.fault && opt_.fault(WriteStage::sync_dir);
    const std::string dir = dir_of(path_);
    int dfd = inject ? -1 : ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int err = inject ? EIO : errno;
    if (dfd >= 0) {
      if (::fsync(dfd) != 0) err = errno, ::close(dfd), dfd = -1;
      else ::close(dfd);
    }
    if (dfd < 0 && !(err == EINVAL || err == ENOTSUP))  // some file systems cannot sync directories
      throw std::runtime_error(str_cat("[atomic_write] ", path_, ": fsync of directory '", dir,
                                       "' failed: ", std::strerror(err),
                                       "; the new file is in place but may not survive a crash"));
  }
}

void atomic_write_file(const std::string& path, const void* data, size_t n, const AtomicWriteOptions& options) {
  AtomicFileWriter w(path, options);
  w.write(data, n);
  w.commit();
}

}  // namespace lockstep::serialize
