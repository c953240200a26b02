// lockstep's own transcendental functions, the same bits on every CPU and on CUDA.
//
// libm's exp/log/tanh/sin/cos differ between C libraries, library versions, and the CPU
// and CUDA, so kernels use these instead (docs/determinism.md, rule 3). Each function is
// a fixed sequence of IEEE-754 basic operations (+ - * /, sqrt, and fma written out),
// comparisons, selects and integer bit manipulation. Every one of those is correctly
// rounded or exact, and there are no lookup tables and no data-dependent loops, so the
// result is fixed bit for bit by the input. Algorithms, coefficients and the measured
// error table: docs/math.md; coefficients from tools/gen_math_coeffs.py.
//
// What the bit equality needs from the build (the project's CMake sets all of it):
//   - no contraction into fma: -ffp-contract=off (C++), --fmad=false (CUDA);
//   - no fast math; on CUDA no --use_fast_math, --ftz=false, --prec-div=true, --prec-sqrt=true;
//   - denormals kept: nothing may set FTZ/DAZ on the CPU.
// A loop over these functions in an AVX2/FMA translation unit auto-vectorises (GCC 12)
// and gives the same bits, because each vector lane runs the same rounded operations.
//
// Accuracy, against a reference in higher precision (tests/kernels/test_math.cpp):
//   float32  ls_expf ls_logf ls_tanhf ls_sigmoidf   <= 2 ulp on all finite inputs
//            ls_sinf ls_cosf                        <= 2 ulp for |x| <= 2^19 (kTrigMaxf)
//   float64  ls_exp ls_log ls_tanh ls_sigmoid       <= 2 ulp on all finite inputs
// (measured maxima: 0.84 ulp, sin/cos 1.55; docs/math.md)
//
// Special values (as C99 Annex F / libm, except that every NaN returned is the one
// canonical quiet NaN, +0x7fc00000 / +0x7ff8000000000000, so even NaN bits agree):
//   exp:   NaN -> NaN, +inf -> +inf, -inf -> +0, overflow -> +inf, underflow -> subnormal
//          results rounded once, then +0; exp(+-0) = 1.
//   log:   NaN -> NaN, x < 0 (and -inf) -> NaN, +-0 -> -inf, +inf -> +inf, log(1) = +0,
//          subnormal inputs handled exactly.
//   tanh:  NaN -> NaN, +-inf -> +-1, sign kept (tanh(-0) = -0), odd bit for bit:
//          tanh(-x) = -tanh(x); results saturate to +-1 once 1 is the nearest number.
//   sin:   NaN and +-inf -> NaN, sin(-0) = -0, odd bit for bit.
//   cos:   NaN and +-inf -> NaN, even bit for bit.
//   For kTrigMaxf < |x| < inf sin and cos stay finite with |y| <= 1, but are accurate only
//   while the reduction still is (to about 2^20; beyond 2^22 they are arbitrary).
//   sigmoid: NaN -> NaN, -inf -> +0, +inf -> 1, sigmoid(+-0) = 1/2.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define LS_HD __host__ __device__
#else
#define LS_HD
#endif

// How every function here is declared. static: each translation unit keeps its own copy,
// so the linker can never give the portable code a copy that an AVX2 translation unit
// compiled with AVX2 instructions. Forced inline: so that a loop calling them vectorises
// in that AVX2 unit instead of calling a scalar copy.
#if defined(__CUDACC__)
#define LS_MATH_INLINE LS_HD static __forceinline__
#elif defined(__GNUC__)
#define LS_MATH_INLINE static inline __attribute__((always_inline))
#else
#define LS_MATH_INLINE static inline
#endif

namespace lockstep {

// ---- primitives: bit casts, fma and sqrt, the same operation on host and device ----

LS_MATH_INLINE uint32_t ls_f32_bits(float x) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(x);
#else
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
#endif
}

LS_MATH_INLINE float ls_f32_from_bits(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
#endif
}

LS_MATH_INLINE uint64_t ls_f64_bits(double x) {
#if defined(__CUDA_ARCH__)
  return static_cast<uint64_t>(__double_as_longlong(x));
#else
  uint64_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
#endif
}

LS_MATH_INLINE double ls_f64_from_bits(uint64_t u) {
#if defined(__CUDA_ARCH__)
  return __longlong_as_double(static_cast<long long>(u));
#else
  double x;
  std::memcpy(&x, &u, sizeof x);
  return x;
#endif
}

// a*b + c rounded once. Correctly rounded everywhere (hardware FMA, or glibc's exact
// software fma on CPUs without it), so host and device agree.
LS_MATH_INLINE float ls_fmaf(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
  return ::fmaf(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}

LS_MATH_INLINE double ls_fma(double a, double b, double c) {
#if defined(__CUDA_ARCH__)
  return ::fma(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}

// IEEE square root, correctly rounded (CUDA with --prec-sqrt=true).
LS_MATH_INLINE float ls_sqrtf(float x) {
#if defined(__CUDA_ARCH__)
  return ::sqrtf(x);
#else
  return std::sqrt(x);
#endif
}

LS_MATH_INLINE double ls_sqrt(double x) {
#if defined(__CUDA_ARCH__)
  return ::sqrt(x);
#else
  return std::sqrt(x);
#endif
}

// c ? a : b on the bits. Plain ?: lets GCC turn "NaN ? constant : long computation" into a
// branch around the computation, and a loop with a branch does not vectorise (under the
// default -ftrapping-math); masks keep every lane computing everything.
LS_MATH_INLINE float ls_select(bool c, float a, float b) {
  uint32_t m = 0u - static_cast<uint32_t>(c);
  return ls_f32_from_bits((ls_f32_bits(a) & m) | (ls_f32_bits(b) & ~m));
}

LS_MATH_INLINE double ls_select(bool c, double a, double b) {
  uint64_t m = 0u - static_cast<uint64_t>(c);
  return ls_f64_from_bits((ls_f64_bits(a) & m) | (ls_f64_bits(b) & ~m));
}

LS_MATH_INLINE float ls_nanf() { return ls_f32_from_bits(0x7fc00000u); }
LS_MATH_INLINE double ls_nan() { return ls_f64_from_bits(0x7ff8000000000000ull); }
LS_MATH_INLINE float ls_inff() { return ls_f32_from_bits(0x7f800000u); }
LS_MATH_INLINE double ls_inf() { return ls_f64_from_bits(0x7ff0000000000000ull); }

// sin and cos promise <= 2 ulp for |x| up to here (the reduced argument stays within the
// polynomials' interval and the 3-part pi/2 keeps its error far below an ulp).
constexpr float kTrigMaxf = 0x1p19f;

// ---- float32 ----

namespace detail {

// e^x = (hi + lo) * s1 * s2 for -104 <= x <= 89: hi is e^x / 2^k rounded, lo the part
// left over (|lo| <= ulp(hi)), which ls_tanhf and ls_sigmoidf use. x = k ln2 + r with
// |r| <= ln2/2; e^r by a degree-6 minimax polynomial; s1 s2 = 2^k as two normal powers
// of two.
struct LsExpParts32 {
  float hi, lo, s1, s2;
};

LS_MATH_INLINE LsExpParts32 ls_expf_parts(float x) {
  // t = 1.5*2^23 + round(x log2 e): adding the magic number rounds to an integer.
  const float magic = 0x1.8p23f;
  float t = ls_fmaf(x, 0x1.715476p+0f, magic);
  float kf = t - magic;
  // x - k ln2 with ln2 in two parts: r is exact (Cody-Waite), c = -k ln2_lo is tiny.
  float r = ls_fmaf(-kf, 0x1.62e43p-1f, x);
  float c = kf * 0x1.05c61p-29f;
  float q = ls_fmaf(0x1.6b0458p-10f, r, 0x1.1244b4p-7f);
  q = ls_fmaf(q, r, 0x1.555824p-5f);
  q = ls_fmaf(q, r, 0x1.555482p-3f);
  q = ls_fmaf(q, r, 0x1.fffffcp-2f);
  // e^(r + c) = (1 + r + r2q)(1 + c) with r2q = r^2 q. 1 + r is split exactly into `one`
  // + its rounding error, the small terms are added to that error, and the sum is
  // renormalised (Fast2Sum) so that hi is e^(r + c) rounded once and lo what is left.
  float r2q = r * r * q;
  float one = 1.0f + r;
  float small = ((1.0f - one) + r) + ls_fmaf(c, one + r2q, r2q);
  LsExpParts32 p;
  p.hi = one + small;
  p.lo = (one - p.hi) + small;
  // k sits in t's low mantissa bits. kb = k + 256 in [106, 384]; 2^k = 2^floor(k/2) *
  // 2^ceil(k/2), each a normal float built from its exponent bits.
  uint32_t kb = ls_f32_bits(t) - ls_f32_bits(magic) + 256u;
  uint32_t k1 = kb >> 1;
  p.s1 = ls_f32_from_bits((k1 - 1u) << 23);
  p.s2 = ls_f32_from_bits((kb - k1 - 1u) << 23);
  return p;
}

}  // namespace detail

// e^x, see detail::ls_expf_parts. Subnormal results are rounded once (the product by
// s1 is exact, the one by s2 rounds).
LS_MATH_INLINE float ls_expf(float x) {
  // Below -104 the result rounds to +0, above 89 to +inf; clamping keeps k in range.
  // NaN fails the first comparison and becomes -104; it is put back at the end.
  float xc = x > -104.0f ? x : -104.0f;
  xc = xc < 89.0f ? xc : 89.0f;
  detail::LsExpParts32 p = detail::ls_expf_parts(xc);
  float y = p.hi * p.s1 * p.s2;
  return ls_select(x != x, ls_nanf(), y);
}

// log(x). x = 2^e m with m in [sqrt(1/2), sqrt(2)), f = m - 1 (exact), s = f/(2+f);
// log1p(f) = f - hfsq + s (hfsq + R(s^2)) with hfsq = f^2/2, R a degree-3 minimax
// polynomial; the large terms come last so their rounding happens once.
LS_MATH_INLINE float ls_logf(float x) {
  // Subnormals: scale by 2^23 (exact) into the normal range and take 23 off e.
  // (Written as selects of constants and `&` of comparisons, so that every operation runs
  // unconditionally: GCC then if-converts and vectorises without -fno-trapping-math.)
  bool tiny = x < 0x1p-126f;
  float xs = x * ls_select(tiny, 0x1p23f, 1.0f);
  // Adding 1.0 - sqrt(1/2) in the bits moves the cut between binades to sqrt(1/2):
  // the exponent field then holds e + 127 and the mantissa bits give m / 2^e.
  uint32_t u = ls_f32_bits(xs) + (0x3f800000u - 0x3f3504f3u);
  float e = static_cast<float>(static_cast<int32_t>(u >> 23) - (tiny ? 150 : 127));
  float m = ls_f32_from_bits((u & 0x007fffffu) + 0x3f3504f3u);
  float f = m - 1.0f;
  float s = f / (2.0f + f);
  float z = s * s;
  float big_r = z * ls_fmaf(ls_fmaf(0x1.321c12p-2f, z, 0x1.995cc2p-2f), z, 0x1.55557cp-1f);
  float hfsq = 0.5f * f * f;
  // e ln2 in two parts; the fma with the first part rounds the whole sum once.
  float lo = ls_fmaf(e, -0x1.05c61p-29f, s * (hfsq + big_r));
  float y = ls_fmaf(e, 0x1.62e43p-1f, f - (hfsq - lo));
  float special = ls_select(x == 0.0f, -ls_inff(), ls_select(x == ls_inff(), x, ls_nanf()));
  return ls_select((x > 0.0f) & (x < ls_inff()), y, special);
}

namespace detail {

// 1 - 2/(e^{2a} + 1) for a >= 9/16. e^{2a} = e_hi + e_lo unrounded (ls_expf_parts),
// e^{2a} + 1 as an exact sum d_hi + d_lo, and the quotient q = 2/d corrected by its
// remainder, so the only sizeable rounding is that of 1 - q (q <= 1/2). Past a = 10 the
// result is 1 in float, so a is clamped there and e^{2a} never overflows.
LS_MATH_INLINE float ls_tanhf_far(float a) {
  LsExpParts32 p = ls_expf_parts(2.0f * ls_select(a < 10.0f, a, 10.0f));
  float e_hi = p.hi * p.s1 * p.s2;  // exact: e^{2a} > 3
  float e_lo = p.lo * p.s1 * p.s2;
  float d_hi = e_hi + 1.0f;
  float d_lo = ((e_hi - d_hi) + 1.0f) + e_lo;
  float inv = 1.0f / d_hi;
  float q = 2.0f * inv;
  float rem = ls_fmaf(-q, d_hi, 2.0f) - q * d_lo;
  return 1.0f - ls_fmaf(rem, inv, q);
}

}  // namespace detail

// tanh(x). |x| < 9/16: x + x^3 P(x^2), P a 5-term minimax polynomial; otherwise
// ls_tanhf_far. The sign is copied from x afterwards, so tanh is odd bit for bit.
LS_MATH_INLINE float ls_tanhf(float x) {
  uint32_t sign = ls_f32_bits(x) & 0x80000000u;
  float a = ls_f32_from_bits(ls_f32_bits(x) & 0x7fffffffu);
  float z = a * a;
  float p = ls_fmaf(-0x1.940204p-8f, z, 0x1.580568p-6f);
  p = ls_fmaf(p, z, -0x1.b9049cp-5f);
  p = ls_fmaf(p, z, 0x1.110c5ap-3f);
  p = ls_fmaf(p, z, -0x1.555548p-2f);
  float near0 = ls_fmaf(a * z, p, a);
  float far = detail::ls_tanhf_far(a);
  float y = ls_select(a < 0x1.2p-1f, near0, far);
  y = ls_f32_from_bits(ls_f32_bits(y) | sign);
  return ls_select(x != x, ls_nanf(), y);
}

// 1 / (1 + e^-x). With e = e^-|x| <= 1 (kept as the unrounded hi + lo of ls_expf) it is
// n / (1 + e), n = 1 for x >= 0 and n = e for x < 0, so nothing overflows. 1 + e is
// carried as an exact sum d_hi + d_lo and the quotient is corrected by its remainder:
// rounding e, or 1 + e, first would cost up to 2 ulp where e and the result sit at
// opposite ends of their binades.
LS_MATH_INLINE float ls_sigmoidf(float x) {
  float nx = -ls_f32_from_bits(ls_f32_bits(x) & 0x7fffffffu);
  detail::LsExpParts32 p = detail::ls_expf_parts(nx > -104.0f ? nx : -104.0f);
  float e_hi = p.hi * p.s1 * p.s2;  // exact unless subnormal
  float e_lo = p.lo * p.s1 * p.s2;
  float d_hi = 1.0f + e_hi;
  float d_lo = ((1.0f - d_hi) + e_hi) + e_lo;
  float n_hi = x >= 0.0f ? 1.0f : e_hi;
  float n_lo = x >= 0.0f ? 0.0f : e_lo;
  float inv = 1.0f / d_hi;
  float q = n_hi * inv;
  float rem = ls_fmaf(-q, d_hi, n_hi) + ls_fmaf(-q, d_lo, n_lo);
  float y = ls_fmaf(rem, inv, q);
  return ls_select(x != x, ls_nanf(), y);
}

namespace detail {

// x = k pi/2 + r. Returns r, with |r| <= 13/16 while |x| <= kTrigMaxf, and k mod 4 in q.
// pi/2 comes in three parts: the first step is exact, the other two round once each.
LS_MATH_INLINE float ls_trig_reduce(float x, uint32_t& q) {
  const float magic = 0x1.8p23f;
  float t = ls_fmaf(x, 0x1.45f306p-1f, magic);
  float kf = t - magic;
  q = (ls_f32_bits(t) - ls_f32_bits(magic)) & 3u;
  float r = ls_fmaf(-kf, 0x1.921fb6p+0f, x);
  r = ls_fmaf(-kf, -0x1.777a5cp-25f, r);
  r = ls_fmaf(-kf, -0x1.ee59dap-50f, r);
  // Past about 2^22 the reduction is meaningless; clamping keeps the result in [-1, 1].
  r = ls_select(r > 0x1.ap-1f, 0x1.ap-1f, r);
  return ls_select(r < -0x1.ap-1f, -0x1.ap-1f, r);
}

// sin(r) = r + r^3 S(r^2) on |r| <= 13/16.
LS_MATH_INLINE float ls_sin_poly(float r, float z) {
  float s = ls_fmaf(0x1.799ep-19f, z, -0x1.a05112p-13f);
  s = ls_fmaf(s, z, 0x1.11116ep-7f);
  s = ls_fmaf(s, z, -0x1.555556p-3f);
  return ls_fmaf(r * z, s, r);
}

// cos(r) = 1 - r^2/2 + r^4 C(r^2). 1 - r^2/2 is formed with its rounding error kept
// (w plus the exact (1 - w) - hz), and r^2 with its own (fma), so only the last add rounds.
LS_MATH_INLINE float ls_cos_poly(float r, float z) {
  float c = ls_fmaf(-0x1.336c1cp-22f, z, 0x1.a06836p-16f);
  c = ls_fmaf(c, z, -0x1.6c1756p-10f);
  c = ls_fmaf(c, z, 0x1.555556p-5f);
  float z_err = ls_fmaf(r, r, -z);
  float hz = 0.5f * z;
  float w = 1.0f - hz;
  float tail = ls_fmaf(z * z, c, -0.5f * z_err);
  return w + (((1.0f - w) - hz) + tail);
}

}  // namespace detail

// sin(x) for |x| <= kTrigMaxf within 2 ulp; see the header comment beyond that.
LS_MATH_INLINE float ls_sinf(float x) {
  uint32_t q;
  float r = detail::ls_trig_reduce(x, q);
  float z = r * r;
  float s = detail::ls_sin_poly(r, z);
  float c = detail::ls_cos_poly(r, z);
  // sin(k pi/2 + r) = sin r, cos r, -sin r, -cos r for k mod 4 = 0, 1, 2, 3.
  float y = ls_select((q & 1u) != 0u, c, s);
  y = ls_f32_from_bits(ls_f32_bits(y) ^ ((q & 2u) << 30));
  // +-0 would come out as +0 (the reduction adds signed zeros), so it is passed through.
  y = ls_select(x == 0.0f, x, y);
  return ls_select(y != y, ls_nanf(), y);
}

// cos(x) for |x| <= kTrigMaxf within 2 ulp; see the header comment beyond that.
LS_MATH_INLINE float ls_cosf(float x) {
  uint32_t q;
  float r = detail::ls_trig_reduce(x, q);
  float z = r * r;
  float s = detail::ls_sin_poly(r, z);
  float c = detail::ls_cos_poly(r, z);
  // cos(k pi/2 + r) = cos r, -sin r, -cos r, sin r for k mod 4 = 0, 1, 2, 3.
  float y = ls_select((q & 1u) != 0u, s, c);
  y = ls_f32_from_bits(ls_f32_bits(y) ^ (((q + 1u) & 2u) << 30));
  return ls_select(y != y, ls_nanf(), y);
}

// ---- float64: the same algorithms with longer polynomials ----

namespace detail {

// e^x = (hi + lo) * s1 * s2 for -746 <= x <= 710; degree-11 polynomial. See ls_expf_parts.
struct LsExpParts64 {
  double hi, lo, s1, s2;
};

LS_MATH_INLINE LsExpParts64 ls_exp_parts(double x) {
  const double magic = 0x1.8p52;
  double t = ls_fma(x, 0x1.71547652b82fep+0, magic);
  double kf = t - magic;
  double r = ls_fma(-kf, 0x1.62e42fefa39efp-1, x);
  double c = kf * -0x1.abc9e3b39803fp-56;
  double q = ls_fma(0x1.add25144d4d2cp-26, r, 0x1.28b2d3f0cadfdp-22);
  q = ls_fma(q, r, 0x1.71defd613aa99p-19);
  q = ls_fma(q, r, 0x1.a0199463857d7p-16);
  q = ls_fma(q, r, 0x1.a01a01367c975p-13);
  q = ls_fma(q, r, 0x1.6c16c1862de09p-10);
  q = ls_fma(q, r, 0x1.1111111126963p-7);
  q = ls_fma(q, r, 0x1.555555554ffaep-5);
  q = ls_fma(q, r, 0x1.55555555554fap-3);
  q = ls_fma(q, r, 0x1.000000000000bp-1);
  double r2q = r * r * q;
  double one = 1.0 + r;
  double small = ((1.0 - one) + r) + ls_fma(c, one + r2q, r2q);
  LsExpParts64 p;
  p.hi = one + small;
  p.lo = (one - p.hi) + small;
  // kb = k + 2048 in [971, 3073]; 2^k = 2^floor(k/2) * 2^ceil(k/2), both normal.
  uint64_t kb = ls_f64_bits(t) - ls_f64_bits(magic) + 2048u;
  uint64_t k1 = kb >> 1;
  p.s1 = ls_f64_from_bits((k1 - 1u) << 52);
  p.s2 = ls_f64_from_bits((kb - k1 - 1u) << 52);
  return p;
}

}  // namespace detail

// e^x. See ls_expf.
LS_MATH_INLINE double ls_exp(double x) {
  double xc = x > -746.0 ? x : -746.0;
  xc = xc < 710.0 ? xc : 710.0;
  detail::LsExpParts64 p = detail::ls_exp_parts(xc);
  double y = p.hi * p.s1 * p.s2;
  return ls_select(x != x, ls_nan(), y);
}

// 1 / (1 + e^-x). See ls_sigmoidf.
LS_MATH_INLINE double ls_sigmoid(double x) {
  double nx = -ls_f64_from_bits(ls_f64_bits(x) & 0x7fffffffffffffffull);
  detail::LsExpParts64 p = detail::ls_exp_parts(nx > -746.0 ? nx : -746.0);
  double e_hi = p.hi * p.s1 * p.s2;
  double e_lo = p.lo * p.s1 * p.s2;
  double d_hi = 1.0 + e_hi;
  double d_lo = ((1.0 - d_hi) + e_hi) + e_lo;
  double n_hi = x >= 0.0 ? 1.0 : e_hi;
  double n_lo = x >= 0.0 ? 0.0 : e_lo;
  double inv = 1.0 / d_hi;
  double q = n_hi * inv;
  double rem = ls_fma(-q, d_hi, n_hi) + ls_fma(-q, d_lo, n_lo);
  double y = ls_fma(rem, inv, q);
  return ls_select(x != x, ls_nan(), y);
}

// log(x); R of degree 7. See ls_logf.
LS_MATH_INLINE double ls_log(double x) {
  bool tiny = x < 0x1p-1022;
  double xs = x * ls_select(tiny, 0x1p54, 1.0);
  uint64_t u = ls_f64_bits(xs) + (0x3ff0000000000000ull - 0x3fe6a09e667f3bcdull);
  // e as a double without an int64 -> double conversion (AVX2 has none): the biased
  // exponent, plus 64 or 10 (subnormal: 64 - 54) to keep it positive, is written into the
  // mantissa of 2^52, and 2^52 + 1023 + 64 is taken off, exactly.
  uint64_t eb = (u >> 52) + (tiny ? 10u : 64u);
  double e = ls_f64_from_bits(0x4330000000000000ull | eb) - 0x1.000000000043fp+52;
  double m = ls_f64_from_bits((u & 0x000fffffffffffffull) + 0x3fe6a09e667f3bcdull);
  double f = m - 1.0;
  double s = f / (2.0 + f);
  double z = s * s;
  double big_r = ls_fma(0x1.2f5a1193b3878p-3, z, 0x1.3999af2f9e551p-3);
  big_r = ls_fma(big_r, z, 0x1.74668af72b4c9p-3);
  big_r = ls_fma(big_r, z, 0x1.c71c50aa15ca9p-3);
  big_r = ls_fma(big_r, z, 0x1.2492494387eaap-2);
  big_r = ls_fma(big_r, z, 0x1.999999997e2eap-2);
  big_r = ls_fma(big_r, z, 0x1.5555555555597p-1);
  big_r = z * big_r;
  double hfsq = 0.5 * f * f;
  double lo = ls_fma(e, 0x1.abc9e3b39803fp-56, s * (hfsq + big_r));
  double y = ls_fma(e, 0x1.62e42fefa39efp-1, f - (hfsq - lo));
  double special = ls_select(x == 0.0, -ls_inf(), ls_select(x == ls_inf(), x, ls_nan()));
  return ls_select((x > 0.0) & (x < ls_inf()), y, special);
}

namespace detail {

// See ls_tanhf_far; tanh rounds to 1 in double past a = 20.
LS_MATH_INLINE double ls_tanh_far(double a) {
  LsExpParts64 p = ls_exp_parts(2.0 * ls_select(a < 20.0, a, 20.0));
  double e_hi = p.hi * p.s1 * p.s2;
  double e_lo = p.lo * p.s1 * p.s2;
  double d_hi = e_hi + 1.0;
  double d_lo = ((e_hi - d_hi) + 1.0) + e_lo;
  double inv = 1.0 / d_hi;
  double q = 2.0 * inv;
  double rem = ls_fma(-q, d_hi, 2.0) - q * d_lo;
  return 1.0 - ls_fma(rem, inv, q);
}

}  // namespace detail

// tanh(x); 11-term polynomial below 9/16. See ls_tanhf.
LS_MATH_INLINE double ls_tanh(double x) {
  uint64_t sign = ls_f64_bits(x) & 0x8000000000000000ull;
  double a = ls_f64_from_bits(ls_f64_bits(x) & 0x7fffffffffffffffull);
  double z = a * a;
  double p = ls_fma(-0x1.3db231a8f9d27p-16, z, 0x1.59aee60744651p-14);
  p = ls_fma(p, z, -0x1.e821748a58a0ap-13);
  p = ls_fma(p, z, 0x1.34631e976635fp-11);
  p = ls_fma(p, z, -0x1.7d8be90989f59p-10);
  p = ls_fma(p, z, 0x1.d6d24eadd9016p-9);
  p = ls_fma(p, z, -0x1.226e2d343f5f3p-7);
  p = ls_fma(p, z, 0x1.664f484b0b27cp-6);
  p = ls_fma(p, z, -0x1.ba1ba1b93e96fp-5);
  p = ls_fma(p, z, 0x1.111111111036ap-3);
  p = ls_fma(p, z, -0x1.555555555554cp-2);
  double near0 = ls_fma(a * z, p, a);
  double far = detail::ls_tanh_far(a);
  double y = ls_select(a < 0x1.2p-1, near0, far);
  y = ls_f64_from_bits(ls_f64_bits(y) | sign);
  return ls_select(x != x, ls_nan(), y);
}

}  // namespace lockstep
