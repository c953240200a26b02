// CPU pooling (kernels/pool2d.h). Threads split the planes (N * C); inside a plane every
// output, and in backward every input element, is computed on its own in the order the
// header states, so the thread count never enters the bits.
#include <algorithm>
#include <limits>

#include "base/parallel.h"
#include "kernels/pool2d.h"

namespace lockstep {
namespace {

// Planes per task: about 16K elements of work at least.
template <typename Fn>
void over_planes(const Pool2dGeom& g, const Fn& fn) {
  const int64_t per = std::max<int64_t>(1, std::max(g.H * g.W, g.OH * g.OW));
  parallel_for(g.planes, std::max<int64_t>(1, 16384 / per), fn);
}

}  // namespace

template <typename T>
void max_pool2d_forward_cpu(const Exec&, T* y, int64_t* idx, const T* x, const Pool2dGeom& g) {
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
void max_pool2d_backward_cpu(const Exec&, T* dx, const T* dy, const int64_t* idx, const Pool2dGeom& g) {
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
  template void avg_pool2d_forward_cpu<T>(const Exec&, T*, const T*, const Pool2dGeom&, bool);                \
  template void avg_pool2d_backward_cpu<T>(const Exec&, T*, const T*, const Pool2dGeom&, bool);               \
  template void adaptive_avg_pool2d_forward_cpu<T>(const Exec&, T*, const T*, const Pool2dGeom&);             \
  template void adaptive_avg_pool2d_backward_cpu<T>(const Exec&, T*, const T*, const Pool2dGeom&);
LS_POOL2D(float)
LS_POOL2D(double)
#undef LS_POOL2D

}  // namespace lockstep
