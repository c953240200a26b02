// The unary loop of elementwise.h (elem::unary_map) compiled for AVX-512F (only when
// LOCKSTEP_HAVE_AVX512; called only when the kernel's Exec says ex.avx512()): 16 floats a
// vector and 32 registers, so the long ls_* chains (gelu's tanh, exp) no longer spill. As in
// elementwise_avx2.cpp every operation is a correctly rounded basic operation or an explicit
// fma, so a lane computes exactly what the portable build computes; the pragma (before any
// include) lets GCC vectorise the selects and changes no value.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math", "no-math-errno")
#endif

#include "kernels/elementwise.h"

namespace lockstep {

void unary_avx512(UnaryOp op, float* out, const float* x, int64_t n) { elem::unary_map(op, out, x, n); }
void unary_avx512(UnaryOp op, double* out, const double* x, int64_t n) { elem::unary_map(op, out, x, n); }

}  // namespace lockstep
