// CPU indexing kernels (kernels/index.h): copies for index_select / gather; for index_add /
// scatter_add a stable counting sort of the source positions by destination, then threads
// split the destinations and each sums its sources in the batch order (sparse tree).
#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <vector>

#include "base/parallel.h"
#include "kernels/index.h"
#include "kernels/reduce_order.h"

namespace lockstep {
namespace {

constexpr int64_t kIndexGrainElems = 1 << 15;  // copied or summed elements per task

// Stable counting sort: the positions of each id, in increasing position. start has n + 1
// entries; the positions of id v are order[start[v] .. start[v + 1]). ids are read with
// stride `stride` (scatter_add's index fibres).
void bucket(std::vector<int64_t>& start, std::vector<int64_t>& order, const int64_t* ids, int64_t m, int64_t stride,
            int64_t n) {
  start.assign(static_cast<size_t>(n + 1), 0);
  order.resize(static_cast<size_t>(m));
  for (int64_t i = 0; i < m; ++i) ++start[static_cast<size_t>(ids[i * stride] + 1)];
  for (int64_t v = 0; v < n; ++v) start[v + 1] += start[v];
  std::vector<int64_t> next(start.begin(), start.end() - 1);
  for (int64_t i = 0; i < m; ++i) order[static_cast<size_t>(next[static_cast<size_t>(ids[i * stride])]++)] = i;
}

// S over the sources at positions pos[0 .. count) (increasing) of one destination, width
// values each: row(i) points at source i's first value, `step` apart. Result in acc[0 ..
// width). The batch order of index.h: chunk partials from +0, then the sparse tree.
template <typename T, typename Row>
void segment_sum(T* acc, int64_t width, int64_t step, const int64_t* pos, int64_t count, const Row& row,
                 std::vector<T>& parts, std::vector<int64_t>& node) {
  parts.clear();
  node.clear();
  for (int64_t k = 0; k < count; ++k) {
    const int64_t chunk = pos[k] / kBatchChunk;
    if (node.empty() || node.back() != chunk) {
      node.push_back(chunk);
      parts.resize(parts.size() + static_cast<size_t>(width), T(0));
    }
    T* p = parts.data() + (node.size() - 1) * static_cast<size_t>(width);
    const T* s = row(pos[k]);
    for (int64_t j = 0; j < width; ++j) p[j] = p[j] + s[j * step];
  }
  // Level by level: node c goes to c / 2; two siblings merge (left + right), a lone one is
  // carried up unchanged, as tree_sum does with the empty chunks counted as +0.
  size_t live = node.size();
  while (live > 1) {
    size_t out = 0;
    for (size_t k = 0; k < live; ++k) {
      T* dst = parts.data() + out * static_cast<size_t>(width);
      const T* a = parts.data() + k * static_cast<size_t>(width);
      if (k + 1 < live && node[k + 1] == (node[k] | 1) && (node[k] & 1) == 0) {
        const T* b = a + width;
        for (int64_t j = 0; j < width; ++j) dst[j] = a[j] + b[j];
        node[out] = node[k] >> 1;
        ++k;
      } else {
        if (dst != a) std::memmove(dst, a, static_cast<size_t>(width) * sizeof(T));
        node[out] = node[k] >> 1;
      }
      ++out;
    }
    live = out;
  }
  if (live == 0)
    std::fill(acc, acc + width, T(0));
  else
    std::copy(parts.data(), parts.data() + width, acc);
}

template <typename T>
void index_add_det(T* out, const T* base, const T* src, const int64_t* idx, int64_t outer, int64_t n, int64_t m,
                   int64_t inner) {
  std::vector<int64_t> start, order;
  bucket(start, order, idx, m, 1, n);
  const int64_t grain = std::max<int64_t>(1, kIndexGrainElems / std::max<int64_t>(1, inner * std::max<int64_t>(1, m / n)));
  parallel_for(outer * n, grain, [&](int64_t d0, int64_t d1) {
    std::vector<T> parts, acc(static_cast<size_t>(inner));
    std::vector<int64_t> node;
    for (int64_t d = d0; d < d1; ++d) {
      const int64_t o = d / n, v = d % n;
      T* y = out + d * inner;
      const T* b = base ? base + d * inner : nullptr;
      const int64_t cnt = start[v + 1] - start[v];
      if (cnt == 0) {
        if (b && b != y) std::copy(b, b + inner, y);
        if (!b) std::fill(y, y + inner, T(0));
        continue;
      }
      const T* so = src + o * m * inner;
      segment_sum(acc.data(), inner, 1, order.data() + start[v], cnt, [&](int64_t i) { return so + i * inner; }, parts,
                  node);
      for (int64_t j = 0; j < inner; ++j) y[j] = b ? b[j] + acc[j] : acc[j];
    }
  });
}

template <typename T>
void scatter_add_det(T* out, const T* base, const T* src, const int64_t* index, int64_t outer, int64_t n, int64_t m,
                     int64_t inner) {
  // Threads split the fibres (o, c); each fibre sorts its m positions by destination.
  parallel_for(outer * inner, std::max<int64_t>(1, kIndexGrainElems / std::max<int64_t>(1, m + n)),
               [&](int64_t f0, int64_t f1) {
                 std::vector<int64_t> start, order, node;
                 std::vector<T> parts;
                 for (int64_t f = f0; f < f1; ++f) {
                   const int64_t o = f / inner, c = f % inner;
                   const int64_t* ids = index + o * m * inner + c;
                   const T* s = src + o * m * inner + c;
                   bucket(start, order, ids, m, inner, n);
                   for (int64_t v = 0; v < n; ++v) {
                     const int64_t e = (o * n + v) * inner + c;
                     const int64_t cnt = start[v + 1] - start[v];
                     T acc = T(0);
                     if (cnt > 0)
                       segment_sum(&acc, 1, 1, order.data() + start[v], cnt, [&](int64_t j) { return s + j * inner; },
                                   parts, node);
                     out[e] = base ? (cnt > 0 ? base[e] + acc : base[e]) : acc;
                   }
                 }
               });
}

}  // namespace

template <typename T>
void index_select_cpu(const Exec&, T* out, const T* x, const int64_t* idx, int64_t outer, int64_t n, int64_t m,
                      int64_t inner) {
  parallel_for(outer * m, std::max<int64_t>(1, kIndexGrainElems / std::max<int64_t>(1, inner)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t o = r / m, i = r % m;
      std::memcpy(out + r * inner, x + (o * n + idx[i]) * inner, static_cast<size_t>(inner) * sizeof(T));
    }
  });
}

// Fast mode: groups of kFastGroup source positions are handed out to the threads as they
// ask; each thread adds its sources, in arrival order, into its own zeroed copy of the
// output, and the copies are added into the result under a mutex in the order the threads
// finish (the CPU's stand-in for atomics: the bits depend on the thread count and on timing).
constexpr int64_t kFastGroup = 64;

template <typename T>
void index_add_fast(T* out, const T* base, const T* src, const int64_t* idx, int64_t outer, int64_t n, int64_t m,
                    int64_t inner) {
  const int64_t total = outer * n * inner;
  std::vector<T> acc(static_cast<size_t>(total), T(0));
  std::atomic<int64_t> next{0};
  std::mutex mu;
  const int64_t groups = (m + kFastGroup - 1) / kFastGroup;
  parallel_run(static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(num_threads(), groups))), [&](int) {
    std::vector<T> mine(static_cast<size_t>(total), T(0));
    for (int64_t g; (g = next.fetch_add(1, std::memory_order_relaxed)) < groups;)
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = g * kFastGroup; i < std::min(m, (g + 1) * kFastGroup); ++i) {
          T* y = mine.data() + (o * n + idx[i]) * inner;
          const T* s = src + (o * m + i) * inner;
          for (int64_t j = 0; j < inner; ++j) y[j] = y[j] + s[j];
        }
    std::lock_guard<std::mutex> lock(mu);
    for (int64_t e = 0; e < total; ++e) acc[e] = acc[e] + mine[e];
  });
  for (int64_t e = 0; e < total; ++e) out[e] = base ? base[e] + acc[e] : acc[e];
}

template <typename T>
void index_add_cpu(const Exec& ex, T* out, const T* base, const T* src, const int64_t* idx, int64_t outer, int64_t n,
                   int64_t m, int64_t inner) {
  if (ex.fast()) return index_add_fast(out, base, src, idx, outer, n, m, inner);
  index_add_det(out, base, src, idx, outer, n, m, inner);
}

template <typename T>
void gather_cpu(const Exec&, T* out, const T* x, const int64_t* index, int64_t outer, int64_t n, int64_t m,
                int64_t inner) {
  parallel_for(outer * m, std::max<int64_t>(1, kIndexGrainElems / std::max<int64_t>(1, inner)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t o = r / m;
      for (int64_t c = 0; c < inner; ++c) out[r * inner + c] = x[(o * n + index[r * inner + c]) * inner + c];
    }
  });
}

template <typename T>
void scatter_add_cpu(const Exec& ex, T* out, const T* base, const T* src, const int64_t* index, int64_t outer,
                     int64_t n, int64_t m, int64_t inner) {
  if (!ex.fast()) return scatter_add_det(out, base, src, index, outer, n, m, inner);
  const int64_t total = outer * n * inner;
  if (!base)
    std::fill(out, out + total, T(0));
  else if (base != out)
    std::copy(base, base + total, out);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < m; ++j)
      for (int64_t c = 0; c < inner; ++c) {
        const int64_t s = (o * m + j) * inner + c;
        T& y = out[(o * n + index[s]) * inner + c];
        y = y + src[s];
      }
}

namespace {
template <typename T>
T sum_ref(const T* vals, const int64_t* pos, int64_t count, int64_t m) {
  const int64_t chunks = std::max<int64_t>(1, (m + kBatchChunk - 1) / kBatchChunk);
  std::vector<T> p(static_cast<size_t>(chunks), T(0));
  for (int64_t k = 0; k < count; ++k) p[pos[k] / kBatchChunk] = p[pos[k] / kBatchChunk] + vals[k];
  return tree_sum_inplace(p.data(), chunks);
}
}  // namespace

double index_sum_ref_f64(const double* vals, const int64_t* pos, int64_t count, int64_t m) {
  return sum_ref(vals, pos, count, m);
}
float index_sum_ref(const float* vals, const int64_t* pos, int64_t count, int64_t m) {
  return sum_ref(vals, pos, count, m);
}

#define LS_INDEX_COPY(T)                                                                                           \
  template void index_select_cpu<T>(const Exec&, T*, const T*, const int64_t*, int64_t, int64_t, int64_t, int64_t); \
  template void gather_cpu<T>(const Exec&, T*, const T*, const int64_t*, int64_t, int64_t, int64_t, int64_t);
#define LS_INDEX_ADD(T)                                                                                         \
  template void index_add_cpu<T>(const Exec&, T*, const T*, const T*, const int64_t*, int64_t, int64_t, int64_t, \
                                 int64_t);                                                                       \
  template void scatter_add_cpu<T>(const Exec&, T*, const T*, const T*, const int64_t*, int64_t, int64_t, int64_t, \
                                   int64_t);
LS_INDEX_COPY(float)
LS_INDEX_COPY(double)
LS_INDEX_COPY(int64_t)
LS_INDEX_ADD(float)
LS_INDEX_ADD(double)
#undef LS_INDEX_COPY
#undef LS_INDEX_ADD

}  // namespace lockstep
