// The activation loops that kernels/activation_avx2.cpp and activation_avx512.cpp compile for
// their instruction sets (activation.h declares them): the portable per-element formulas of
// activation.h over [0, n), which GCC vectorises with the including file's target flags.
// A macro, not templates: each file defines plain overloads under its own suffix, so no weak
// symbol is shared with the portable build (tests/isa_symbols.sh).
#pragma once
#include "kernels/activation.h"

#define LS_ACTIVATION_ISA_LOOPS(ISA, T)                                                        \
  void gelu_backward_##ISA(T* dx, const T* dy, const T* x, int64_t n) {                        \
    for (int64_t i = 0; i < n; ++i) dx[i] = act::gelu_grad(dy[i], x[i]);                      \
  }                                                                                            \
  void silu_backward_##ISA(T* dx, const T* dy, const T* x, int64_t n) {                        \
    for (int64_t i = 0; i < n; ++i) dx[i] = act::silu_grad(dy[i], x[i]);                       \
  }                                                                                            \
  void gelu_forward_keep_##ISA(T* y, T* t, const T* x, int64_t n) {                            \
    for (int64_t i = 0; i < n; ++i) {                                                          \
      const T ti = act::gelu_tanh(x[i]);                                                       \
      t[i] = ti;                                                                               \
      y[i] = act::gelu_from_t(x[i], ti);                                                       \
    }                                                                                          \
  }                                                                                            \
  void gelu_backward_kept_##ISA(T* dx, const T* dy, const T* x, const T* t, int64_t n) {       \
    for (int64_t i = 0; i < n; ++i) dx[i] = act::gelu_grad_t(dy[i], x[i], t[i]);               \
  }
