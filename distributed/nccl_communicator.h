// The NCCL backend for GPUs, built into lockstep_nccl when CMake finds nccl.h and libnccl
// (they ship with the CUDA toolkit) and MPI. MPI starts the job and carries NCCL's unique
// id from rank 0; each rank then drives one GPU (`device`, default rank mod device count).
// Collectives are ncclBroadcast / ncclAllGather on ncclUint8: bytes only, never ncclSum,
// whose order is NCCL's; sums are combined by the caller exactly as with MPI. Host buffers
// are staged through a device buffer on the communicator's own stream (the CPU training
// path); a GPU trainer would pass device pointers to the *_device calls directly.
// Errors: std::runtime_error naming the rank, the call and ncclGetErrorString; abort()
// aborts the NCCL communicator and then the MPI job.
#pragma once
#include <memory>

#include "distributed/mpi_communicator.h"

namespace lockstep::distributed {

class NcclCommunicator : public Communicator {
 public:
  explicit NcclCommunicator(MpiCommunicator& bootstrap, int device = -1);
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return boot_.rank(); }
  int size() const override { return boot_.size(); }
  std::string backend() const override { return "nccl"; }
  int device() const { return device_; }
  void broadcast(void* data, size_t bytes, int root) override;
  void all_gather(const void* send, size_t bytes, void* recv) override;
  void barrier() override;
  [[noreturn]] void abort(const std::string& message) override;

  // The same collectives on device memory (no staging), synchronised before returning.
  void broadcast_device(void* data, size_t bytes, int root);
  void all_gather_device(const void* send, size_t bytes, void* recv);

 private:
  struct Impl;
  void* staging(size_t bytes);
  MpiCommunicator& boot_;
  int device_ = 0;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lockstep::distributed
