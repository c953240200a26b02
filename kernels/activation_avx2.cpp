// The gelu and silu backward loops of activation.h compiled for AVX2+FMA (only when
// LOCKSTEP_HAVE_AVX2; called only when the kernel's Exec says ex.avx2()). The loops are
// the portable ones (act::gelu_grad, act::silu_grad, base/math.h's ls_tanhf/ls_sigmoidf),
// which GCC vectorises in this translation unit: every operation is a correctly rounded
// basic operation or an explicit fma, so a vector lane computes exactly what the portable
// build computes (tests/kernels/test_activation.cpp, "AVX2 and portable").
//
// As in elementwise_avx2.cpp: the selects of the ls_* functions vectorise only if FP
// operations may be assumed not to trap; that changes no value, only exception flags,
// which lockstep never reads. It must come before any include.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math", "no-math-errno")
#endif

#include "kernels/activation_isa.h"

namespace lockstep {

// Plain overloads, not template instantiations: those would be weak symbols that the
// linker could share with the portable build (tests/isa_symbols.sh).
LS_ACTIVATION_ISA_LOOPS(avx2, float)
LS_ACTIVATION_ISA_LOOPS(avx2, double)

}  // namespace lockstep
