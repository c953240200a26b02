// CPU elementwise kernels (kernels/elementwise.h). The box is walked as runs along its
// innermost dim; threads split the runs (or, for a 1-d box, the elements). Inside a run each
// input's pointer advances by 0 or 1, a template flag, so the common cases (same shape,
// scalar operand, row vector over rows) compile to plain loops the compiler vectorises.
// Vectorisation cannot change a result here: every element is its own computation. The
// per-element functions live in elementwise.h (namespace elem), shared with the AVX2 file.
#include "kernels/elementwise.h"

#include <algorithm>
#include <cmath>

#include "base/parallel.h"
#include "lockstep/config.h"

namespace lockstep {
namespace {

// Least elements per task. Handing a task to the pool costs ~5 us; a task should be worth
// several times that: ~0.1 ns per element for the cheap ops, ~0.5-1.2 ns for exp..gelu
// (AVX2 build; measured on the 2-core AMD EPYC dev box).
constexpr int64_t kEwGrain = 1 << 17;
constexpr int64_t kEwGrainMath = 1 << 15;

// Calls run(out_offset, in_offsets[3], len) for every run of the innermost dim.
template <typename RunFn>
void for_each_run(const Broadcast& bc, int64_t grain, const RunFn& run) {
  const int nd = bc.ndim;
  const int64_t inner = bc.shape[nd - 1];
  const int64_t total = bc.numel();
  if (total == 0) return;
  if (nd == 1) {
    parallel_for(inner, grain, [&](int64_t b, int64_t e) {
      const int64_t off[3] = {b * bc.stride[0][0], b * bc.stride[1][0], b * bc.stride[2][0]};
      run(b, off, e - b);
    });
    return;
  }
  const int64_t runs = total / inner;
  parallel_for(runs, std::max<int64_t>(1, grain / inner), [&](int64_t r0, int64_t r1) {
    // multi-index of run r0 over the outer dims 0 .. nd-2, and the inputs' offsets there
    int64_t idx[kMaxBroadcastDims];
    int64_t rem = r0;
    for (int d = nd - 2; d >= 0; --d) {
      idx[d] = rem % bc.shape[d];
      rem /= bc.shape[d];
    }
    int64_t off[3] = {0, 0, 0};
    for (int k = 0; k < 3; ++k)
      for (int d = 0; d < nd - 1; ++d) off[k] += idx[d] * bc.stride[k][d];
    for (int64_t r = r0; r < r1; ++r) {
      run(r * inner, off, inner);
      // odometer step to the next run
      for (int d = nd - 2; d >= 0; --d) {
        for (int k = 0; k < 3; ++k) off[k] += bc.stride[k][d];
        if (++idx[d] < bc.shape[d]) break;
        for (int k = 0; k < 3; ++k) off[k] -= bc.stride[k][d] * bc.shape[d];
        idx[d] = 0;
      }
    }
  });
}

template <bool A1, bool B1, typename TO, typename TA, typename TB, typename F>
void run2(TO* o, const TA* a, const TB* b, int64_t n, const F& f) {
  for (int64_t i = 0; i < n; ++i) o[i] = f(a[A1 ? i : 0], b[B1 ? i : 0]);
}

// out = f(a, b) over the box; a is input 0, b input 1.
template <typename TO, typename TA, typename TB, typename F>
void apply2(const Broadcast& bc, TO* out, const TA* a, const TB* b, const F& f) {
  const bool a1 = bc.stride[0][bc.ndim - 1] != 0, b1 = bc.stride[1][bc.ndim - 1] != 0;
  for_each_run(bc, kEwGrain, [&](int64_t o, const int64_t* off, int64_t n) {
    TO* po = out + o;
    const TA* pa = a + off[0];
    const TB* pb = b + off[1];
    if (a1 && b1) run2<true, true>(po, pa, pb, n, f);
    else if (a1) run2<true, false>(po, pa, pb, n, f);
    else if (b1) run2<false, true>(po, pa, pb, n, f);
    else run2<false, false>(po, pa, pb, n, f);
  });
}

template <bool C1, bool A1, bool B1, typename T>
void run_where(T* o, const uint8_t* c, const T* a, const T* b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) o[i] = c[C1 ? i : 0] ? a[A1 ? i : 0] : b[B1 ? i : 0];
}

template <typename T>
void where_impl(T* out, const uint8_t* cond, const T* a, const T* b, const Broadcast& bc) {
  const int last = bc.ndim - 1;
  const int mask = (bc.stride[2][last] != 0) << 2 | (bc.stride[0][last] != 0) << 1 | (bc.stride[1][last] != 0);
  for_each_run(bc, kEwGrain, [&](int64_t o, const int64_t* off, int64_t n) {
    T* po = out + o;
    const T *pa = a + off[0], *pb = b + off[1];
    const uint8_t* pc = cond + off[2];
    switch (mask) {
      case 7: return run_where<true, true, true>(po, pc, pa, pb, n);
      case 6: return run_where<true, true, false>(po, pc, pa, pb, n);
      case 5: return run_where<true, false, true>(po, pc, pa, pb, n);
      case 4: return run_where<true, false, false>(po, pc, pa, pb, n);
      case 3: return run_where<false, true, true>(po, pc, pa, pb, n);
      case 2: return run_where<false, true, false>(po, pc, pa, pb, n);
      case 1: return run_where<false, false, true>(po, pc, pa, pb, n);
      default: return run_where<false, false, false>(po, pc, pa, pb, n);
    }
  });
}

template <typename T>
void binary_impl(BinaryOp op, T* out, const T* a, const T* b, const Broadcast& bc) {
  switch (op) {
    case BinaryOp::add: return apply2(bc, out, a, b, [](T x, T y) { return x + y; });
    case BinaryOp::sub: return apply2(bc, out, a, b, [](T x, T y) { return x - y; });
    case BinaryOp::mul: return apply2(bc, out, a, b, [](T x, T y) { return x * y; });
    case BinaryOp::div: return apply2(bc, out, a, b, [](T x, T y) { return x / y; });
    case BinaryOp::maximum: return apply2(bc, out, a, b, [](T x, T y) { return (x > y || x != x) ? x : y; });
    case BinaryOp::minimum: return apply2(bc, out, a, b, [](T x, T y) { return (x < y || x != x) ? x : y; });
  }
}

// A 1-d box of n elements where input 0 advances and input 1 stays put.
Broadcast scalar_box(int64_t n) {
  Broadcast bc;
  bc.shape[0] = n;
  bc.stride[0][0] = 1;
  return bc;
}

template <typename T>
void compare_impl(CompareOp op, uint8_t* out, const T* a, const T* b, const Broadcast& bc) {
  using u8 = uint8_t;
  switch (op) {
    case CompareOp::gt: return apply2(bc, out, a, b, [](T x, T y) { return static_cast<u8>(x > y); });
    case CompareOp::lt: return apply2(bc, out, a, b, [](T x, T y) { return static_cast<u8>(x < y); });
    case CompareOp::ge: return apply2(bc, out, a, b, [](T x, T y) { return static_cast<u8>(x >= y); });
    case CompareOp::le: return apply2(bc, out, a, b, [](T x, T y) { return static_cast<u8>(x <= y); });
    case CompareOp::eq: return apply2(bc, out, a, b, [](T x, T y) { return static_cast<u8>(x == y); });
    case CompareOp::ne: return apply2(bc, out, a, b, [](T x, T y) { return static_cast<u8>(x != y); });
  }
}

// The unary loop over [0, n) on this thread: AVX-512, AVX2 or portable build (same bits).
template <typename T>
void unary_run(const Exec& ex, UnaryOp op, T* out, const T* x, int64_t n) {
#if LOCKSTEP_HAVE_AVX512
  if (ex.avx512()) return unary_avx512(op, out, x, n);
#endif
#if LOCKSTEP_HAVE_AVX2
  if (ex.avx2()) return unary_avx2(op, out, x, n);
#endif
  (void)ex;
  elem::unary_map(op, out, x, n);
}

template <typename T>
void unary_impl(const Exec& ex, UnaryOp op, T* out, const T* x, int64_t n) {
  const bool cheap = op == UnaryOp::neg || op == UnaryOp::abs || op == UnaryOp::relu;
  parallel_for(n, cheap ? kEwGrain : kEwGrainMath, [&](int64_t b, int64_t e) { unary_run(ex, op, out + b, x + b, e - b); });
}

template <typename T>
void axpy_impl(const Exec& ex, T* out, T alpha, const T* x, const T* y, const Broadcast& bc) {
  const bool x1 = bc.stride[0][bc.ndim - 1] != 0, y1 = bc.stride[1][bc.ndim - 1] != 0;
  const bool simd = ex.avx2();
  for_each_run(bc, kEwGrain, [&](int64_t o, const int64_t* off, int64_t n) {
    T* po = out + o;
    const T *px = x + off[0], *py = y + off[1];
#if LOCKSTEP_HAVE_AVX2
    if (simd) return axpy_run_avx2(po, alpha, px, py, n, x1, y1);
#endif
    if (x1 && y1) elem::axpy_run<true, true>(po, alpha, px, py, n);
    else if (x1) elem::axpy_run<true, false>(po, alpha, px, py, n);
    else if (y1) elem::axpy_run<false, true>(po, alpha, px, py, n);
    else elem::axpy_run<false, false>(po, alpha, px, py, n);
  });
  (void)simd;
}

}  // namespace

const char* binary_op_name(BinaryOp op) {
  static const char* const names[] = {"add", "sub", "mul", "div", "maximum", "minimum"};
  return names[static_cast<int>(op)];
}
const char* compare_op_name(CompareOp op) {
  static const char* const names[] = {"gt", "lt", "ge", "le", "eq", "ne"};
  return names[static_cast<int>(op)];
}
const char* unary_op_name(UnaryOp op) {
  static const char* const names[] = {"neg", "abs", "sqrt", "relu", "exp", "log", "tanh", "sigmoid", "gelu", "silu"};
  return names[static_cast<int>(op)];
}

Broadcast make_broadcast(const int64_t* out_shape, int out_ndim, const int64_t* const* in_shapes,
                         const int* in_ndims, int nin) {
  Broadcast bc;
  bc.ndim = 0;
  for (int d = 0; d < out_ndim; ++d) {
    if (out_shape[d] == 0) {  // empty: nothing to visit
      bc = Broadcast();
      bc.shape[0] = 0;
      return bc;
    }
  }
  for (int d = 0; d < out_ndim; ++d) {
    if (out_shape[d] == 1) continue;  // size-1 dims never move a pointer
    // each input's contiguous stride for this output dim, 0 where it is broadcast
    int64_t st[3] = {0, 0, 0};
    for (int k = 0; k < nin; ++k) {
      const int id = d - (out_ndim - in_ndims[k]);
      if (id < 0 || in_shapes[k][id] == 1) continue;
      int64_t s = 1;
      for (int j = id + 1; j < in_ndims[k]; ++j) s *= in_shapes[k][j];
      st[k] = s;
    }
    // merge into the previous kept dim when every input continues it linearly
    bool merge = bc.ndim > 0;
    for (int k = 0; k < 3 && merge; ++k) merge = bc.stride[k][bc.ndim - 1] == st[k] * out_shape[d];
    if (merge) {
      bc.shape[bc.ndim - 1] *= out_shape[d];
    } else {
      bc.shape[bc.ndim] = out_shape[d];
      ++bc.ndim;
    }
    for (int k = 0; k < 3; ++k) bc.stride[k][bc.ndim - 1] = st[k];
  }
  if (bc.ndim == 0) {  // a single element
    bc.ndim = 1;
    bc.shape[0] = 1;
    for (int k = 0; k < 3; ++k) bc.stride[k][0] = 0;
  }
  return bc;
}

template <typename T>
void binary_cpu(const Exec&, BinaryOp op, T* out, const T* a, const T* b, const Broadcast& bc) {
  binary_impl(op, out, a, b, bc);
}
template <typename T>
void binary_scalar_cpu(const Exec&, BinaryOp op, T* out, const T* a, T s, int64_t n) {
  binary_impl(op, out, a, &s, scalar_box(n));
}
template <typename T>
void compare_cpu(const Exec&, CompareOp op, uint8_t* out, const T* a, const T* b, const Broadcast& bc) {
  compare_impl(op, out, a, b, bc);
}
template <typename T>
void where_cpu(const Exec&, T* out, const uint8_t* cond, const T* a, const T* b, const Broadcast& bc) {
  where_impl(out, cond, a, b, bc);
}
template <typename T>
void axpy_cpu(const Exec& ex, T* out, T alpha, const T* x, const T* y, const Broadcast& bc) {
  axpy_impl(ex, out, alpha, x, y, bc);
}
template <typename T>
void unary_cpu(const Exec& ex, UnaryOp op, T* out, const T* x, int64_t n) {
  unary_impl(ex, op, out, x, n);
}
template <typename T>
void unary_serial_cpu(const Exec& ex, UnaryOp op, T* out, const T* x, int64_t n) {
  unary_run(ex, op, out, x, n);
}

// float and double for every kernel; comparisons also on int64, where() on int64 and uint8.
#define LS_ELEMENTWISE_FLOAT(T)                                                                  \
  template void binary_cpu<T>(const Exec&, BinaryOp, T*, const T*, const T*, const Broadcast&); \
  template void binary_scalar_cpu<T>(const Exec&, BinaryOp, T*, const T*, T, int64_t);          \
  template void axpy_cpu<T>(const Exec&, T*, T, const T*, const T*, const Broadcast&);          \
  template void unary_cpu<T>(const Exec&, UnaryOp, T*, const T*, int64_t);                      \
  template void unary_serial_cpu<T>(const Exec&, UnaryOp, T*, const T*, int64_t);
#define LS_ELEMENTWISE_COMPARE(T) \
  template void compare_cpu<T>(const Exec&, CompareOp, uint8_t*, const T*, const T*, const Broadcast&);
#define LS_ELEMENTWISE_WHERE(T) \
  template void where_cpu<T>(const Exec&, T*, const uint8_t*, const T*, const T*, const Broadcast&);
LS_ELEMENTWISE_FLOAT(float)
LS_ELEMENTWISE_FLOAT(double)
LS_ELEMENTWISE_COMPARE(float)
LS_ELEMENTWISE_COMPARE(double)
LS_ELEMENTWISE_COMPARE(int64_t)
LS_ELEMENTWISE_WHERE(float)
LS_ELEMENTWISE_WHERE(double)
LS_ELEMENTWISE_WHERE(int64_t)
LS_ELEMENTWISE_WHERE(uint8_t)
#undef LS_ELEMENTWISE_FLOAT
#undef LS_ELEMENTWISE_COMPARE
#undef LS_ELEMENTWISE_WHERE

}  // namespace lockstep
