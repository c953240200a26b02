// Batched matrix products: matmul on operands of 3 or more dims (torch.matmul's batch
// broadcasting) and bmm. Every batch entry is one deterministic GEMM (kernels/gemm.h) in the
// canonical K order, so entry i's bits are those of the 2-D matmul of its two matrices:
//   C[i] = op(A[ia(i)]) op(B[ib(i)])     ia, ib: the broadcast maps of the batch dims
// Backward per entry, as the 2-D matmul: dA[i] = dC[i] op(B)^T (sequential order), dB[i] =
// op(A)^T dC[i] (batch order over M); an operand broadcast over some batch dims gets the
// sum of its entries' gradients by sum_to_shape (the batch order over the broadcast dims).
// [..., M, K] x [K, N] is one 2-D matmul of the rows ([... M] x K): row i of the result
// reads row i of a only (batch-invariant) and dB sums every row in the batch order.
// Entries run one after another (each GEMM split over threads by its output tiles), or,
// when there are at least as many entries as threads, spread over the threads whole: the
// bits are the same either way.
#include <algorithm>

#include "base/parallel.h"
#include "core/autograd.h"
#include "core/ops/dispatch.h"
#include "core/tensor.h"
#include "kernels/gemm.h"

namespace lockstep {
namespace {

struct Batched {
  int64_t M = 0, N = 0, K = 0;
  std::vector<int64_t> ia, ib;  // per output entry: the entry of a and of b
};

// out[i] = op(a[ia[i]]) op(b[ib[i]]), each M x N; a entries are M x K (K x M if ta), b K x N
// (N x K if tb). All contiguous.
Tensor run_batched(const char* op, const Tensor& a, const Tensor& b, bool ta, bool tb, const Batched& p,
                   const Shape& out_shape, KOrder order) {
  Tensor c = Tensor::empty(out_shape, a.dtype(), a.device());
  const int64_t n = static_cast<int64_t>(p.ia.size());
  if (c.numel() == 0) return c;
  dispatch_float(op, a.device(), a.dtype(), [&](auto on, auto t) {
    using T = decltype(t);
    const T* A = a.data<T>();
    const T* B = b.data<T>();
    T* C = c.data<T>();
    auto one = [&](int64_t i) {
      GemmArgsT<T> g;
      g.trans_a = ta, g.trans_b = tb, g.M = p.M, g.N = p.N, g.K = p.K;
      g.A = A + p.ia[i] * p.M * p.K, g.lda = ta ? p.M : p.K;
      g.B = B + p.ib[i] * p.K * p.N, g.ldb = tb ? p.K : p.N;
      g.C = C + i * p.M * p.N, g.ldc = p.N;
      g.order = order;
      if (on.exec.fast())
        LS_KERNEL(on, gemm_fast, g);
      else
        LS_KERNEL(on, gemm, g);
    };
    constexpr bool cpu = std::decay_t<decltype(on)>::device == Device::cpu;
    if (cpu && !on.exec.fast() && n >= num_threads())
      parallel_for(n, 1, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) one(i);
      });
    else
      for (int64_t i = 0; i < n; ++i) one(i);
  });
  return c;
}

Shape batch_shape(const Tensor& t) { return Shape(t.shape().begin(), t.shape().end() - 2); }

// The broadcast batch shape, and each output entry's entry in a and in b.
Shape broadcast_batch(const char* op, const Shape& sa, const Shape& sb, std::vector<int64_t>& ia,
                      std::vector<int64_t>& ib) {
  const size_t nd = std::max(sa.size(), sb.size());
  Shape pa(nd, 1), pb(nd, 1), so(nd);
  std::copy(sa.begin(), sa.end(), pa.begin() + (nd - sa.size()));
  std::copy(sb.begin(), sb.end(), pb.begin() + (nd - sb.size()));
  for (size_t d = 0; d < nd; ++d) {
    LS_CHECK_ARG(pa[d] == pb[d] || pa[d] == 1 || pb[d] == 1, op, "batch dims ", shape_str(sa), " and ",
                 shape_str(sb), " do not broadcast");
    so[d] = pa[d] == 1 ? pb[d] : pa[d];
  }
  const int64_t total = shape_numel(so);
  ia.assign(static_cast<size_t>(total), 0);
  ib.assign(static_cast<size_t>(total), 0);
  for (int64_t i = 0; i < total; ++i) {
    int64_t rem = i, ka = 0, kb = 0, sta = 1, stb = 1;
    for (size_t d = nd; d-- > 0;) {
      const int64_t c = rem % so[d];
      rem /= so[d];
      if (pa[d] != 1) ka += c * sta;
      if (pb[d] != 1) kb += c * stb;
      sta *= pa[d];
      stb *= pb[d];
    }
    ia[static_cast<size_t>(i)] = ka;
    ib[static_cast<size_t>(i)] = kb;
  }
  return so;
}

Shape cat(Shape s, std::initializer_list<int64_t> tail) {
  s.insert(s.end(), tail.begin(), tail.end());
  return s;
}

std::vector<int64_t> iota(int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = i;
  return v;
}

}  // namespace

// matmul for operands of which at least one has more than 2 dims (core/ops/matmul.cpp
// sends them here).
Tensor matmul_batched(const Tensor& a_in, const Tensor& b_in, bool ta, bool tb) {
  const char* op = "matmul";
  LS_CHECK_ARG(a_in.dim() >= 2 && b_in.dim() >= 2, op, "expected operands of at least 2 dims, got a ",
               shape_str(a_in.shape()), " and b ", shape_str(b_in.shape()));
  const int64_t M = ta ? a_in.size(-1) : a_in.size(-2), K = ta ? a_in.size(-2) : a_in.size(-1);
  const int64_t Kb = tb ? b_in.size(-1) : b_in.size(-2), N = tb ? b_in.size(-2) : b_in.size(-1);
  LS_CHECK_ARG(K == Kb, op, "a is ", shape_str(a_in.shape()), ta ? " (transposed)" : "", ", b is ",
               shape_str(b_in.shape()), tb ? " (transposed)" : "", ": inner dimensions differ (", K, " vs ", Kb,
               ")");
  // [..., M, K] x [K, N]: one 2-D product over all the rows.
  if (b_in.dim() == 2 && !ta) {
    Tensor y = matmul(a_in.reshape({-1, K}), b_in, false, tb);
    return y.reshape(cat(batch_shape(a_in), {M, N}));
  }
  Batched p;
  p.M = M, p.N = N, p.K = K;
  const Shape sa = batch_shape(a_in), sb = batch_shape(b_in);
  const Shape so = broadcast_batch(op, sa, sb, p.ia, p.ib);
  const Tensor a = a_in.contiguous().detach(), b = b_in.contiguous().detach();
  Tensor c = run_batched(op, a, b, ta, tb, p, cat(so, {M, N}), KOrder::sequential);
  if (should_record({&a_in, &b_in})) {
    const bool need_da = a_in.requires_grad(), need_db = b_in.requires_grad();
    record(c, op, {a_in, b_in}, [=](const Tensor& g_in) {
      const Tensor g = g_in.contiguous();
      const int64_t n = shape_numel(so);
      Tensor da, db;
      if (need_da) {  // per entry: ta ? op(B) dC^T : dC op(B)^T, the 2-D matmul's formulas
        Batched q;
        q.ia = ta ? p.ib : iota(n), q.ib = ta ? iota(n) : p.ib;
        q.M = ta ? K : M, q.N = ta ? M : K, q.K = N;
        Tensor full = ta ? run_batched(op, b, g, tb, true, q, cat(so, {K, M}), KOrder::sequential)
                         : run_batched(op, g, b, false, !tb, q, cat(so, {M, K}), KOrder::sequential);
        da = sum_to_shape(full, a.shape());
      }
      if (need_db) {  // per entry: tb ? dC^T op(A) : op(A)^T dC, summed over M in the batch order
        Batched q;
        q.ia = tb ? iota(n) : p.ia, q.ib = tb ? p.ia : iota(n);
        q.M = tb ? N : K, q.N = tb ? K : N, q.K = M;
        Tensor full = tb ? run_batched(op, g, a, true, ta, q, cat(so, {N, K}), KOrder::batch_chunked)
                         : run_batched(op, a, g, !ta, false, q, cat(so, {K, N}), KOrder::batch_chunked);
        db = sum_to_shape(full, b.shape());
      }
      return std::vector<Tensor>{da, db};
    });
  }
  return c;
}

Tensor bmm(const Tensor& a, const Tensor& b) {
  LS_CHECK_ARG(a.defined() && b.defined() && a.dim() == 3 && b.dim() == 3 && a.size(0) == b.size(0), "bmm",
               "expected a: B x M x K and b: B x K x N with the same B, got a ",
               a.defined() ? shape_str(a.shape()) : "undefined", " and b ",
               b.defined() ? shape_str(b.shape()) : "undefined");
  return matmul(a, b);
}

}  // namespace lockstep
