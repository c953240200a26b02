// CPU pooling (kernels/pool2d.h). Threads split the planes (N * C); inside a plane every
// output, and in backward every input element, is computed on its own in the order the
// header states, so the thread count never enters the bits. max_pool2d over windows that
// tile the plane (kernel == stride, no padding) takes a path without clipping or
// pool_covering's divisions (perf: the general loops were a third of a CNN recipe step);
// the general loops (*_loops) serve every other geometry and the tests.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "base/parallel.h"
#include "kernels/pool2d.h"
#include "lockstep/config.h"

namespace lockstep {
namespace {

// Planes per task: about 16K elements of work at least.
template <typename Fn>
void over_planes(const Pool2dGeom& g, const Fn& fn) {
  const int64_t per = std::max<int64_t>(1, std::max(g.H * g.W, g.OH * g.OW));
  parallel_for(g.planes, std::max<int64_t>(1, 16384 / per), fn);
}

}  // namespace

namespace {

// Windows that tile the plane: kernel == stride, no padding (the CNN recipe's 2 x 2 pools).
// Every window is inside the plane and every input element is in at most one window.
bool tiling_windows(const Pool2dGeom& g) { return g.kh == g.sh && g.kw == g.sw && g.ph == 0 && g.pw == 0; }

// Branch-free selection on the bit patterns: the comparisons below are data-dependent coin
// flips on real activations, and as branches they were mispredicted about half the time
// (perf: most of the pooling time of a CNN recipe step).
template <typename T>
struct BitsOf;
template <>
struct BitsOf<float> {
  using type = uint32_t;
};
template <>
struct BitsOf<double> {
  using type = uint64_t;
};

// The general loop's step: v replaces (best, bi) when larger or NaN. Masks instead of
// ?: (GCC turned every form of the two tests into branches, hints included).
template <typename T>
inline void take_if_larger(T v, int64_t i, T& best, int64_t& bi) {
  using U = typename BitsOf<T>::type;
  const int64_t t = int64_t(v > best) | int64_t(v != v);
  const U m = U(0) - U(t);
  U ub, uv;
  std::memcpy(&ub, &best, sizeof(T));
  std::memcpy(&uv, &v, sizeof(T));
  ub = (uv & m) | (ub & ~m);
  std::memcpy(&best, &ub, sizeof(T));
  bi = (i & -t) | (bi & (t - 1));
}

// v when `keep`, else +0 (all bits clear).
template <typename T>
inline T keep_or_zero(bool keep, T v) {
  using U = typename BitsOf<T>::type;
  U u;
  std::memcpy(&u, &v, sizeof(T));
  u &= U(0) - U(keep);
  std::memcpy(&v, &u, sizeof(T));
  return v;
}

// max_pool2d forward over tiling windows of KH x KW (0: g.kh / g.kw at run time): the same
// walk as the general loop, without clipping, the window size known to the compiler. The
// first element always ends up as the running maximum (it replaces -inf, or is -inf), so the
// walk starts from it. The geometry is copied to locals: through the reference, every store
// to y or idx forced it to be reloaded.
template <typename T, int KH, int KW>
void max_pool_tiled(T* y, int64_t* idx, const T* x, const Pool2dGeom& g) {
  const int64_t kh = KH ? KH : g.kh, kw = KW ? KW : g.kw, H = g.H, W = g.W, OH = g.OH, OW = g.OW;
  over_planes(g, [=](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const T* xp = x + p * H * W;
      for (int64_t oh = 0; oh < OH; ++oh) {
        const int64_t h0 = oh * kh;
        T* yr = y + (p * OH + oh) * OW;
        int64_t* ir = idx + (p * OH + oh) * OW;
        for (int64_t ow = 0; ow < OW; ++ow) {
          const int64_t w0 = ow * kw;
          T best = xp[h0 * W + w0];
          int64_t bi = h0 * W + w0;
          for (int64_t h = h0; h < h0 + kh; ++h)
            for (int64_t w = w0; w < w0 + kw; ++w)
              if (h != h0 || w != w0) take_if_larger(xp[h * W + w], h * W + w, best, bi);  // larger, or NaN
          yr[ow] = best;
          ir[ow] = bi;
        }
      }
    }
  });
}

// max_pool2d backward over tiling windows: the gather of the header with its one covering
// window found directly (oh = ih / kh, ow = iw / kw) instead of by pool_covering: dx = +0 +
// dy[o] when window o chose the element, else +0; elements past the last window +0.
template <typename T>
void max_pool_backward_tiled(T* dx, const T* dy, const int64_t* idx, const Pool2dGeom& g) {
  const Pool2dGeom gv = g;  // a local copy: stores to dx cannot alias it
  over_planes(g, [=](int64_t p0, int64_t p1) {
    const Pool2dGeom& g = gv;
    const int64_t kh = g.kh, kw = g.kw;
    for (int64_t p = p0; p < p1; ++p) {
      const T* gp = dy + p * g.OH * g.OW;
      const int64_t* ip = idx + p * g.OH * g.OW;
      T* dxp = dx + p * g.H * g.W;
      for (int64_t oh = 0; oh < g.OH; ++oh)
        for (int64_t ih = oh * kh; ih < (oh + 1) * kh; ++ih) {
          T* row = dxp + ih * g.W;
          for (int64_t ow = 0; ow < g.OW; ++ow) {
            const int64_t o = oh * g.OW + ow, chosen = ip[o];
            const T v = T(0) + gp[o];
            for (int64_t iw = ow * kw; iw < (ow + 1) * kw; ++iw) row[iw] = keep_or_zero(chosen == ih * g.W + iw, v);
          }
          std::fill(row + g.OW * kw, row + g.W, T(0));
        }
      std::fill(dxp + g.OH * kh * g.W, dxp + g.H * g.W, T(0));
    }
  });
}

}  // namespace

template <typename T>
void max_pool2d_forward_cpu(const Exec& ex, T* y, int64_t* idx, const T* x, const Pool2dGeom& g) {
#if LOCKSTEP_HAVE_AVX2
  if constexpr (std::is_same_v<T, float>)
    if (ex.avx2() && tiling_windows(g) && g.kh == 2 && g.kw == 2 && g.W < (int64_t{1} << 30)) {
      const int64_t H = g.H, W = g.W, OH = g.OH, OW = g.OW;
      over_planes(g, [=](int64_t p0, int64_t p1) {
        for (int64_t p = p0; p < p1; ++p)
          for (int64_t oh = 0; oh < OH; ++oh)
            max_pool2x2_row_avx2(x + p * H * W + 2 * oh * W, W, OW, 2 * oh * W, y + (p * OH + oh) * OW,
                                 idx + (p * OH + oh) * OW);
      });
      return;
    }
#endif
  (void)ex;
  if (tiling_windows(g)) {
    if (g.kh == 2 && g.kw == 2) return max_pool_tiled<T, 2, 2>(y, idx, x, g);
    return max_pool_tiled<T, 0, 0>(y, idx, x, g);
  }
  max_pool2d_forward_loops(y, idx, x, g);
}

template <typename T>
void max_pool2d_backward_cpu(const Exec& ex, T* dx, const T* dy, const int64_t* idx, const Pool2dGeom& g) {
#if LOCKSTEP_HAVE_AVX2
  if constexpr (std::is_same_v<T, float>)
    if (ex.avx2() && tiling_windows(g) && g.kh == 2 && g.kw == 2 && g.W < (int64_t{1} << 30)) {
      const int64_t H = g.H, W = g.W, OH = g.OH, OW = g.OW;
      over_planes(g, [=](int64_t p0, int64_t p1) {
        for (int64_t p = p0; p < p1; ++p) {
          T* dxp = dx + p * H * W;
          for (int64_t oh = 0; oh < OH; ++oh) {
            T* r0 = dxp + 2 * oh * W;
            max_pool2x2_backward_row_avx2(r0, W, OW, 2 * oh * W, dy + (p * OH + oh) * OW, idx + (p * OH + oh) * OW);
            std::fill(r0 + 2 * OW, r0 + W, T(0));  // a last odd column: in no window
            std::fill(r0 + W + 2 * OW, r0 + 2 * W, T(0));
          }
          std::fill(dxp + 2 * OH * W, dxp + H * W, T(0));  // a last odd row
        }
      });
      return;
    }
#endif
  (void)ex;
  if (tiling_windows(g)) return max_pool_backward_tiled(dx, dy, idx, g);
  max_pool2d_backward_loops(dx, dy, idx, g);
}

template <typename T>
void max_pool2d_forward_loops(T* y, int64_t* idx, const T* x, const Pool2dGeom& g) {
  over_planes(g, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const T* xp = x + p * g.H * g.W;
      for (int64_t oh = 0; oh < g.OH; ++oh) {
        const int64_t h0 = std::max<int64_t>(0, oh * g.sh - g.ph), h1 = std::min(g.H, oh * g.sh - g.ph + g.kh);
        for (int64_t ow = 0; ow < g.OW; ++ow) {
          const int64_t w0 = std::max<int64_t>(0, ow * g.sw - g.pw), w1 = std::min(g.W, ow * g.sw - g.pw + g.kw);
          T best = -std::numeric_limits<T>::infinity();
          int64_t bi = h0 * g.W + w0;
          for (int64_t h = h0; h < h1; ++h)
            for (int64_t w = w0; w < w1; ++w) {
              const T v = xp[h * g.W + w];
              if (v > best || v != v) best = v, bi = h * g.W + w;  // larger, or NaN (PyTorch)
            }
          const int64_t o = (p * g.OH + oh) * g.OW + ow;
          y[o] = best;
          idx[o] = bi;
        }
      }
    }
  });
}

template <typename T>
void max_pool2d_backward_loops(T* dx, const T* dy, const int64_t* idx, const Pool2dGeom& g) {
  over_planes(g, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const T* gp = dy + p * g.OH * g.OW;
      const int64_t* ip = idx + p * g.OH * g.OW;
      for (int64_t ih = 0; ih < g.H; ++ih) {
        int64_t oh0, oh1;
        pool_covering(ih, g.kh, g.sh, g.ph, g.OH, &oh0, &oh1);
        for (int64_t iw = 0; iw < g.W; ++iw) {
          int64_t ow0, ow1;
          pool_covering(iw, g.kw, g.sw, g.pw, g.OW, &ow0, &ow1);
          const int64_t me = ih * g.W + iw;
          T acc = T(0);
          for (int64_t oh = oh0; oh <= oh1; ++oh)
            for (int64_t ow = ow0; ow <= ow1; ++ow)
              if (ip[oh * g.OW + ow] == me) acc += gp[oh * g.OW + ow];
          dx[p * g.H * g.W + me] = acc;
        }
      }
    }
  });
}

template <typename T>
void avg_pool2d_forward_cpu(const Exec&, T* y, const T* x, const Pool2dGeom& g, bool count_include_pad) {
  over_planes(g, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const T* xp = x + p * g.H * g.W;
      for (int64_t oh = 0; oh < g.OH; ++oh) {
        const int64_t h0 = std::max<int64_t>(0, oh * g.sh - g.ph), h1 = std::min(g.H, oh * g.sh - g.ph + g.kh);
        for (int64_t ow = 0; ow < g.OW; ++ow) {
          const int64_t w0 = std::max<int64_t>(0, ow * g.sw - g.pw), w1 = std::min(g.W, ow * g.sw - g.pw + g.kw);
          T acc = T(0);
          for (int64_t h = h0; h < h1; ++h)
            for (int64_t w = w0; w < w1; ++w) acc += xp[h * g.W + w];
          y[(p * g.OH + oh) * g.OW + ow] = acc / static_cast<T>(avg_pool_div(g, oh, ow, count_include_pad));
        }
      }
    }
  });
}

template <typename T>
void avg_pool2d_backward_cpu(const Exec&, T* dx, const T* dy, const Pool2dGeom& g, bool count_include_pad) {
  over_planes(g, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const T* gp = dy + p * g.OH * g.OW;
      for (int64_t ih = 0; ih < g.H; ++ih) {
        int64_t oh0, oh1;
        pool_covering(ih, g.kh, g.sh, g.ph, g.OH, &oh0, &oh1);
        for (int64_t iw = 0; iw < g.W; ++iw) {
          int64_t ow0, ow1;
          pool_covering(iw, g.kw, g.sw, g.pw, g.OW, &ow0, &ow1);
          T acc = T(0);
          for (int64_t oh = oh0; oh <= oh1; ++oh)
            for (int64_t ow = ow0; ow <= ow1; ++ow)
              acc += gp[oh * g.OW + ow] / static_cast<T>(avg_pool_div(g, oh, ow, count_include_pad));
          dx[(p * g.H + ih) * g.W + iw] = acc;
        }
      }
    }
  });
}

template <typename T>
void adaptive_avg_pool2d_forward_cpu(const Exec&, T* y, const T* x, const Pool2dGeom& g) {
  over_planes(g, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const T* xp = x + p * g.H * g.W;
      for (int64_t oh = 0; oh < g.OH; ++oh) {
        const int64_t h0 = adaptive_start(oh, g.H, g.OH), h1 = adaptive_end(oh, g.H, g.OH);
        for (int64_t ow = 0; ow < g.OW; ++ow) {
          const int64_t w0 = adaptive_start(ow, g.W, g.OW), w1 = adaptive_end(ow, g.W, g.OW);
          T acc = T(0);
          for (int64_t h = h0; h < h1; ++h)
            for (int64_t w = w0; w < w1; ++w) acc += xp[h * g.W + w];
          y[(p * g.OH + oh) * g.OW + ow] = acc / static_cast<T>((h1 - h0) * (w1 - w0));
        }
      }
    }
  });
}

template <typename T>
void adaptive_avg_pool2d_backward_cpu(const Exec&, T* dx, const T* dy, const Pool2dGeom& g) {
  over_planes(g, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const T* gp = dy + p * g.OH * g.OW;
      for (int64_t ih = 0; ih < g.H; ++ih)
        for (int64_t iw = 0; iw < g.W; ++iw) {
          T acc = T(0);
          for (int64_t oh = 0; oh < g.OH; ++oh) {
            const int64_t h0 = adaptive_start(oh, g.H, g.OH), h1 = adaptive_end(oh, g.H, g.OH);
            if (ih < h0 || ih >= h1) continue;
            for (int64_t ow = 0; ow < g.OW; ++ow) {
              const int64_t w0 = adaptive_start(ow, g.W, g.OW), w1 = adaptive_end(ow, g.W, g.OW);
              if (iw < w0 || iw >= w1) continue;
              acc += gp[oh * g.OW + ow] / static_cast<T>((h1 - h0) * (w1 - w0));
            }
          }
          dx[(p * g.H + ih) * g.W + iw] = acc;
        }
    }
  });
}

#define LS_POOL2D(T)                                                                                          \
  template void max_pool2d_forward_cpu<T>(const Exec&, T*, int64_t*, const T*, const Pool2dGeom&);            \
  template void max_pool2d_backward_cpu<T>(const Exec&, T*, const T*, const int64_t*, const Pool2dGeom&);     \
  template void max_pool2d_forward_loops<T>(T*, int64_t*, const T*, const Pool2dGeom&);                       \
  template void max_pool2d_backward_loops<T>(T*, const T*, const int64_t*, const Pool2dGeom&);                \
  template void avg_pool2d_forward_cpu<T>(const Exec&, T*, const T*, const Pool2dGeom&, bool);                \
  template void avg_pool2d_backward_cpu<T>(const Exec&, T*, const T*, const Pool2dGeom&, bool);               \
  template void adaptive_avg_pool2d_forward_cpu<T>(const Exec&, T*, const T*, const Pool2dGeom&);             \
  template void adaptive_avg_pool2d_backward_cpu<T>(const Exec&, T*, const T*, const Pool2dGeom&);
LS_POOL2D(float)
LS_POOL2D(double)
#undef LS_POOL2D

}  // namespace lockstep
