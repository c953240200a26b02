// NCCL backend: see nccl_communicator.h. Byte collectives only.
#include "distributed/nccl_communicator.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <vector>

namespace lockstep::distributed {

struct NcclCommunicator::Impl {
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
  void* buf = nullptr;
  size_t buf_bytes = 0;
};

namespace {

void nccl_check(ncclResult_t r, int rank, const char* call) {
  if (r != ncclSuccess)
    throw std::runtime_error("[dist] rank " + std::to_string(rank) + ": " + call + " failed: " + ncclGetErrorString(r));
}
void cuda_check(cudaError_t e, int rank, const char* call) {
  if (e != cudaSuccess)
    throw std::runtime_error("[dist] rank " + std::to_string(rank) + ": " + call + " failed: " + cudaGetErrorString(e));
}

}  // namespace

NcclCommunicator::NcclCommunicator(MpiCommunicator& bootstrap, int device) : boot_(bootstrap), impl_(new Impl) {
  const int r = boot_.rank();
  int count = 0;
  cuda_check(cudaGetDeviceCount(&count), r, "cudaGetDeviceCount");
  if (count < 1) throw std::runtime_error("[dist] rank " + std::to_string(r) + ": the NCCL backend needs a GPU, none found");
  device_ = device >= 0 ? device : r % count;
  cuda_check(cudaSetDevice(device_), r, "cudaSetDevice");
  cuda_check(cudaStreamCreateWithFlags(&impl_->stream, cudaStreamNonBlocking), r, "cudaStreamCreate");
  ncclUniqueId id;
  if (r == 0) nccl_check(ncclGetUniqueId(&id), r, "ncclGetUniqueId");
  boot_.broadcast(&id, sizeof(id), 0);
  nccl_check(ncclCommInitRank(&impl_->comm, boot_.size(), id, r), r, "ncclCommInitRank");
}

NcclCommunicator::~NcclCommunicator() {
  if (impl_->comm) ncclCommDestroy(impl_->comm);
  if (impl_->buf) cudaFree(impl_->buf);
  if (impl_->stream) cudaStreamDestroy(impl_->stream);
}

void* NcclCommunicator::staging(size_t bytes) {
  if (impl_->buf_bytes < bytes) {
    if (impl_->buf) cuda_check(cudaFree(impl_->buf), rank(), "cudaFree");
    impl_->buf = nullptr;
    cuda_check(cudaMalloc(&impl_->buf, bytes), rank(), "cudaMalloc");
    impl_->buf_bytes = bytes;
  }
  return impl_->buf;
}

void NcclCommunicator::broadcast_device(void* data, size_t bytes, int root) {
  nccl_check(ncclBroadcast(data, data, bytes, ncclUint8, root, impl_->comm, impl_->stream), rank(), "ncclBroadcast");
  cuda_check(cudaStreamSynchronize(impl_->stream), rank(), "cudaStreamSynchronize (ncclBroadcast)");
  count(bytes);
}

void NcclCommunicator::all_gather_device(const void* send, size_t bytes, void* recv) {
  nccl_check(ncclAllGather(send, recv, bytes, ncclUint8, impl_->comm, impl_->stream), rank(), "ncclAllGather");
  cuda_check(cudaStreamSynchronize(impl_->stream), rank(), "cudaStreamSynchronize (ncclAllGather)");
  count(bytes * static_cast<uint64_t>(size()));
}

void NcclCommunicator::broadcast(void* data, size_t bytes, int root) {
  if (bytes == 0) return;
  void* d = staging(bytes);
  cuda_check(cudaMemcpyAsync(d, data, bytes, cudaMemcpyHostToDevice, impl_->stream), rank(), "cudaMemcpyAsync");
  broadcast_device(d, bytes, root);
  cuda_check(cudaMemcpy(data, d, bytes, cudaMemcpyDeviceToHost), rank(), "cudaMemcpy");
}

void NcclCommunicator::all_gather(const void* send, size_t bytes, void* recv) {
  if (bytes == 0) return;
  const size_t total = bytes * static_cast<size_t>(size());
  char* d = static_cast<char*>(staging(total + bytes));
  cuda_check(cudaMemcpyAsync(d + total, send, bytes, cudaMemcpyHostToDevice, impl_->stream), rank(), "cudaMemcpyAsync");
  all_gather_device(d + total, bytes, d);
  cuda_check(cudaMemcpy(recv, d, total, cudaMemcpyDeviceToHost), rank(), "cudaMemcpy");
}

void NcclCommunicator::barrier() {
  // A one-byte all-gather completes only when every rank has joined.
  char one = 0;
  std::vector<char> all(static_cast<size_t>(size()));
  all_gather(&one, 1, all.data());
}

void NcclCommunicator::abort(const std::string& message) {
  if (impl_->comm) ncclCommAbort(impl_->comm), impl_->comm = nullptr;
  boot_.abort("(nccl) " + message);
  std::_Exit(3);  // not reached: MPI_Abort ends the process
}

}  // namespace lockstep::distributed
