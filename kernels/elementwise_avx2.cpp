// The unary and axpy loops of elementwise.h compiled for AVX2+FMA (only when
// LOCKSTEP_HAVE_AVX2; called only when the kernel's Exec says ex.avx2()). Nothing here is new: the loops are
// elem::unary_map and elem::axpy_run, which GCC vectorises in this translation unit. The
// ls_* functions are chains of fma and basic operations, each correctly rounded, so a
// vector lane computes exactly what the portable build computes.
//
// GCC 12 vectorises the ls_* selects (x > -104 ? x : -104, x != x ? nan : y) only if it
// may assume FP operations do not trap, and sqrt only without errno. Neither option
// changes a result (IEEE "non-stop" arithmetic gives the same values; only the sticky
// exception flags and errno, which lockstep never reads, may differ), so this file turns
// them on for itself. It must come before any include so every inlined function shares it.
#pragma GCC optimize("no-trapping-math", "no-math-errno")

#include "kernels/elementwise.h"

namespace lockstep {

void unary_avx2(UnaryOp op, float* out, const float* x, int64_t n) { elem::unary_map(op, out, x, n); }
void unary_avx2(UnaryOp op, double* out, const double* x, int64_t n) { elem::unary_map(op, out, x, n); }

void axpy_run_avx2(float* out, float alpha, const float* x, const float* y, int64_t n, bool x_moves, bool y_moves) {
  if (x_moves && y_moves) elem::axpy_run<true, true>(out, alpha, x, y, n);
  else if (x_moves) elem::axpy_run<true, false>(out, alpha, x, y, n);
  else if (y_moves) elem::axpy_run<false, true>(out, alpha, x, y, n);
  else elem::axpy_run<false, false>(out, alpha, x, y, n);
}

void axpy_run_avx2(double* out, double alpha, const double* x, const double* y, int64_t n, bool x_moves,
                   bool y_moves) {
  if (x_moves && y_moves) elem::axpy_run<true, true>(out, alpha, x, y, n);
  else if (x_moves) elem::axpy_run<true, false>(out, alpha, x, y, n);
  else if (y_moves) elem::axpy_run<false, true>(out, alpha, x, y, n);
  else elem::axpy_run<false, false>(out, alpha, x, y, n);
}

}  // namespace lockstep
