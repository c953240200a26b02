// The CPU BatchNorm2d loops of kernels/batchnorm2d.h as templates, compiled twice: by
// batchnorm2d_cpu.cpp (portable) and batchnorm2d_avx2.cpp (-mavx2 -mfma, when ex.avx2()).
// The per-channel sums run in the batch order with one sample as the row (bn::batch_sums
// with Wide<T> partials): add_row adds the sample's H*W terms of each channel in position order into the
// chunk partial, which is held in double (Wide<T>) and rounded to T once, when the chunk ends.
// Up to kGroup channels advance together (independent chains, for instruction-level
// parallelism); each channel's order is the header's whatever the grouping. The plane
// passes (normalise, dx) are elementwise over one contiguous plane and vectorise freely.
#pragma once
#include "kernels/batchnorm2d.h"
#include "kernels/batchnorm_impl.h"

namespace lockstep::bn2d {
namespace {

using bn::Scratch;
constexpr int64_t kGroup = 8;

// The chunk partial's type: double for float data. A chunk adds 32 * H * W terms (25,088 on
// 28 x 28) in one chain; in float that loses up to ~1e-3 of a cancelling sum such as a
// channel's sum of dy, in double ~1e-12. Wide<double> is double.
template <typename T>
using Wide = double;

// s[0 .. w) = sums of x over channels [c0, c0 + w), w <= kGroup.
template <typename T>
void channel_sums(T* s, const T* x, int64_t N, int64_t C, int64_t HW, int64_t c0, int64_t w, Scratch<T>& mem) {
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
