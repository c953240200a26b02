// The update loops of kernels/optim.h for AVX2+FMA (only when LOCKSTEP_HAVE_AVX2; called
// only when ex.avx2()). The portable build calls libm's fma for every fma (correct,
// but ~2 ns each), so this file is what lets the optimizer step run at memory speed.
//
// SGD: optim_elem::sgd_range, which GCC vectorises here (std::fma becomes vfmadd).
// Adam: written with intrinsics, because GCC 12 keeps sqrt's errno branch in the template
// loop (the no-math-errno pragma does not reach template instantiations) and will not
// vectorise it. Each intrinsic is the scalar operation of adam_loop on 8 (4) lanes, in the
// same order: vmulps, vsubps, vaddps, vfmadd (one rounding), vsqrtps and vdivps are all
// correctly rounded, and the amsgrad max is a compare-and-blend with the scalar rule
// (a > v or a is NaN ? a : v). The last n % 8 (n % 4) elements run adam_loop itself. So every
// element gets the bits of the portable build.
#include <immintrin.h>

#include "kernels/optim.h"

namespace lockstep {
namespace {

// The lane operations for float (8 lanes) and double (4 lanes).
struct F32 {
  using T = float;
  using V = __m256;
  static constexpr int kWidth = 8;
  static V set1(T x) { return _mm256_set1_ps(x); }
  static V load(const T* p) { return _mm256_loadu_ps(p); }
  static void store(T* p, V x) { _mm256_storeu_ps(p, x); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V div(V a, V b) { return _mm256_div_ps(a, b); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V sqrt(V a) { return _mm256_sqrt_ps(a); }
  static V max_nan(V a, V b) {  // a > b or a is NaN ? a : b
    const V take_a = _mm256_or_ps(_mm256_cmp_ps(a, b, _CMP_GT_OQ), _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
    return _mm256_blendv_ps(b, a, take_a);
  }
};

struct F64 {
  using T = double;
  using V = __m256d;
  static constexpr int kWidth = 4;
  static V set1(T x) { return _mm256_set1_pd(x); }
  static V load(const T* p) { return _mm256_loadu_pd(p); }
  static void store(T* p, V x) { _mm256_storeu_pd(p, x); }
  static V add(V a, V b) { return _mm256_add_pd(a, b); }
  static V sub(V a, V b) { return _mm256_sub_pd(a, b); }
  static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
  static V div(V a, V b) { return _mm256_div_pd(a, b); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static V sqrt(V a) { return _mm256_sqrt_pd(a); }
  static V max_nan(V a, V b) {
    const V take_a = _mm256_or_pd(_mm256_cmp_pd(a, b, _CMP_GT_OQ), _mm256_cmp_pd(a, a, _CMP_UNORD_Q));
    return _mm256_blendv_pd(b, a, take_a);
  }
};

// adam_loop (kernels/optim.h) on whole vectors, then adam_loop on the tail.
template <typename L, bool DEC, bool WD, bool SMALL, bool AMS>
void adam_vec(typename L::T* p, typename L::T* m, typename L::T* v, typename L::T* vmax,
              const typename L::T* g, int64_t n, const optim_elem::AdamScalars<typename L::T>& s) {
  using V = typename L::V;
  const V decay = L::set1(s.decay_factor), wd = L::set1(s.weight_decay), coeff = L::set1(s.lerp_coeff);
  const V beta2 = L::set1(s.beta2), omb2 = L::set1(s.one_minus_beta2), bc2 = L::set1(s.bc2_sqrt);
  const V eps = L::set1(s.eps), nss = L::set1(s.neg_step_size);
  int64_t i = 0;
  for (; i + L::kWidth <= n; i += L::kWidth) {
    V pi = L::load(p + i), gi = L::load(g + i);
    if (DEC) pi = L::mul(pi, decay);
    if (WD) gi = L::fma(pi, wd, gi);
    const V m0 = L::load(m + i);
    const V mi = L::fma(coeff, L::sub(gi, m0), SMALL ? m0 : gi);
    const V vi = L::add(L::mul(L::load(v + i), beta2), L::mul(L::mul(omb2, gi), gi));
    L::store(m + i, mi);
    L::store(v + i, vi);
    V vh = vi;
    if (AMS) {
      vh = L::max_nan(L::load(vmax + i), vi);
      L::store(vmax + i, vh);
    }
    const V denom = L::add(L::div(L::sqrt(vh), bc2), eps);
    L::store(p + i, L::add(pi, L::div(L::mul(nss, mi), denom)));
  }
  optim_elem::adam_loop<typename L::T, DEC, WD, SMALL, AMS>(p + i, m + i, v + i, AMS ? vmax + i : nullptr, g + i,
                                                             n - i, s);
}

template <typename L>
void adam_dispatch(typename L::T* p, typename L::T* m, typename L::T* v, typename L::T* vmax,
                   const typename L::T* g, int64_t n, const AdamStep& st) {
  using optim_elem::with_flag;
  const optim_elem::AdamScalars<typename L::T> s(st);
  with_flag(st.decoupled, [&](auto dec) {
    with_flag(st.weight_decay != 0, [&](auto wd) {
      with_flag(s.small, [&](auto small) {
        with_flag(st.amsgrad, [&](auto ams) {
          adam_vec<L, decltype(dec)::value, decltype(wd)::value, decltype(small)::value, decltype(ams)::value>(
              p, m, v, vmax, g, n, s);
        });
      });
    });
  });
}

}  // namespace

void sgd_step_avx2(float* param, float* momentum_buffer, const float* grad, int64_t n, const SgdStep& s) {
  optim_elem::sgd_range(param, momentum_buffer, grad, n, s);
}
void sgd_step_avx2(double* param, double* momentum_buffer, const double* grad, int64_t n, const SgdStep& s) {
  optim_elem::sgd_range(param, momentum_buffer, grad, n, s);
}
void adam_step_avx2(float* param, float* exp_avg, float* exp_avg_sq, float* max_exp_avg_sq, const float* grad,
                    int64_t n, const AdamStep& s) {
  adam_dispatch<F32>(param, exp_avg, exp_avg_sq, max_exp_avg_sq, grad, n, s);
}
void adam_step_avx2(double* param, double* exp_avg, double* exp_avg_sq, double* max_exp_avg_sq,
                    const double* grad, int64_t n, const AdamStep& s) {
  adam_dispatch<F64>(param, exp_avg, exp_avg_sq, max_exp_avg_sq, grad, n, s);
}

}  // namespace lockstep
