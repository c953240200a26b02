// Fast mode: Eigen's GEMM compiled for AVX2+FMA (this file gets -mavx2 -mfma), called by
// gemm_fast_cpu.cpp only when simd_enabled(). Eigen cuts K into its own blocks and splits
// the output over OpenMP threads; its rounding order is Eigen's, not the canonical one.
//
// This is the library's only build of Eigen's GEMM when AVX2 is built. Its index type is
// set to long long (the default is std::ptrdiff_t, i.e. long), so Eigen's kernels get
// mangled names of their own: another file's Eigen product built for the baseline ISA
// cannot be merged with these by the linker (nor these with it).
#define EIGEN_DEFAULT_DENSE_INDEX_TYPE long long
#define LOCKSTEP_GEMM_EIGEN
#include <Eigen/Core>

#include "kernels/gemm_internal.h"

namespace lockstep {
namespace gemm_detail {

void gemm_eigen_avx2(const GemmArgs& g, int threads) { eigen_gemm(g, threads); }

}  // namespace gemm_detail
}  // namespace lockstep
