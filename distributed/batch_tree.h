// How a global batch is cut across data-parallel workers, and how their partial sums are put
// back together in exactly the single-process batch order (kernels/reduce_order.h).
//
// The batch order sums chunks of kBatchChunk rows and combines the n chunk partials by
// tree_sum. In that tree, node j of level L is the sum of chunks [j 2^L, min((j+1) 2^L, n)),
// and a kernel run on just those rows computes exactly that node (its local chunks start at
// the same boundaries and its odd-element carries fall at the same places). So:
//   - the batch's chunks are cut into `world` tree nodes, worker r owning the r-th (in
//     order): start from the root and split the node with the most chunks (the first on a
//     tie) into its two children until there are `world` nodes;
//   - each worker runs the ordinary kernels on its rows and gets its node;
//   - the nodes are all-gathered (in rank order) and every worker rebuilds the tree above
//     them with the same float additions tree_sum would make: the single-process bits.
// With world a power of two and n a multiple of world, every worker owns one node of level
// log2(n / world). Otherwise nodes of different levels mix (3 workers, 4 chunks: chunks
// {0}, {1}, {2, 3}); a worker never owns two nodes, so it makes one kernel call per sum.
// A batch with fewer chunks than workers (the short last batch of an epoch, a small batch
// over many ranks) gives workers 0 .. n-1 one chunk each and the others an EMPTY node: no
// rows, nothing they send counts in combine(), but they still take part in every
// collective, so every rank makes the same calls whatever the batch.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

namespace lockstep::distributed {

class BatchTree {
 public:
  // rows >= 1 rows over world >= 1 workers (any world: workers past the chunk count own no rows).
  BatchTree(int64_t rows, int world);

  int64_t rows() const { return rows_; }
  int world() const { return static_cast<int>(nodes_.size()); }
  int64_t chunks() const { return chunks_; }
  // Rows [first, second) of the global batch owned by worker r ({rows, rows} when empty).
  std::pair<int64_t, int64_t> rows_of(int r) const;
  bool empty(int r) const { return nodes_[r].begin == nodes_[r].end; }
  // Chunk range and level of worker r's node (an empty node: [chunks, chunks), level -1).
  std::pair<int64_t, int64_t> chunks_of(int r) const { return {nodes_[r].begin, nodes_[r].end}; }
  int level_of(int r) const { return nodes_[r].level; }

  // out[0, width) = the batch-order total, from gathered[r * width + j] = worker r's node
  // (what an empty node's worker sent is never read). Walked in column blocks of 2048 so the
  // partial sums stay in cache; every element gets the same additions either way.
  void combine(const float* gathered, int64_t width, float* out) const;

 private:
  struct Node {
    int level;
    int64_t index, begin, end;  // chunks [begin, end)
  };
  Node make_node(int level, int64_t index) const;
  void eval(int level, int64_t index, const float* gathered, int64_t stride, int64_t j0, int64_t len, float* out,
            std::vector<std::vector<float>>& scratch) const;

  int64_t rows_, chunks_;
  std::vector<Node> nodes_;  // in rank order
};

}  // namespace lockstep::distributed
