// The gelu and silu loops of activation.h (kernels/activation_isa.h) compiled for AVX-512F (only when
// LOCKSTEP_HAVE_AVX512; called only when the kernel's Exec says ex.avx512()). The loops are
// the portable ones, as in activation_avx2.cpp: same bits, 16 lanes and no register spills.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math", "no-math-errno")
#endif

#include "kernels/activation_isa.h"

namespace lockstep {

LS_ACTIVATION_ISA_LOOPS(avx512, float)
LS_ACTIVATION_ISA_LOOPS(avx512, double)

}  // namespace lockstep
