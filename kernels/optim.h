// Optimizer kernels: the SGD and Adam/AdamW updates, one elementwise pass over a parameter
// and its state, and the gradient-norm reductions of clip_grad_norm_.
//
// Layout: every array is contiguous with n elements; parameter, gradient and state share
// one element type T (float or double). Threads split the elements (parallel_for, static
// ranges) and an element's update reads and writes that element only, so the bits are the
// same for any thread count, with the AVX2 path on or off, and on CUDA once it is written.
//
// Scalars arrive as double, computed by the optimizer (optim/; base/optim_step.h) in double exactly as
// PyTorch computes its Python floats, and are rounded to T once at the top of the kernel,
// as PyTorch converts a Python scalar to the tensor's dtype. Each step below is one IEEE
// operation rounded to T; fma(a, b, c) = a*b + c rounded once, written out (the build uses
// -ffp-contract=off, so nothing else is fused). The order is that of PyTorch's CPU kernels
// on their vectorised path: add(x, alpha) is fma(x, alpha, self), lerp is one fma,
// addcmul is self + (value*t1)*t2, addcdiv is self + (value*t1)/t2 (docs/optim.md).
//
// SGD, lr, mu = momentum, tau = dampening, wd = weight_decay, b = momentum buffer:
//   if wd != 0:   g = fma(p, wd, g)                         grad.add(p, alpha=wd)
//   if mu != 0:   first step  b = g                         buf = grad.clone()
//                 later       b = fma(g, 1 - tau, b * mu)   buf.mul_(mu).add_(g, alpha=1-tau)
//                 nesterov    g = fma(b, mu, g), else g = b
//   p = fma(g, -lr, p)                                      p.add_(g, alpha=-lr)
//
// Adam / AdamW, w = 1 - beta1, t = the step number (1 on the first step):
//   AdamW:             p = p * (1 - lr*wd)                  p.mul_(1 - lr*wd)
//   Adam, wd != 0:     g = fma(p, wd, g)                    grad.add(p, alpha=wd)
//   m = |w| < 0.5 ? fma(w, g - m, m) : fma(w - 1, g - m, g) m.lerp_(g, w)
//   v = v * beta2 + ((1 - beta2) * g) * g                   v.mul_(beta2).addcmul_(g, g, 1-beta2)
//   amsgrad:           vmax = max(vmax, v), NaN propagates; vhat = vmax (else vhat = v)
//   denom = sqrt(vhat) / sqrt(1 - beta2^t) + eps            (v.sqrt() / bc2_sqrt).add_(eps)
//   p = p + ((-lr / (1 - beta1^t)) * m) / denom             p.addcdiv_(m, denom, -step_size)
// The scalars 1 - tau, 1 - lr*wd, w, 1 - beta2, lr / (1 - beta1^t) and sqrt(1 - beta2^t) are
// doubles (beta^t from optim_powi, base/optim_step.h), each rounded to T once; w - 1 is
// computed in T.
//
// Norms (norm_reduce_*): sum_squares = sum of x[i]*x[i] (each square rounded to T),
// sum_abs = sum of |x[i]|, both in the contiguous order of kernels/reduce_order.h, bit for
// bit sum_cpu over the transformed values; max_abs = max |x[i]|, exact, and the canonical
// NaN if any element is NaN. An empty array gives +0.
// CUDA (kernels/optim_cuda.cu): the same signatures with device pointers and the same bits
// in deterministic mode (docs/cuda.md gives the GPU work split of each kernel).
#pragma once
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "base/exec.h"
#include "base/optim_step.h"  // SgdStep, AdamStep, adam_step_args, NormKind, optim_powi

namespace lockstep {

// float and double. ex.simd picks the AVX2 loops (same bits at every level); the CUDA
// kernels read nothing from ex.
// param, grad: n elements; momentum_buffer: n, or null when s.momentum == 0.
template <typename T>
void sgd_step_cpu(const Exec& ex, T* param, T* momentum_buffer, const T* grad, int64_t n, const SgdStep& s);
// exp_avg, exp_avg_sq: n; max_exp_avg_sq: n, or null unless s.amsgrad.
template <typename T>
void adam_step_cpu(const Exec& ex, T* param, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq, const T* grad,
                   int64_t n, const AdamStep& s);
// *out = the reduction `kind` of x[0..n) (see the top of the file).
template <typename T> void norm_reduce_cpu(const Exec& ex, T* out, const T* x, int64_t n, NormKind kind);

// ---- AVX2 (kernels/optim_avx2.cpp; only with LOCKSTEP_HAVE_AVX2, only when ex.avx2()) ----
// The update loops of one thread's range, compiled for AVX2+FMA: the same operations.
void sgd_step_avx2(float* param, float* momentum_buffer, const float* grad, int64_t n, const SgdStep& s);
void sgd_step_avx2(double* param, double* momentum_buffer, const double* grad, int64_t n, const SgdStep& s);
void adam_step_avx2(float* param, float* exp_avg, float* exp_avg_sq, float* max_exp_avg_sq, const float* grad,
                    int64_t n, const AdamStep& s);
void adam_step_avx2(double* param, double* exp_avg, double* exp_avg_sq, double* max_exp_avg_sq,
                    const double* grad, int64_t n, const AdamStep& s);

// ---- CUDA: the same contracts with device pointers (kernels/optim_cuda.cu) ----
template <typename T>
void sgd_step_cuda(const Exec& ex, T* param, T* momentum_buffer, const T* grad, int64_t n, const SgdStep& s);
template <typename T>
void adam_step_cuda(const Exec& ex, T* param, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq, const T* grad,
                    int64_t n, const AdamStep& s);
template <typename T> void norm_reduce_cuda(const Exec& ex, T* out, const T* x, int64_t n, NormKind kind);

// ---- the update loops, shared by optim_cpu.cpp and optim_avx2.cpp ----
// static: each translation unit keeps its own copy compiled with its own flags. The
// options that change the operation sequence are template flags, so each loop body is
// straight-line code the compiler vectorises.
namespace optim_elem {

template <typename F>
static inline void with_flag(bool on, F&& f) {
  if (on) f(std::true_type());
  else f(std::false_type());
}

template <typename T>
struct SgdScalars {
  T neg_lr, momentum, one_minus_dampening, weight_decay;
  explicit SgdScalars(const SgdStep& s)
      : neg_lr(static_cast<T>(-s.lr)),
        momentum(static_cast<T>(s.momentum)),
        one_minus_dampening(static_cast<T>(1.0 - s.dampening)),
        weight_decay(static_cast<T>(s.weight_decay)) {}
};

template <typename T, bool WD, bool MOM, bool FIRST, bool NEST>
static inline void sgd_loop(T* __restrict__ p, T* __restrict__ b, const T* __restrict__ g, int64_t n,
                            const SgdScalars<T> s) {
  for (int64_t i = 0; i < n; ++i) {
    T gi = g[i];
    if (WD) gi = std::fma(p[i], s.weight_decay, gi);
    if (MOM) {
      const T bi = FIRST ? gi : std::fma(gi, s.one_minus_dampening, b[i] * s.momentum);
      b[i] = bi;
      gi = NEST ? std::fma(bi, s.momentum, gi) : bi;
    }
    p[i] = std::fma(gi, s.neg_lr, p[i]);
  }
}

template <typename T>
static inline void sgd_range(T* p, T* b, const T* g, int64_t n, const SgdStep& s) {
  const SgdScalars<T> c(s);
  with_flag(s.weight_decay != 0, [&](auto wd) {
    with_flag(s.momentum != 0, [&](auto mom) {
      with_flag(s.first, [&](auto first) {
        with_flag(s.nesterov, [&](auto nest) {
          sgd_loop<T, decltype(wd)::value, decltype(mom)::value, decltype(first)::value, decltype(nest)::value>(
              p, b, g, n, c);
        });
      });
    });
  });
}

template <typename T>
struct AdamScalars {
  T lerp_coeff, beta2, one_minus_beta2, weight_decay, decay_factor, neg_step_size, bc2_sqrt, eps;
  bool small;  // |w| < 0.5: lerp from m, else from g
  explicit AdamScalars(const AdamStep& s) {
    const T w = static_cast<T>(s.lerp_weight);
    small = std::fabs(w) < T(0.5);
    lerp_coeff = small ? w : w - T(1);
    beta2 = static_cast<T>(s.beta2);
    one_minus_beta2 = static_cast<T>(s.one_minus_beta2);
    weight_decay = static_cast<T>(s.weight_decay);
    decay_factor = static_cast<T>(s.decay_factor);
    neg_step_size = static_cast<T>(-s.step_size);
    bc2_sqrt = static_cast<T>(s.bias_correction2_sqrt);
    eps = static_cast<T>(s.eps);
  }
};

template <typename T, bool DECOUPLED, bool WD, bool SMALL, bool AMS>
static inline void adam_loop(T* __restrict__ p, T* __restrict__ m, T* __restrict__ v, T* __restrict__ vmax,
                             const T* __restrict__ g, int64_t n, const AdamScalars<T> s) {
  for (int64_t i = 0; i < n; ++i) {
    T pi = p[i], gi = g[i];
    if (DECOUPLED) pi = pi * s.decay_factor;
    if (WD) gi = std::fma(pi, s.weight_decay, gi);
    const T mi = std::fma(s.lerp_coeff, gi - m[i], SMALL ? m[i] : gi);
    const T vi = v[i] * s.beta2 + (s.one_minus_beta2 * gi) * gi;
    m[i] = mi;
    v[i] = vi;
    T vh = vi;
    if (AMS) {
      const T a = vmax[i];
      vh = (a > vi || a != a) ? a : vi;  // torch.maximum(vmax, v)
      vmax[i] = vh;
    }
    const T denom = std::sqrt(vh) / s.bc2_sqrt + s.eps;
    p[i] = pi + (s.neg_step_size * mi) / denom;
  }
}

template <typename T>
static inline void adam_range(T* p, T* m, T* v, T* vmax, const T* g, int64_t n, const AdamStep& s) {
  const AdamScalars<T> c(s);
  with_flag(s.decoupled, [&](auto dec) {
    with_flag(s.weight_decay != 0, [&](auto wd) {
      with_flag(c.small, [&](auto small) {
        with_flag(s.amsgrad, [&](auto ams) {
          adam_loop<T, decltype(dec)::value, decltype(wd)::value, decltype(small)::value, decltype(ams)::value>(
              p, m, v, vmax, g, n, c);
        });
      });
    });
  });
}

}  // namespace optim_elem
}  // namespace lockstep
