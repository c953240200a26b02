// Communicator: the collective operations data parallelism needs, over a fixed group of
// `size()` processes (ranks 0 .. size-1). Backends: SingleCommunicator (world 1, here),
// LocalGroup (threads of one process, distributed/local_group.h: tests and the lab), MPI
// (distributed/mpi_communicator.h) and NCCL (distributed/nccl_communicator.h), built when found.
//
// The collectives move bytes only; no floating-point arithmetic happens inside them.
// Sums are made by all_gather followed by the same local combination on every rank
// (all_reduce_tree, BatchTree::combine), so their order is lockstep's, not the transport's.
// Every rank must make the same calls in the same order with the same sizes.
// Errors: std::runtime_error naming the rank and the call ("[dist] rank 2: MPI_Allgather
// failed: ..."). abort() ends every rank of the job (MPI_Abort), naming the rank that asked.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/tensor.h"
#include "distributed/batch_tree.h"

namespace lockstep::distributed {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string backend() const = 0;  // "single", "local", "mpi", "nccl"

  // data (bytes) on every rank becomes root's.
  virtual void broadcast(void* data, size_t bytes, int root) = 0;
  // Every rank sends `bytes`; recv (size() * bytes) receives rank r's at offset r * bytes.
  virtual void all_gather(const void* send, size_t bytes, void* recv) = 0;
  virtual void barrier() = 0;
  // Ends the job on every rank with `message`, which the backend prefixes with this rank.
  [[noreturn]] virtual void abort(const std::string& message) = 0;

  // Bytes this rank has sent plus received through the collectives so far (benchmarks).
  uint64_t bytes_moved() const { return bytes_moved_; }

 protected:
  void count(uint64_t bytes) { bytes_moved_ += bytes; }

 private:
  uint64_t bytes_moved_ = 0;
};

// The world of one process: broadcast and all_gather copy, abort throws.
class SingleCommunicator : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "single"; }
  void broadcast(void* data, size_t bytes, int root) override;
  void all_gather(const void* send, size_t bytes, void* recv) override;
  void barrier() override {}
  [[noreturn]] void abort(const std::string& message) override;
};

// ---- collectives built on the primitives ----
// A contiguous CPU tensor's bytes from root (same shape and dtype on every rank).
void broadcast_tensor(Communicator& comm, Tensor& t, int root = 0);
// In place: data[j] = the batch-order total of every rank's data[j], each rank's data being
// its node of `tree` (tree.world() == comm.size()). Identical bits on every rank.
void all_reduce_batch(Communicator& comm, const BatchTree& tree, float* data, int64_t n);
// In place: data[j] = tree_sum over ranks, in rank order, of every rank's data[j] (the
// fixed-order all-reduce for values that are not batch sums). Identical bits on every rank.
void all_reduce_tree(Communicator& comm, float* data, int64_t n);
// The sum of every rank's `value` (integers: exact, any order), the same on every rank.
int64_t all_sum_int64(Communicator& comm, int64_t value);
// Rows of a tensor split across ranks put back together: rank r holds `local`, rows [b_r, e_r)
// of a [rows, ...] tensor cut by `tree`. Every rank calls it (one all-gather, padded to the
// widest node); returns the whole contiguous tensor (float32, CPU) on every rank.
Tensor all_gather_rows(Communicator& comm, const BatchTree& tree, const Tensor& local);
// Throws std::runtime_error naming the first rank whose `digest` differs from rank 0's
// (every rank passes the same number of bytes, e.g. a SHA-256 of its parameters); `what`
// says what was compared.
void check_same_on_all_ranks(Communicator& comm, const std::string& digest, const std::string& what);

}  // namespace lockstep::distributed
