// Fast mode: Eigen's GEMM compiled for AVX2+FMA (this file gets -mavx2 -mfma), called by
// gemm_fast_cpu.cpp when ex.simd is avx2 (or avx512 where the AVX-512 build cannot
// take the shape). Eigen cuts K into its own blocks and splits the output over OpenMP
// threads; its rounding order is Eigen's, not the canonical one.
//
// Eigen is header-only, and a build of it for one ISA must never be merged by the linker
// with a build for another (the AVX-512 one in gemm_fast_avx512.cpp, or baseline code):
// an inline function or template instantiation with the same mangled name is kept once,
// from whichever object the linker saw first. So this file renames Eigen's namespace,
// which gives every Eigen symbol here a name of its own (tests/isa_symbols.sh checks that
// no SIMD object defines a weak symbol another object could share).
#define Eigen lockstep_eigen_avx2
#define LOCKSTEP_GEMM_EIGEN
#include <Eigen/Core>

#include "kernels/gemm_internal.h"

namespace lockstep {
namespace gemm_detail {

void gemm_eigen_avx2(const GemmArgs& g, int threads) { eigen_gemm(g, threads); }

}  // namespace gemm_detail
}  // namespace lockstep
