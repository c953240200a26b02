// MPI backend: byte collectives only (MPI_Bcast, MPI_Allgather on MPI_BYTE); sums are
// made by the caller from all-gathered partials, never by MPI_Allreduce, whose order is
// the implementation's.
#include "distributed/mpi_communicator.h"

#include <mpi.h>

#include <sched.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace lockstep::distributed {
namespace {

// MPI counts are int: larger messages go in pieces of at most this many bytes.
constexpr size_t kMaxPiece = size_t{1} << 30;

}  // namespace

MpiCommunicator::MpiCommunicator() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
      throw std::runtime_error("[dist] MPI_Init_thread failed");
    owns_init_ = true;
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  check(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
  check(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (owns_init_ && !finalized) MPI_Finalize();
}

void MpiCommunicator::check(int code, const char* call) const {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(code, text, &len);
  throw std::runtime_error("[dist] rank " + std::to_string(rank_) + ": " + call + " failed: " + std::string(text, len));
}

void MpiCommunicator::wait(void* request, const char* call) {
  MPI_Request* req = static_cast<MPI_Request*>(request);
  if (timeout_s_ <= 0) {
    check(MPI_Wait(req, MPI_STATUS_IGNORE), call);
    return;
  }
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  for (;;) {
    int done = 0;
    check(MPI_Test(req, &done, MPI_STATUS_IGNORE), call);
    if (done) return;
    if (std::chrono::duration<double>(clock::now() - start).count() > timeout_s_) {
      std::fprintf(stderr,
                   "[dist] rank %d: %s did not complete within %g s (--dist-timeout): another rank has stopped "
                   "responding (stopped, hung or unreachable); ending the job\n",
                   rank_, call, timeout_s_);
      std::fflush(stderr);
      MPI_Abort(MPI_COMM_WORLD, 4);
      std::_Exit(4);
    }
    sched_yield();  // oversubscribed ranks share cores
  }
}

void MpiCommunicator::broadcast(void* data, size_t bytes, int root) {
  if (root < 0 || root >= size_)
    throw std::invalid_argument("[broadcast] root " + std::to_string(root) + " is outside a world of " +
                                std::to_string(size_));
  for (size_t at = 0; at < bytes; at += kMaxPiece) {
    const int n = static_cast<int>(std::min(kMaxPiece, bytes - at));
    MPI_Request req;
    check(MPI_Ibcast(static_cast<char*>(data) + at, n, MPI_BYTE, root, MPI_COMM_WORLD, &req), "MPI_Bcast");
    wait(&req, "MPI_Bcast");
  }
  count(bytes);
}

void MpiCommunicator::all_gather(const void* send, size_t bytes, void* recv) {
  if (bytes <= kMaxPiece) {
    MPI_Request req;
    check(MPI_Iallgather(send, static_cast<int>(bytes), MPI_BYTE, recv, static_cast<int>(bytes), MPI_BYTE,
                         MPI_COMM_WORLD, &req),
          "MPI_Allgather");
    wait(&req, "MPI_Allgather");
  } else {
    // Large messages: each rank's block from its root in turn (still only bytes moved).
    for (int r = 0; r < size_; ++r) {
      char* dst = static_cast<char*>(recv) + static_cast<size_t>(r) * bytes;
      if (r == rank_) std::copy(static_cast<const char*>(send), static_cast<const char*>(send) + bytes, dst);
      for (size_t at = 0; at < bytes; at += kMaxPiece) {
        const int n = static_cast<int>(std::min(kMaxPiece, bytes - at));
        MPI_Request req;
        check(MPI_Ibcast(dst + at, n, MPI_BYTE, r, MPI_COMM_WORLD, &req), "MPI_Bcast (all_gather)");
        wait(&req, "MPI_Bcast (all_gather)");
      }
    }
  }
  count(bytes * static_cast<uint64_t>(size_));
}

void MpiCommunicator::barrier() {
  MPI_Request req;
  check(MPI_Ibarrier(MPI_COMM_WORLD, &req), "MPI_Barrier");
  wait(&req, "MPI_Barrier");
}

void MpiCommunicator::abort(const std::string& message) {
  std::fprintf(stderr, "[dist] rank %d aborted the job: %s\n", rank_, message.c_str());
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 3);
  std::_Exit(3);  // MPI_Abort does not return; this is for the compiler
}

}  // namespace lockstep::distributed
