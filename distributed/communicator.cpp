#include "distributed/communicator.h"

#include <cstring>
#include <stdexcept>
#include <vector>

#include "base/error.h"
#include "kernels/reduce_order.h"

namespace lockstep::distributed {

void SingleCommunicator::broadcast(void*, size_t, int root) {
  LS_CHECK_ARG(root == 0, "broadcast", "root ", root, " is outside a world of 1");
}

void SingleCommunicator::all_gather(const void* send, size_t bytes, void* recv) {
  if (bytes > 0 && send != recv) std::memmove(recv, send, bytes);
}

void SingleCommunicator::abort(const std::string& message) {
  throw std::runtime_error("[dist] rank 0 aborted the job: " + message);
}

void broadcast_tensor(Communicator& comm, Tensor& t, int root) {
  LS_CHECK_ARG(t.defined() && t.is_contiguous() && t.device() == Device::cpu, "broadcast_tensor",
               "expected a contiguous CPU tensor, got ", t.defined() ? t.str() : "undefined");
  comm.broadcast(t.raw_data(), static_cast<size_t>(t.nbytes()), root);
}

void all_reduce_batch(Communicator& comm, const BatchTree& tree, float* data, int64_t n) {
  LS_CHECK_ARG(tree.world() == comm.size(), "all_reduce_batch", "batch tree for ", tree.world(),
               " workers, communicator of ", comm.size());
  std::vector<float> gathered(static_cast<size_t>(n) * static_cast<size_t>(comm.size()));
  comm.all_gather(data, static_cast<size_t>(n) * sizeof(float), gathered.data());
  tree.combine(gathered.data(), n, data);
}

void all_reduce_tree(Communicator& comm, float* data, int64_t n) {
  const int W = comm.size();
  std::vector<float> gathered(static_cast<size_t>(n) * static_cast<size_t>(W)), lane(static_cast<size_t>(W));
  comm.all_gather(data, static_cast<size_t>(n) * sizeof(float), gathered.data());
  for (int64_t j = 0; j < n; ++j) {
    for (int r = 0; r < W; ++r) lane[static_cast<size_t>(r)] = gathered[static_cast<size_t>(r * n + j)];
    data[j] = tree_sum_inplace(lane.data(), W);
  }
}

void check_same_on_all_ranks(Communicator& comm, const std::string& digest, const std::string& what) {
  const size_t k = digest.size();
  std::vector<char> all(k * static_cast<size_t>(comm.size()));
  comm.all_gather(digest.data(), k, all.data());
  for (int r = 1; r < comm.size(); ++r) {
    if (std::memcmp(all.data(), all.data() + k * static_cast<size_t>(r), k) != 0)
      throw std::runtime_error("[dist] rank " + std::to_string(comm.rank()) + ": " + what + " of rank " +
                               std::to_string(r) + " differs from rank 0's");
  }
}

}  // namespace lockstep::distributed
