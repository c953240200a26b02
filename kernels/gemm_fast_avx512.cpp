// Fast mode: Eigen's GEMM compiled for AVX-512 (this file gets -mavx512f -mavx512dq, so
// Eigen uses its 16-float packets and a 48 x 4 register tile), called by gemm_fast_cpu.cpp
// when ex.simd is avx512. Everything else is as in gemm_fast_avx2.cpp.
//
// Eigen is header-only, and a build of it for one ISA must never be merged by the linker
// with a build for another (the AVX2 one in gemm_fast_avx2.cpp, or baseline code):
// an inline function or template instantiation with the same mangled name is kept once,
// from whichever object the linker saw first. So this file renames Eigen's namespace,
// which gives every Eigen symbol here a name of its own (tests/isa_symbols.sh checks that
// no SIMD object defines a weak symbol another object could share).
#define Eigen lockstep_eigen_avx512
#define LOCKSTEP_GEMM_EIGEN
#include <Eigen/Core>

#include "kernels/gemm_internal.h"

namespace lockstep {
namespace gemm_detail {

void gemm_eigen_avx512(const GemmArgs& g, int threads) { eigen_gemm(g, threads); }

}  // namespace gemm_detail
}  // namespace lockstep
