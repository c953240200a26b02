// The CPU BatchNorm2d loops of kernels/batchnorm2d.h as templates, compiled twice: by
// batchnorm2d_cpu.cpp (portable) and batchnorm2d_avx2.cpp (-mavx2 -mfma, when ex.avx2()).
// The per-channel sums run in the batch order with one sample as the row (bn::batch_sums
// with Wide<T> partials): add_row adds the sample's H*W terms of each channel in position order into the
// chunk partial, which is held in double (Wide<T>) and rounded to T once, when the chunk ends.
// Up to kGroup channels advance together (independent chains, for instruction-level
// parallelism); each channel's order is the header's whatever the grouping. The plane
// passes (normalise, dx) are elementwise over one contiguous plane and vectorise freely.
//
// In the AVX2 build (__AVX2__ and __FMA__) a full group of 8 float channels runs its sums on
// vectors: 8 positions of each of the 8 channels are loaded and transposed in registers, so
// one vector holds the 8 channels' terms at one position, and the lanes (channels) add them
// position by position -- every lane the same double operation, in the same order, as the
// scalar loop (x8_* below; tests/kernels/test_batchnorm.cpp compares the builds bit for bit).
#pragma once
#include "kernels/batchnorm2d.h"
#include "kernels/batchnorm_impl.h"
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define LS_BN2D_X8 1
#endif

namespace lockstep::bn2d {
namespace {

using bn::Scratch;
constexpr int64_t kGroup = 8;

// The chunk partial's type: double for float data. A chunk adds 32 * H * W terms (25,088 on
// 28 x 28) in one chain; in float that loses up to ~1e-3 of a cancelling sum such as a
// channel's sum of dy, in double ~1e-12. Wide<double> is double.
template <typename T>
using Wide = double;

#if LS_BN2D_X8
// 8 x 8 transpose: on return v[k] holds lane j = element k of the input v[j].
inline void transpose8(__m256 v[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(v[0], v[1]), t1 = _mm256_unpackhi_ps(v[0], v[1]);
  const __m256 t2 = _mm256_unpacklo_ps(v[2], v[3]), t3 = _mm256_unpackhi_ps(v[2], v[3]);
  const __m256 t4 = _mm256_unpacklo_ps(v[4], v[5]), t5 = _mm256_unpackhi_ps(v[4], v[5]);
  const __m256 t6 = _mm256_unpacklo_ps(v[6], v[7]), t7 = _mm256_unpackhi_ps(v[6], v[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  v[0] = _mm256_permute2f128_ps(u0, u4, 0x20), v[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  v[2] = _mm256_permute2f128_ps(u2, u6, 0x20), v[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  v[4] = _mm256_permute2f128_ps(u0, u4, 0x31), v[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  v[6] = _mm256_permute2f128_ps(u2, u6, 0x31), v[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// Calls term(k, v) for each position of one sample's 8 planes p[j] = base + j * HW, in
// position order, v = the 8 channels' floats at that position (lane j: channel j).
template <typename Term>
inline void x8_positions(const float* base, int64_t HW, const Term& term) {
  int64_t i = 0;
  for (; i + 8 <= HW; i += 8) {
    __m256 v[8];
    for (int j = 0; j < 8; ++j) v[j] = _mm256_loadu_ps(base + j * HW + i);
    transpose8(v);
    for (int k = 0; k < 8; ++k) term(v[k]);
  }
  for (; i < HW; ++i) {
    const float* b = base + i;
    term(_mm256_setr_ps(b[0], b[HW], b[2 * HW], b[3 * HW], b[4 * HW], b[5 * HW], b[6 * HW], b[7 * HW]));
  }
}

// The same over two arrays (dy and x) at once: term(g, v).
template <typename Term>
inline void x8_positions2(const float* gbase, const float* xbase, int64_t HW, const Term& term) {
  int64_t i = 0;
  for (; i + 8 <= HW; i += 8) {
    __m256 g[8], v[8];
    for (int j = 0; j < 8; ++j) g[j] = _mm256_loadu_ps(gbase + j * HW + i), v[j] = _mm256_loadu_ps(xbase + j * HW + i);
    transpose8(g);
    transpose8(v);
    for (int k = 0; k < 8; ++k) term(g[k], v[k]);
  }
  for (; i < HW; ++i) {
    const float* a = gbase + i;
    const float* b = xbase + i;
    term(_mm256_setr_ps(a[0], a[HW], a[2 * HW], a[3 * HW], a[4 * HW], a[5 * HW], a[6 * HW], a[7 * HW]),
         _mm256_setr_ps(b[0], b[HW], b[2 * HW], b[3 * HW], b[4 * HW], b[5 * HW], b[6 * HW], b[7 * HW]));
  }
}

inline __m256d lo_pd(__m256 v) { return _mm256_cvtps_pd(_mm256_castps256_ps128(v)); }
inline __m256d hi_pd(__m256 v) { return _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)); }
#endif

// s[0 .. w) = sums of x over channels [c0, c0 + w), w <= kGroup.
template <typename T>
void channel_sums(T* s, const T* x, int64_t N, int64_t C, int64_t HW, int64_t c0, int64_t w, Scratch<T>& mem) {
#if LS_BN2D_X8
  if constexpr (std::is_same_v<T, float>)
    if (w == 8)
      return bn::batch_sums<T, double>(s, N, w, mem, [&](double* acc, int64_t r) {
        __m256d a0 = _mm256_loadu_pd(acc), a1 = _mm256_loadu_pd(acc + 4);
        x8_positions(x + (r * C + c0) * HW, HW, [&](__m256 v) {
          a0 = _mm256_add_pd(a0, lo_pd(v));
          a1 = _mm256_add_pd(a1, hi_pd(v));
        });
        _mm256_storeu_pd(acc, a0), _mm256_storeu_pd(acc + 4, a1);
      });
#endif
  bn::batch_sums<T, Wide<T>>(s, N, w, mem, [&](Wide<T>* acc, int64_t r) {
    Wide<T> a[kGroup];
    for (int64_t j = 0; j < w; ++j) a[j] = acc[j];
    const T* xr = x + (r * C + c0) * HW;
    for (int64_t i = 0; i < HW; ++i)
      for (int64_t j = 0; j < w; ++j) a[j] += Wide<T>(xr[j * HW + i]);
    for (int64_t j = 0; j < w; ++j) acc[j] = a[j];
  });
}

// s[0 .. w) = sums of fma(d, d, acc), d = x - m[j].
template <typename T>
void sqdev_sums(T* s, const T* x, const T* m, int64_t N, int64_t C, int64_t HW, int64_t c0, int64_t w,
                Scratch<T>& mem) {
#if LS_BN2D_X8
  if constexpr (std::is_same_v<T, float>)
    if (w == 8) {
      const __m256 mv = _mm256_loadu_ps(m);
      return bn::batch_sums<T, double>(s, N, w, mem, [&](double* acc, int64_t r) {
        __m256d a0 = _mm256_loadu_pd(acc), a1 = _mm256_loadu_pd(acc + 4);
        x8_positions(x + (r * C + c0) * HW, HW, [&](__m256 v) {
          const __m256 d = _mm256_sub_ps(v, mv);  // the difference in float, then widened
          const __m256d d0 = lo_pd(d), d1 = hi_pd(d);
          a0 = _mm256_fmadd_pd(d0, d0, a0);
          a1 = _mm256_fmadd_pd(d1, d1, a1);
        });
        _mm256_storeu_pd(acc, a0), _mm256_storeu_pd(acc + 4, a1);
      });
    }
#endif
  bn::batch_sums<T, Wide<T>>(s, N, w, mem, [&](Wide<T>* acc, int64_t r) {
    Wide<T> a[kGroup];
    T mm[kGroup];
    for (int64_t j = 0; j < w; ++j) a[j] = acc[j], mm[j] = m[j];
    const T* xr = x + (r * C + c0) * HW;
    for (int64_t i = 0; i < HW; ++i)
      for (int64_t j = 0; j < w; ++j) {
        const Wide<T> d = xr[j * HW + i] - mm[j];  // the difference in T, then widened
        a[j] = std::fma(d, d, a[j]);
      }
    for (int64_t j = 0; j < w; ++j) acc[j] = a[j];
  });
}

// b[0 .. w) = sums of dy;  b[w .. 2w) = sums of fma(dy, xhat, acc).
template <typename T>
void backward_sums(T* b, const T* dy, const T* x, const T* m, const T* rs, int64_t N, int64_t C, int64_t HW,
                   int64_t c0, int64_t w, Scratch<T>& mem) {
#if LS_BN2D_X8
  if constexpr (std::is_same_v<T, float>)
    if (w == 8) {
      const __m256 mv = _mm256_loadu_ps(m), rv = _mm256_loadu_ps(rs);
      return bn::batch_sums<T, double>(b, N, 2 * w, mem, [&](double* acc, int64_t r) {
        __m256d a0 = _mm256_loadu_pd(acc), a1 = _mm256_loadu_pd(acc + 4);
        __m256d b0 = _mm256_loadu_pd(acc + 8), b1 = _mm256_loadu_pd(acc + 12);
        const int64_t off = (r * C + c0) * HW;
        x8_positions2(dy + off, x + off, HW, [&](__m256 g, __m256 v) {
          const __m256 xhat = _mm256_mul_ps(_mm256_sub_ps(v, mv), rv);  // two roundings, as the loop
          const __m256d g0 = lo_pd(g), g1 = hi_pd(g);
          a0 = _mm256_add_pd(a0, g0);
          a1 = _mm256_add_pd(a1, g1);
          b0 = _mm256_fmadd_pd(g0, lo_pd(xhat), b0);
          b1 = _mm256_fmadd_pd(g1, hi_pd(xhat), b1);
        });
        _mm256_storeu_pd(acc, a0), _mm256_storeu_pd(acc + 4, a1);
        _mm256_storeu_pd(acc + 8, b0), _mm256_storeu_pd(acc + 12, b1);
      });
    }
#endif
  bn::batch_sums<T, Wide<T>>(b, N, 2 * w, mem, [&](Wide<T>* acc, int64_t r) {
    Wide<T> a1[kGroup], a2[kGroup];
    T mm[kGroup], rr[kGroup];
    for (int64_t j = 0; j < w; ++j) a1[j] = acc[j], a2[j] = acc[w + j], mm[j] = m[j], rr[j] = rs[j];
    const T* xr = x + (r * C + c0) * HW;
    const T* gr = dy + (r * C + c0) * HW;
    for (int64_t i = 0; i < HW; ++i)
      for (int64_t j = 0; j < w; ++j) {
        const T g = gr[j * HW + i];
        const T xhat = (xr[j * HW + i] - mm[j]) * rr[j];
        a1[j] += Wide<T>(g);
        a2[j] = std::fma(Wide<T>(g), Wide<T>(xhat), a2[j]);
      }
    for (int64_t j = 0; j < w; ++j) acc[j] = a1[j], acc[w + j] = a2[j];
  });
}

// One plane: y = xhat * g + b (g, b: this channel's; has_g / has_b false when absent).
template <typename T>
void normalize_plane(T* y, const T* x, T m, T rs, const T* g, const T* b, int64_t HW) {
  if (g && b) {
    for (int64_t i = 0; i < HW; ++i) y[i] = ((x[i] - m) * rs) * *g + *b;
  } else {
    for (int64_t i = 0; i < HW; ++i) {
      T v = (x[i] - m) * rs;
      if (g) v = v * *g;
      if (b) v = v + *b;
      y[i] = v;
    }
  }
}

// One plane with batch statistics: dx = ((dy - a1) - xhat * a2) * s.
template <typename T>
void dx_plane(T* dx, const T* dy, const T* x, T m, T rs, T a1, T a2, T s, int64_t HW) {
  for (int64_t i = 0; i < HW; ++i) {
    const T xhat = (x[i] - m) * rs;
    dx[i] = ((dy[i] - a1) - xhat * a2) * s;
  }
}

template <typename T>
int64_t channel_grain(int64_t N, int64_t HW) {
  return std::max<int64_t>(1, bn::kGrainElems / std::max<int64_t>(N * HW, 1));
}

template <typename T>
void forward_impl(T* y, T* mean, T* rstd, T* running_mean, T* running_var, const T* x, const T* gamma,
                  const T* beta, int64_t N, int64_t C, int64_t HW, bool training, T eps, T momentum) {
  assert(!training || N * HW > 1);
  assert(training || (running_mean && running_var));
  const T Nf = static_cast<T>(N * HW), N1 = static_cast<T>(N * HW - 1);
  parallel_for(C, channel_grain<T>(N, HW), [&](int64_t c0, int64_t c1) {
    Scratch<T> mem;
    T s[kGroup];
    for (int64_t cb = c0; cb < c1; cb += kGroup) {
      const int64_t w = std::min(kGroup, c1 - cb);
      T* m = mean + cb;
      T* rs = rstd + cb;
      if (training) {
        channel_sums(s, x, N, C, HW, cb, w, mem);
        for (int64_t j = 0; j < w; ++j) m[j] = s[j] / Nf;
        sqdev_sums(s, x, m, N, C, HW, cb, w, mem);  // second pass: deviations from that mean
        const T a = T(1) - momentum;
        for (int64_t j = 0; j < w; ++j) {
          rs[j] = bn::inv_std(s[j] / Nf, eps);
          if (running_mean) running_mean[cb + j] = a * running_mean[cb + j] + momentum * m[j];
          if (running_var) running_var[cb + j] = a * running_var[cb + j] + momentum * (s[j] / N1);
        }
      } else {
        for (int64_t j = 0; j < w; ++j) m[j] = running_mean[cb + j], rs[j] = bn::inv_std(running_var[cb + j], eps);
      }
    }
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = c0; c < c1; ++c) {
        const int64_t off = (n * C + c) * HW;
        normalize_plane(y + off, x + off, mean[c], rstd[c], gamma ? gamma + c : nullptr, beta ? beta + c : nullptr,
                        HW);
      }
  });
}

template <typename T>
void backward_impl(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* mean, const T* rstd,
                   const T* gamma, int64_t N, int64_t C, int64_t HW, bool training) {
  const T Nf = static_cast<T>(N * HW);
  const bool need_sums = training || dgamma || dbeta;
  parallel_for(C, channel_grain<T>(N, HW), [&](int64_t c0, int64_t c1) {
    Scratch<T> mem;
    T b[2 * kGroup];
    for (int64_t cb = c0; cb < c1; cb += kGroup) {
      const int64_t w = std::min(kGroup, c1 - cb);
      if (need_sums) {
        backward_sums(b, dy, x, mean + cb, rstd + cb, N, C, HW, cb, w, mem);
        for (int64_t j = 0; j < w; ++j) {
          if (dbeta) dbeta[cb + j] = b[j];
          if (dgamma) dgamma[cb + j] = b[w + j];
        }
      }
      if (!dx) continue;
      for (int64_t j = 0; j < w; ++j) {
        const int64_t c = cb + j;
        const T s = gamma ? rstd[c] * gamma[c] : rstd[c];
        for (int64_t n = 0; n < N; ++n) {
          const int64_t off = (n * C + c) * HW;
          if (training) {
            dx_plane(dx + off, dy + off, x + off, mean[c], rstd[c], b[j] / Nf, b[w + j] / Nf, s, HW);
          } else {
            for (int64_t i = 0; i < HW; ++i) dx[off + i] = dy[off + i] * s;
          }
        }
      }
    }
  });
}

}  // namespace
}  // namespace lockstep::bn2d
