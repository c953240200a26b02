#include "distributed/communicator.h"

#include <algorithm>
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

int64_t all_sum_int64(Communicator& comm, int64_t value) {
  std::vector<int64_t> all(static_cast<size_t>(comm.size()));
  comm.all_gather(&value, sizeof value, all.data());
  int64_t total = 0;
  for (int64_t v : all) total += v;
  return total;
}

Tensor all_gather_rows(Communicator& comm, const BatchTree& tree, const Tensor& local_in) {
  LS_CHECK_ARG(tree.world() == comm.size(), "all_gather_rows", "batch tree for ", tree.world(),
               " workers, communicator of ", comm.size());
  LS_CHECK_ARG(local_in.defined() && local_in.dim() >= 1 && local_in.dtype() == DType::f32 &&
                   local_in.device() == Device::cpu, "all_gather_rows", "expected a float32 CPU tensor with rows, got ",
               local_in.defined() ? local_in.str() : "undefined");
  const auto mine = tree.rows_of(comm.rank());
  LS_CHECK_ARG(local_in.size(0) == mine.second - mine.first, "all_gather_rows", "rank ", comm.rank(), " owns ",
               mine.second - mine.first, " rows, got ", local_in.size(0));
  Tensor local = local_in.contiguous();
  int64_t row = 1;  // floats per row
  for (int64_t d = 1; d < local.dim(); ++d) row *= local.size(d);
  int64_t widest = 0;
  for (int r = 0; r < comm.size(); ++r) widest = std::max(widest, tree.rows_of(r).second - tree.rows_of(r).first);
  const size_t slot = static_cast<size_t>(widest * row);
  std::vector<float> send(slot, 0.0f), all(slot * static_cast<size_t>(comm.size()));
  std::copy(local.data<float>(), local.data<float>() + local.numel(), send.begin());
  comm.all_gather(send.data(), slot * sizeof(float), all.data());
  Shape shape = local.shape();
  shape[0] = tree.rows();
  Tensor out = Tensor::empty(shape, DType::f32);
  for (int r = 0; r < comm.size(); ++r) {
    const auto [b, e] = tree.rows_of(r);
    const float* from = all.data() + slot * static_cast<size_t>(r);
    std::copy(from, from + (e - b) * row, out.data<float>() + b * row);
  }
  return out;
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
