// The MPI backend (OpenMPI), built into lockstep_mpi when CMake finds MPI. Errors come back
// through MPI_ERRORS_RETURN and are thrown as std::runtime_error naming this rank, the call
// and MPI's error string; abort() prints "[dist] rank R aborted the job: <message>" to
// stderr and calls MPI_Abort, which ends every rank with a non-zero status.
// Timeout (set_timeout, `lockstep train --dist-timeout`): each collective is started
// non-blocking and polled; one that has not completed after that many seconds (a rank
// stopped, hung, or cut off) prints "[dist] rank R: MPI_Allgather did not complete within
// S s ..." and aborts the job, instead of waiting forever. A rank that dies (killed by a
// signal) is noticed by mpirun itself, which ends the job and names the rank.
#pragma once
#include <memory>

#include "distributed/communicator.h"

namespace lockstep::distributed {

class MpiCommunicator : public Communicator {
 public:
  // Initialises MPI (MPI_Init_thread, funneled) unless it already is; finalises it in the
  // destructor when this object initialised it. Works under mpirun and as a singleton.
  MpiCommunicator();
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "mpi"; }
  void broadcast(void* data, size_t bytes, int root) override;
  void all_gather(const void* send, size_t bytes, void* recv) override;
  void barrier() override;
  [[noreturn]] void abort(const std::string& message) override;
  // Seconds a collective may take before the job is aborted; 0: wait forever (MPI's blocking calls).
  void set_timeout(double seconds) { timeout_s_ = seconds; }

 private:
  void check(int code, const char* call) const;
  void wait(void* request, const char* call);  // MPI_Wait, or polling under the timeout
  double timeout_s_ = 0.0;
  int rank_ = 0, size_ = 1;
  bool owns_init_ = false;
};

}  // namespace lockstep::distributed
