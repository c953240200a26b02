// CPU reductions (kernels/reduce.h). The deterministic kernels parallelise only over work
// whose result does not depend on who computes it: whole rows, whole 4096-element blocks,
// whole column tiles or whole kBatchChunk-row chunks. Partials are then combined in index
// order by the pairwise tree of reduce_order.h, on one thread.
#include "kernels/reduce.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <vector>

#include "base/parallel.h"
#include "kernels/reduce_order.h"
#include "lockstep/config.h"

namespace lockstep {
namespace {

// Least work per task: handing a task to the pool costs ~5 us, and 128K floats take ~20 us
// at memory speed.
constexpr int64_t kReduceGrainElems = 1 << 17;
constexpr int64_t kBlocksPerTask = kReduceGrainElems / kReduceBlock;
constexpr int64_t kColTile = 256;       // columns per batch-order task: 1 KB of each row
constexpr int kMaxTreeLevels = 64;      // a TreeStack never holds more partials than this

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// ---- contiguous order ----

// One block (len <= kReduceBlock): element i goes to lane i % 32; lanes start at +0 and add
// in increasing i; then lane[j] += lane[j + s] for s = 16, 8, 4, 2, 1. Each lane is an
// independent chain, so the compiler may vectorise the lane loop without changing a bit.
template <typename T>
T block_partial_scalar(const T* x, int64_t len) {
  T lane[kReduceLanes];
  for (int l = 0; l < kReduceLanes; ++l) lane[l] = T(0);
  const int64_t full = len - len % kReduceLanes;
  for (int64_t i = 0; i < full; i += kReduceLanes)
    for (int l = 0; l < kReduceLanes; ++l) lane[l] += x[i + l];
  for (int64_t i = full; i < len; ++i) lane[i - full] += x[i];
  for (int s = kReduceLanes / 2; s >= 1; s /= 2)
    for (int j = 0; j < s; ++j) lane[j] += lane[j + s];
  return lane[0];
}

template <typename T>
using BlockFn = T (*)(const T*, int64_t);

// The block kernel for this call; read once so a kernel never mixes the paths.
BlockFn<float> block_kernel_for(const Exec& ex, const float*) {
#if LOCKSTEP_HAVE_AVX2
  if (ex.avx2()) return sum_block_avx2;
#endif
#if LOCKSTEP_HAVE_NEON
  if (ex.neon()) return sum_block_neon;
#endif
  (void)ex;
  return block_partial_scalar<float>;
}
BlockFn<double> block_kernel_for(const Exec&, const double*) { return block_partial_scalar<double>; }

// A row on the calling thread: block partials pushed onto a width-1 TreeStack, which
// builds the canonical tree without storing all partials.
template <typename T>
T sum_serial_with(BlockFn<T> block, const T* x, int64_t n) {
  if (n <= kReduceBlock) return block(x, n);
  T slots[kMaxTreeLevels + 1];
  TreeStack<T> stack(slots, 1);
  for (int64_t b = 0; b < n; b += kReduceBlock) {
    *stack.next() = block(x + b, std::min(kReduceBlock, n - b));
    stack.push();
  }
  return *stack.finish();
}

template <typename T>
void sum_rows_impl(const Exec& ex, T* out, const T* x, int64_t rows, int64_t cols) {
  if (rows <= 0) return;
  const BlockFn<T> block = block_kernel_for(ex, x);
  const int64_t nb = ceil_div(cols, kReduceBlock);
  if (nb <= 1 || rows >= num_threads()) {
    // enough rows to go round: each thread sums whole rows
    const int64_t grain = std::max<int64_t>(1, kReduceGrainElems / std::max<int64_t>(cols, 1));
    parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) out[r] = sum_serial_with(block, x + r * cols, cols);
    });
    return;
  }
  // a few long rows: every block partial of every row in parallel, then each row's tree
  std::vector<T> part(static_cast<size_t>(rows * nb));
  parallel_for(rows * nb, kBlocksPerTask, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t r = i / nb, start = (i % nb) * kReduceBlock;
      part[i] = block(x + r * cols + start, std::min(kReduceBlock, cols - start));
    }
  });
  for (int64_t r = 0; r < rows; ++r) out[r] = tree_sum_inplace(part.data() + r * nb, nb);
}

template <typename T>
T sum_ref_impl(const T* x, int64_t n) {
  if (n == 0) return T(0);
  std::vector<T> part;
  for (int64_t b = 0; b < n; b += kReduceBlock) {
    T lane[kReduceLanes] = {};
    for (int64_t i = b; i < std::min(n, b + kReduceBlock); ++i) lane[(i - b) % kReduceLanes] += x[i];
    for (int s = kReduceLanes / 2; s >= 1; s /= 2)
      for (int j = 0; j < s; ++j) lane[j] = lane[j] + lane[j + s];
    part.push_back(lane[0]);
  }
  return tree_sum_inplace(part.data(), static_cast<int64_t>(part.size()));
}

// ---- batch order ----

// Columns [c0, c1) of one d x inner slice: each chunk of kBatchChunk rows is summed row by
// row into a fresh TreeStack slot (+0 first), and the stack merges the chunk partials into
// the canonical tree. stack holds (kMaxTreeLevels + 1) * (c1 - c0) elements.
template <typename T>
void sum_cols_tile(T* out, const T* x, int64_t d, int64_t inner, int64_t c0, int64_t c1,
                   bool accumulate, T* stack_mem) {
  const int64_t w = c1 - c0;
  TreeStack<T> stack(stack_mem, w);
  for (int64_t k0 = 0; k0 < d; k0 += kBatchChunk) {
    T* __restrict acc = stack.next();
    for (int64_t j = 0; j < w; ++j) acc[j] = T(0);
    const int64_t k1 = std::min(d, k0 + kBatchChunk);
    for (int64_t k = k0; k < k1; ++k) {
      const T* __restrict row = x + k * inner + c0;
      for (int64_t j = 0; j < w; ++j) acc[j] += row[j];
    }
    stack.push();
  }
  const T* total = d > 0 ? stack.finish() : nullptr;
  for (int64_t j = 0; j < w; ++j) {
    const T s = total ? total[j] : T(0);
    out[c0 + j] = accumulate ? out[c0 + j] + s : s;
  }
}

// tree_sum_inplace applied to every column in [c0, c1) of the n x stride matrix p.
template <typename T>
void tree_sum_columns(T* p, int64_t n, int64_t stride, int64_t c0, int64_t c1) {
  while (n > 1) {
    const int64_t half = n / 2;
    for (int64_t i = 0; i < half; ++i) {
      T* dst = p + i * stride;
      const T* a = p + 2 * i * stride;
      const T* b = a + stride;
      for (int64_t j = c0; j < c1; ++j) dst[j] = a[j] + b[j];
    }
    if (n & 1)
      for (int64_t j = c0; j < c1; ++j) p[half * stride + j] = p[(n - 1) * stride + j];
    n = half + (n & 1);
  }
}

template <typename T>
void sum_mid_impl(T* out, const T* x, int64_t outer, int64_t d, int64_t inner, bool accumulate) {
  if (outer <= 0 || inner <= 0) return;
  const int64_t ntiles = ceil_div(inner, kColTile);
  const int64_t nchunks = ceil_div(d, kBatchChunk);
  const int64_t tiles = outer * ntiles;
  if (tiles >= num_threads() || nchunks < 4) {
    // enough column tiles to go round: each task owns whole output columns
    const int64_t w = std::min(inner, kColTile);
    const int64_t grain = std::max<int64_t>(1, kReduceGrainElems / std::max<int64_t>(d * w, 1));
    parallel_for(tiles, grain, [&](int64_t i0, int64_t i1) {
      std::vector<T> stack_mem(static_cast<size_t>((kMaxTreeLevels + 1) * w));
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t o = i / ntiles, c0 = (i % ntiles) * kColTile;
        sum_cols_tile(out + o * inner, x + o * d * inner, d, inner, c0,
                      std::min(inner, c0 + kColTile), accumulate, stack_mem.data());
      }
    });
    return;
  }
  // narrow and tall: chunk partials in parallel, then the same tree per column
  std::vector<T> part(static_cast<size_t>(outer * nchunks * inner));
  const int64_t grain = std::max<int64_t>(1, kReduceGrainElems / (kBatchChunk * inner));
  parallel_for(outer * nchunks, grain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t o = i / nchunks, k0 = (i % nchunks) * kBatchChunk;
      const int64_t k1 = std::min(d, k0 + kBatchChunk);
      T* __restrict acc = part.data() + i * inner;
      for (int64_t j = 0; j < inner; ++j) acc[j] = T(0);
      for (int64_t k = k0; k < k1; ++k) {
        const T* __restrict row = x + (o * d + k) * inner;
        for (int64_t j = 0; j < inner; ++j) acc[j] += row[j];
      }
    }
  });
  parallel_for(tiles, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t o = i / ntiles, c0 = (i % ntiles) * kColTile;
      const int64_t c1 = std::min(inner, c0 + kColTile);
      T* p = part.data() + o * nchunks * inner;
      tree_sum_columns(p, nchunks, inner, c0, c1);
      for (int64_t j = c0; j < c1; ++j)
        out[o * inner + j] = accumulate ? out[o * inner + j] + p[j] : p[j];
    }
  });
}

// ---- max / argmax ----

// For each of the inner columns of one d x inner slice: the index of the first NaN if there
// is one, else of the first maximum. Running state per column: best value and its index;
// a NaN best is final. Walking k in the outer loop keeps the reads contiguous.
template <typename T>
void argmax_slice(T* val, int64_t* idx, const T* x, int64_t d, int64_t inner, int64_t c0, int64_t c1) {
  for (int64_t j = c0; j < c1; ++j) {
    val[j] = x[j];
    idx[j] = 0;
  }
  for (int64_t k = 1; k < d; ++k) {
    const T* row = x + k * inner;
    for (int64_t j = c0; j < c1; ++j) {
      const T v = row[j], b = val[j];
      const bool take = b == b && (v > b || v != v);  // b == b: b is not NaN
      val[j] = take ? v : b;
      idx[j] = take ? k : idx[j];
    }
  }
}

// The same for one contiguous row (inner == 1), stopping at the first NaN.
template <typename T>
int64_t argmax_row(const T* x, int64_t d) {
  if (x[0] != x[0]) return 0;
  int64_t best = 0;
  T b = x[0];
  for (int64_t k = 1; k < d; ++k) {
    const T v = x[k];
    if (v != v) return k;
    if (v > b) {
      b = v;
      best = k;
    }
  }
  return best;
}

// Writes max values (val) and/or indices (idx); either may be null.
template <typename T>
void max_impl(T* val, int64_t* idx, const T* x, int64_t outer, int64_t d, int64_t inner) {
  if (outer <= 0 || inner <= 0 || d <= 0) return;
  if (inner == 1) {
    const int64_t grain = std::max<int64_t>(1, kReduceGrainElems / d);
    parallel_for(outer, grain, [&](int64_t o0, int64_t o1) {
      for (int64_t o = o0; o < o1; ++o) {
        const int64_t k = argmax_row(x + o * d, d);
        if (val) val[o] = x[o * d + k];
        if (idx) idx[o] = k;
      }
    });
    return;
  }
  const int64_t ntiles = ceil_div(inner, kColTile);
  const int64_t grain = std::max<int64_t>(1, kReduceGrainElems / (d * std::min(inner, kColTile)));
  parallel_for(outer * ntiles, grain, [&](int64_t i0, int64_t i1) {
    std::vector<T> v(static_cast<size_t>(inner));
    std::vector<int64_t> k(static_cast<size_t>(inner));
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t o = i / ntiles, c0 = (i % ntiles) * kColTile;
      const int64_t c1 = std::min(inner, c0 + kColTile);
      argmax_slice(v.data(), k.data(), x + o * d * inner, d, inner, c0, c1);
      for (int64_t j = c0; j < c1; ++j) {
        if (val) val[o * inner + j] = v[j];
        if (idx) idx[o * inner + j] = k[j];
      }
    }
  });
}

// ---- fast mode ----

// 16 interleaved accumulators, added up left to right, then the tail: the usual unrolled
// loop of a fast sum (a different order from the canonical one).
template <typename T>
T piece_sum_fast(const T* x, int64_t n) {
  T acc[16];
  for (auto& a : acc) a = T(0);
  const int64_t full = n - n % 16;
  for (int64_t i = 0; i < full; i += 16)
    for (int l = 0; l < 16; ++l) acc[l] += x[i + l];
  T s = T(0);
  for (int l = 0; l < 16; ++l) s += acc[l];
  for (int64_t i = full; i < n; ++i) s += x[i];
  return s;
}

// A row on one thread: piece sums added in sequence.
template <typename T>
T row_sum_fast(const T* x, int64_t n) {
  T s = T(0);
  for (int64_t b = 0; b < n; b += kFastPiece) s += piece_sum_fast(x + b, std::min(kFastPiece, n - b));
  return s;
}

// Runs body(item, partial) for items [0, n) grabbed one at a time by all threads; each
// thread accumulates into its own partial (width elements from +0), and the partials are
// added into out (width elements, zeroed first) under a mutex in the order threads finish.
// Which items a thread gets depends on timing, so the rounding does too.
template <typename T, typename F>
void dynamic_sum(T* out, int64_t width, int64_t n, const F& body) {
  for (int64_t j = 0; j < width; ++j) out[j] = T(0);
  std::atomic<int64_t> next{0};
  std::mutex mu;
  const int tasks = static_cast<int>(std::min<int64_t>(num_threads(), n));
  parallel_run(tasks, [&](int) {
    std::vector<T> partial(static_cast<size_t>(width), T(0));
    for (int64_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < n;) body(i, partial.data());
    std::lock_guard<std::mutex> lock(mu);
    for (int64_t j = 0; j < width; ++j) out[j] += partial[j];
  });
}

template <typename T>
void sum_rows_fast_impl(T* out, const T* x, int64_t rows, int64_t cols) {
  if (rows <= 0) return;
  const int64_t pieces = ceil_div(cols, kFastPiece);
  if (pieces <= 1 || rows >= num_threads()) {
    // many rows: each row on one thread (row groups handed out dynamically)
    const int64_t group = std::max<int64_t>(1, kFastPiece / std::max<int64_t>(cols, 1));
    std::atomic<int64_t> next{0};
    const int64_t groups = ceil_div(rows, group);
    parallel_run(static_cast<int>(std::min<int64_t>(num_threads(), groups)), [&](int) {
      for (int64_t g; (g = next.fetch_add(1, std::memory_order_relaxed)) < groups;)
        for (int64_t r = g * group; r < std::min(rows, (g + 1) * group); ++r) out[r] = row_sum_fast(x + r * cols, cols);
    });
    return;
  }
  // a few long rows: pieces of all rows shared out dynamically, per-thread row partials
  dynamic_sum(out, rows, rows * pieces, [&](int64_t i, T* partial) {
    const int64_t r = i / pieces, b = (i % pieces) * kFastPiece;
    partial[r] += piece_sum_fast(x + r * cols + b, std::min(kFastPiece, cols - b));
  });
}

// Items are groups of rows of one outer slice; a thread adds its rows, in order, into its
// own outer x inner partial.
template <typename T>
void sum_mid_fast_impl(T* out, const T* x, int64_t outer, int64_t d, int64_t inner) {
  if (outer <= 0 || inner <= 0) return;
  const int64_t group = std::clamp<int64_t>(kFastPiece / inner, 1, std::max<int64_t>(d, 1));
  const int64_t groups = ceil_div(d, group);
  dynamic_sum(out, outer * inner, outer * groups, [&](int64_t i, T* partial) {
    const int64_t o = i / groups, k0 = (i % groups) * group;
    T* acc = partial + o * inner;
    for (int64_t k = k0; k < std::min(d, k0 + group); ++k) {
      const T* row = x + (o * d + k) * inner;
      for (int64_t j = 0; j < inner; ++j) acc[j] += row[j];
    }
  });
}

}  // namespace

template <typename T>
void sum_cpu(const Exec& ex, T* out, const T* x, int64_t n) {
  sum_rows_impl(ex, out, x, 1, n);
}
template <typename T>
void sum_rows_cpu(const Exec& ex, T* out, const T* x, int64_t rows, int64_t cols) {
  sum_rows_impl(ex, out, x, rows, cols);
}
template <typename T>
T sum_serial_cpu(const Exec& ex, const T* x, int64_t n) {
  return sum_serial_with(block_kernel_for(ex, x), x, n);
}
template <typename T>
T sum_cpu_ref(const T* x, int64_t n) {
  return sum_ref_impl(x, n);
}

// The batch order has no SIMD path: the compiler vectorises the column loops as written.
template <typename T>
void sum_cols_cpu(const Exec&, T* out, const T* x, int64_t rows, int64_t cols, bool accumulate) {
  sum_mid_impl(out, x, 1, rows, cols, accumulate);
}
template <typename T>
void sum_mid_cpu(const Exec&, T* out, const T* x, int64_t outer, int64_t d, int64_t inner) {
  sum_mid_impl(out, x, outer, d, inner, false);
}

void sum_cols_cpu_ref(float* out, const float* x, int64_t rows, int64_t cols) {
  const int64_t nchunks = ceil_div(rows, kBatchChunk);
  std::vector<float> part(static_cast<size_t>(std::max<int64_t>(nchunks, 1)));
  for (int64_t j = 0; j < cols; ++j) {
    if (nchunks == 0) {
      out[j] = 0.0f;
      continue;
    }
    for (int64_t c = 0; c < nchunks; ++c) {
      float acc = 0.0f;
      for (int64_t r = c * kBatchChunk; r < std::min(rows, (c + 1) * kBatchChunk); ++r)
        acc += x[r * cols + j];
      part[c] = acc;
    }
    out[j] = tree_sum_inplace(part.data(), nchunks);
  }
}

template <typename T>
void max_cpu(const Exec&, T* out, const T* x, int64_t outer, int64_t d, int64_t inner) {
  max_impl<T>(out, nullptr, x, outer, d, inner);
}
template <typename T>
void argmax_cpu(const Exec&, int64_t* out, const T* x, int64_t outer, int64_t d, int64_t inner) {
  max_impl<T>(nullptr, out, x, outer, d, inner);
}
template <typename T>
int64_t argmax_serial_cpu(const T* x, int64_t n) {
  return argmax_row(x, n);
}

template <typename T>
void sum_fast_cpu(const Exec&, T* out, const T* x, int64_t n) {
  sum_rows_fast_impl(out, x, 1, n);
}
template <typename T>
void sum_rows_fast_cpu(const Exec&, T* out, const T* x, int64_t rows, int64_t cols) {
  sum_rows_fast_impl(out, x, rows, cols);
}
template <typename T>
void sum_mid_fast_cpu(const Exec&, T* out, const T* x, int64_t outer, int64_t d, int64_t inner) {
  sum_mid_fast_impl(out, x, outer, d, inner);
}

// float and double of every kernel above.
#define LS_REDUCE_CPU(T)                                                                    \
  template void sum_cpu<T>(const Exec&, T*, const T*, int64_t);                             \
  template void sum_rows_cpu<T>(const Exec&, T*, const T*, int64_t, int64_t);               \
  template T sum_serial_cpu<T>(const Exec&, const T*, int64_t);                             \
  template T sum_cpu_ref<T>(const T*, int64_t);                                             \
  template void sum_cols_cpu<T>(const Exec&, T*, const T*, int64_t, int64_t, bool);         \
  template void sum_mid_cpu<T>(const Exec&, T*, const T*, int64_t, int64_t, int64_t);       \
  template void max_cpu<T>(const Exec&, T*, const T*, int64_t, int64_t, int64_t);           \
  template void argmax_cpu<T>(const Exec&, int64_t*, const T*, int64_t, int64_t, int64_t);  \
  template int64_t argmax_serial_cpu<T>(const T*, int64_t);                                 \
  template void sum_fast_cpu<T>(const Exec&, T*, const T*, int64_t);                        \
  template void sum_rows_fast_cpu<T>(const Exec&, T*, const T*, int64_t, int64_t);          \
  template void sum_mid_fast_cpu<T>(const Exec&, T*, const T*, int64_t, int64_t, int64_t);
LS_REDUCE_CPU(float)
LS_REDUCE_CPU(double)
#undef LS_REDUCE_CPU

}  // namespace lockstep
