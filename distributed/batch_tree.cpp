#include "distributed/batch_tree.h"

#include <algorithm>

#include "base/error.h"
#include "kernels/reduce_order.h"

namespace lockstep::distributed {

BatchTree::Node BatchTree::make_node(int level, int64_t index) const {
  // A node whose right child is empty is its left child carried up: use the lowest form.
  while (level > 0 && ((2 * index + 1) << (level - 1)) >= chunks_) --level, index *= 2;
  const int64_t begin = index << level;
  return Node{level, index, begin, std::min<int64_t>((index + 1) << level, chunks_)};
}

BatchTree::BatchTree(int64_t rows, int world) : rows_(rows), chunks_((rows + kBatchChunk - 1) / kBatchChunk) {
  LS_CHECK_ARG(rows >= 1 && world >= 1, "BatchTree", "expected rows >= 1 and world >= 1, got ", rows, " rows and ",
               world, " workers");
  int root = 0;
  while ((int64_t{1} << root) < chunks_) ++root;
  nodes_.push_back(make_node(root, 0));
  while (static_cast<int>(nodes_.size()) < std::min<int64_t>(world, chunks_)) {
    size_t widest = 0;
    for (size_t i = 1; i < nodes_.size(); ++i)
      if (nodes_[i].end - nodes_[i].begin > nodes_[widest].end - nodes_[widest].begin) widest = i;
    const Node n = nodes_[widest];  // has >= 2 chunks, so level >= 1 and both children exist
    nodes_[widest] = make_node(n.level - 1, 2 * n.index);
    nodes_.insert(nodes_.begin() + static_cast<std::ptrdiff_t>(widest) + 1, make_node(n.level - 1, 2 * n.index + 1));
  }
  // More workers than chunks: the rest own empty nodes, which no tree node matches.
  while (static_cast<int>(nodes_.size()) < world) nodes_.push_back(Node{-1, 0, chunks_, chunks_});
}

std::pair<int64_t, int64_t> BatchTree::rows_of(int r) const {
  LS_CHECK_ARG(r >= 0 && r < world(), "BatchTree", "rank ", r, " is outside a world of ", world());
  return {std::min(rows_, nodes_[r].begin * kBatchChunk), std::min(rows_, nodes_[r].end * kBatchChunk)};
}

// out[0, len) = columns [j0, j0 + len) of the tree node (level, index): a worker's node when
// one covers exactly its chunks, else left + right (or left alone when the right child is
// empty), as tree_sum adds. gathered holds worker r's node at gathered[r * stride + j].
void BatchTree::eval(int level, int64_t index, const float* gathered, int64_t stride, int64_t j0, int64_t len,
                     float* out, std::vector<std::vector<float>>& scratch) const {
  const Node n = make_node(level, index);
  for (size_t r = 0; r < nodes_.size(); ++r) {
    if (nodes_[r].begin == n.begin && nodes_[r].end == n.end) {
      const float* from = gathered + static_cast<int64_t>(r) * stride + j0;
      std::copy(from, from + len, out);
      return;
    }
  }
  // Not owned: n covers several workers' nodes, so it has two children.
  std::vector<float>& right = scratch[static_cast<size_t>(n.level)];
  right.resize(static_cast<size_t>(len));
  eval(n.level - 1, 2 * n.index, gathered, stride, j0, len, out, scratch);
  eval(n.level - 1, 2 * n.index + 1, gathered, stride, j0, len, right.data(), scratch);
  for (int64_t j = 0; j < len; ++j) out[j] = out[j] + right[static_cast<size_t>(j)];
}

void BatchTree::combine(const float* gathered, int64_t width, float* out) const {
  // Column blocks small enough that the partial sums of one block stay in cache while the
  // tree is walked: each element still gets exactly the additions above, in the same order.
  constexpr int64_t kBlock = 2048;
  std::vector<std::vector<float>> scratch(64);  // scratch[L]: the right child at level L
  int top = 0;
  while ((int64_t{1} << top) < chunks_) ++top;
  for (int64_t j0 = 0; j0 < width; j0 += kBlock)
    eval(top, 0, gathered, width, j0, std::min(kBlock, width - j0), out + j0, scratch);
}

}  // namespace lockstep::distributed
