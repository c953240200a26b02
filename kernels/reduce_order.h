// The canonical reduction orders of lockstep (docs/determinism.md). Every deterministic
// kernel, CPU or CUDA, sums floats in one of these orders, which depend on shapes only.
//
// 1. Contiguous order (a row, or a whole tensor, of n elements):
//    blocks of kReduceBlock elements; inside a block element i goes to lane i % kReduceLanes;
//    each lane adds its elements in increasing i starting from +0.0f; the 32 lanes are then
//    folded by halving: lane[j] += lane[j + s] for j < s, s = 16, 8, 4, 2, 1; lane[0] is the
//    block partial. Block partials are combined by tree_sum below.
// 2. Batch order (a reduction over the rows of a batch: bias and weight gradients, column
//    sums, BatchNorm statistics, the mean loss):
//    rows are cut into chunks of kBatchChunk rows (the last may be shorter); each chunk is
//    summed row by row in increasing order from +0.0f (a product term is one fma);
//    chunk partials are combined by tree_sum. Data-parallel workers split a batch at chunk
//    boundaries and reproduce the single-process bits.
// 3. tree_sum(p, n): adjacent pairs are added level by level, an odd last element is carried
//    up unchanged:  level 1: p0+p1, p2+p3, ...; level 2: (p0+p1)+(p2+p3), ...; until one is left.
//    The same tree is produced incrementally by TreeStack (a binary counter), which needs
//    only O(log n) partials in memory.
#pragma once
#include <cstdint>

namespace lockstep {

inline constexpr int64_t kReduceBlock = 4096;
inline constexpr int kReduceLanes = 32;
inline constexpr int64_t kBatchChunk = 32;

// Combines p[0..n) by the canonical pairwise tree, in place (p is clobbered). n >= 1.
template <typename T>
T tree_sum_inplace(T* p, int64_t n) {
  while (n > 1) {
    int64_t half = n / 2;
    for (int64_t i = 0; i < half; ++i) p[i] = p[2 * i] + p[2 * i + 1];
    if (n & 1) p[half] = p[n - 1];
    n = half + (n & 1);
  }
  return p[0];
}

// Incremental form of the same tree for vectors of `width` partials at once: push the
// chunk partials in order, then finish(). Equal bit for bit to tree_sum over each lane.
// Storage: the caller provides (max_levels + 1) * width floats, max_levels >= ceil(log2(n)).
template <typename T>
class TreeStack {
 public:
  TreeStack(T* storage, int64_t width) : buf_(storage), width_(width) {}

  // Slot to write the next chunk partial into; call push() after filling it.
  T* next() { return buf_ + depth_ * width_; }

  // Adds the partial written at next(): merges equal-sized subtrees like a binary counter.
  void push() {
    ++depth_;
    ++count_;
    // sizes of the subtrees on the stack are the binary digits of count_
    int64_t c = count_;
    while ((c & 1) == 0) {
      T* a = buf_ + (depth_ - 2) * width_;
      T* b = buf_ + (depth_ - 1) * width_;
      for (int64_t j = 0; j < width_; ++j) a[j] = a[j] + b[j];
      --depth_;
      c >>= 1;
    }
  }

  // Folds what is left from the right: the result lands in storage[0 .. width).
  T* finish() {
    for (; depth_ > 1; --depth_) {
      T* a = buf_ + (depth_ - 2) * width_;
      T* b = buf_ + (depth_ - 1) * width_;
      for (int64_t j = 0; j < width_; ++j) a[j] = a[j] + b[j];
    }
    return buf_;
  }

  int64_t count() const { return count_; }

 private:
  T* buf_;
  int64_t width_;
  int64_t depth_ = 0;
  int64_t count_ = 0;
};

}  // namespace lockstep
