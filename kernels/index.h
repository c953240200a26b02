// Indexing along one dim: index_select / embedding (a gather of rows) and gather (one index
// per element), and their transposes index_add / scatter_add, which sum many sources into
// one destination: the scatter-style accumulation behind embedding's backward.
//
// Layout: every tensor is row-major and contiguous, seen as outer x n x inner around the
// indexed dim (n = that dim's size); ids are int64 in [0, n) (the op front end checks the
// range and names the op, the id and the range; the kernels assert nothing).
//   index_select  x: outer x n x inner, idx: m ids       -> out: outer x m x inner,
//                 out[o, i, :] = x[o, idx[i], :]            (embedding: outer = 1, x = weight)
//   index_add     src: outer x m x inner, idx: m ids      -> out: outer x n x inner,
//                 out[o, v, :] = base[o, v, :] + S[o, v, :], S[o, v, :] = the sum of src[o, i, :]
//                 over the i with idx[i] == v
//   gather        x: outer x n x inner, index: outer x m x inner -> out: outer x m x inner,
//                 out[o, j, c] = x[o, index[o, j, c], c]
//   scatter_add   src, index: outer x m x inner           -> out: outer x n x inner,
//                 out[o, v, c] = base[o, v, c] + the sum of src[o, j, c] over the j with
//                 index[o, j, c] == v
// A destination no source names is copied from base unchanged (+0 when base is null).
//
// The order of every sum S (deterministic mode): the *batch order* of kernels/reduce_order.h
// over the source positions i (or j): the sources of destination v are taken in increasing
// i; they are cut into the chunks of kBatchChunk positions that hold them (chunk k = the
// positions [32k, 32k + 32)); each chunk's sources are added in increasing i from +0.0
// (acc = acc + src); the chunk partials are combined by tree_sum over ALL chunks of the m
// positions, an empty chunk counting as +0.0. An empty chunk is an exact identity (a chunk
// partial is never -0.0: it starts at +0.0, and x + y rounds to -0.0 only when both are
// -0.0), so the CPU evaluates the tree sparsely (only the chunks that hold sources,
// siblings merged level by level, a lone node carried up) and the CUDA kernel densely, with
// the same bits. Then out = base + S, one rounding. So S is the batch-order column sum of
// the one-hot scatter of src: it does not depend on the thread count, on the SIMD level,
// on how the ids are distributed or sorted, or on the device; a batch split across
// data-parallel workers at chunk boundaries gives tree nodes that combine to the same bits.
//
// Work split: CPU: a stable counting sort of the positions by id (so each destination's
// sources are in increasing i), then threads split the destinations (o, v) — whole outputs,
// never a sum. CUDA (index_cuda.cu): one thread per destination element (o, v, c), which
// scans the m ids in order, keeps the current chunk's partial and pushes each chunk's
// partial (+0.0 for an empty one) on a TreeStack: O(n m inner) work, meant for vocabularies
// of hundreds to a few thousand rows.
// Fast mode (what it gives up): CPU index_add / scatter_add add every source straight into
// its destination in increasing i on one thread (one running sum per destination: another
// order, repeatable); CUDA uses one float atomicAdd per source element (completion order:
// the bits change from run to run, as PyTorch's CUDA embedding backward and index_add_).
// index_select and gather copy bits: exact in both modes.
// CUDA: the same signatures with device pointers (ids on the device too).
#pragma once
#include <cstdint>

#include "base/exec.h"

namespace lockstep {

// T: float or double (index_select and gather also int64).
template <typename T>
void index_select_cpu(const Exec& ex, T* out, const T* x, const int64_t* idx, int64_t outer, int64_t n, int64_t m,
                      int64_t inner);
// out (outer x n x inner) = base + S; base may be null (S alone) or equal to out (in place).
template <typename T>
void index_add_cpu(const Exec& ex, T* out, const T* base, const T* src, const int64_t* idx, int64_t outer, int64_t n,
                   int64_t m, int64_t inner);
template <typename T>
void gather_cpu(const Exec& ex, T* out, const T* x, const int64_t* index, int64_t outer, int64_t n, int64_t m,
                int64_t inner);
template <typename T>
void scatter_add_cpu(const Exec& ex, T* out, const T* base, const T* src, const int64_t* index, int64_t outer,
                     int64_t n, int64_t m, int64_t inner);

// Reference for the tests: S for one destination from its sources' values in increasing
// position order, as the dense tree over all chunks (reduce_order.h's tree_sum_inplace).
// pos[k] is the position of value vals[k]; m the number of positions.
double index_sum_ref_f64(const double* vals, const int64_t* pos, int64_t count, int64_t m);
float index_sum_ref(const float* vals, const int64_t* pos, int64_t count, int64_t m);

template <typename T>
void index_select_cuda(const Exec& ex, T* out, const T* x, const int64_t* idx, int64_t outer, int64_t n, int64_t m,
                       int64_t inner);
template <typename T>
void index_add_cuda(const Exec& ex, T* out, const T* base, const T* src, const int64_t* idx, int64_t outer,
                    int64_t n, int64_t m, int64_t inner);
template <typename T>
void gather_cuda(const Exec& ex, T* out, const T* x, const int64_t* index, int64_t outer, int64_t n, int64_t m,
                 int64_t inner);
template <typename T>
void scatter_add_cuda(const Exec& ex, T* out, const T* base, const T* src, const int64_t* index, int64_t outer,
                      int64_t n, int64_t m, int64_t inner);

}  // namespace lockstep
