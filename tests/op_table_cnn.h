// Op-table rows of the convolutional-network layers over NCHW: pooling and BatchNorm2d
// (included by tests/op_table.h; the columns are documented there). The references are
// double loops written from kernels/pool2d.h and kernels/batchnorm2d.h.
#pragma once
// Included by tests/op_table.h only (after its helpers), never on its own.

namespace lockstep_test {
namespace rows {

struct PoolCase {
  const char* name;
  int kind;  // 0 max, 1 avg, 2 adaptive avg
  Size2 k, s, p;
  bool cip;
  Size2 out;  // adaptive only
};

// The window [h0, h1) x [w0, w1) of output (oh, ow), clipped to the input, and avg's divisor.
struct Window {
  int64_t h0, h1, w0, w1;
  double div;
};

inline Window pool_window(const PoolCase& c, int64_t H, int64_t W, int64_t oh, int64_t ow, int64_t OH, int64_t OW) {
  if (c.kind == 2) {
    Window w{oh * H / OH, ((oh + 1) * H + OH - 1) / OH, ow * W / OW, ((ow + 1) * W + OW - 1) / OW, 0};
    w.div = double((w.h1 - w.h0) * (w.w1 - w.w0));
    return w;
  }
  const int64_t hs = oh * c.s[0] - c.p[0], ws = ow * c.s[1] - c.p[1];
  const int64_t he = std::min(hs + c.k[0], H + c.p[0]), we = std::min(ws + c.k[1], W + c.p[1]);
  Window w{std::max<int64_t>(hs, 0), std::min(he, H), std::max<int64_t>(ws, 0), std::min(we, W), 0};
  w.div = c.cip ? double((he - hs) * (we - ws)) : double((w.h1 - w.h0) * (w.w1 - w.w0));
  return w;
}

// y (and for max the chosen index, the first maximum in window order) per output.
inline Ref ref_pool(const PoolCase& c, const Tensor& xt) {
  const int64_t N = xt.size(0), C = xt.size(1), H = xt.size(2), W = xt.size(3);
  const int64_t OH = c.kind == 2 ? c.out[0] : (H + 2 * c.p[0] - c.k[0]) / c.s[0] + 1;
  const int64_t OW = c.kind == 2 ? c.out[1] : (W + 2 * c.p[1] - c.k[1]) / c.s[1] + 1;
  auto x = vals(xt);
  std::vector<double> y, idx;
  for (int64_t pl = 0; pl < N * C; ++pl)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        const Window w = pool_window(c, H, W, oh, ow, OH, OW);
        double best = -INFINITY, sum = 0;
        int64_t bi = -1;
        for (int64_t h = w.h0; h < w.h1; ++h)
          for (int64_t v = w.w0; v < w.w1; ++v) {
            const double e = x[(pl * H + h) * W + v];
            sum += e;
            if (bi < 0 || e > best) best = e, bi = h * W + v;
          }
        y.push_back(c.kind == 0 ? best : sum / w.div);
        idx.push_back(double(bi));
      }
  return c.kind == 0 ? Ref{y, idx} : Ref{y};
}

inline void pool_rows(std::vector<OpRow>& t) {
  const PoolCase cases[] = {
      {"max_pool2d 2x2", 0, {2, 2}, {2, 2}, {0, 0}, true, {0, 0}},
      {"max_pool2d 3x3 stride 2 pad 1", 0, {3, 3}, {2, 2}, {1, 1}, true, {0, 0}},
      {"max_pool2d 3x2 stride 1x2", 0, {3, 2}, {1, 2}, {1, 0}, true, {0, 0}},
      {"avg_pool2d 2x2", 1, {2, 2}, {2, 2}, {0, 0}, true, {0, 0}},
      {"avg_pool2d 3x3 stride 2 pad 1", 1, {3, 3}, {2, 2}, {1, 1}, true, {0, 0}},
      {"avg_pool2d 3x3 stride 2 pad 1 exclude pad", 1, {3, 3}, {2, 2}, {1, 1}, false, {0, 0}},
      {"adaptive_avg_pool2d 3x2", 2, {0, 0}, {0, 0}, {0, 0}, true, {3, 2}},
      {"adaptive_avg_pool2d 1x1", 2, {0, 0}, {0, 0}, {0, 0}, true, {1, 1}},
  };
  for (const PoolCase& c : cases) {
    // 67 samples x 3 channels of 13 x 11 (odd, no multiple of a window); max rows take
    // multiples of 1/4 so that windows hold ties. Small: 2 x 2 x 5 x 4, distinct values.
    t.push_back(OpRow{c.name,
                      [c](DType dt, bool small) {
                        const Shape s = small ? Shape{2, 2, 5, 4} : Shape{67, 3, 13, 11};
                        return Ins{c.kind == 0 && !small ? rnd_ties(s, 131, dt) : rnd(s, 132, dt)};
                      },
                      [c](const Ins& in, int64_t) {
                        if (c.kind == 0) {
                          auto yi = max_pool2d_with_indices(in[0], c.k, c.s, c.p);
                          return Outs{yi.first, yi.second};
                        }
                        if (c.kind == 1) return Outs{avg_pool2d(in[0], c.k, c.s, c.p, c.cip)};
                        return Outs{adaptive_avg_pool2d(in[0], c.out)};
                      },
                      [c](const Ins& in) { return ref_pool(c, in[0]); }}
                    .tol(c.kind == 0 ? 0 : 3e-7, c.kind == 0 ? 0 : 1e-7)
                    .diff(1)
                    .batch(1, c.kind == 0 ? 3 : 1));
  }
}

inline void batchnorm2d_rows(std::vector<OpRow>& t) {
  // x: 70 x 16 x 5 x 7: three chunks of 32 samples (the last short), planes of 35 (4 vectors of 8
  // and 3 more); 16 channels: two full groups of 8 at 1 and 2 threads (the AVX2 build's vector sums).
  for (bool training : {true, false})
    for (bool affine : {true, false}) {
      std::string name = std::string("batch_norm2d ") + (training ? "training" : "eval") + (affine ? " affine" : "");
      t.push_back(OpRow{name,
                        [affine](DType dt, bool small) {
                          const Shape s = small ? Shape{3, 2, 2, 3} : Shape{70, 16, 5, 7};
                          const int64_t C = s[1];
                          Ins in{rnd(s, 141, dt, -2, 3)};
                          if (affine) in.insert(in.end(), {rnd({C}, 142, dt, 0.5, 1.5), rnd({C}, 143, dt)});
                          in.insert(in.end(), {rnd({C}, 144, dt), rnd({C}, 145, dt, 0.5, 2)});
                          return in;
                        },
                        [affine, training](const Ins& in, int64_t) {
                          const size_t r = affine ? 3 : 1;
                          Tensor rm = in[r].clone(), rv = in[r + 1].clone();
                          Tensor y = batch_norm2d(in[0], rm, rv, affine ? in[1] : Tensor(),
                                                  affine ? in[2] : Tensor(), training, 0.1, 1e-5);
                          return training ? Outs{y, rm, rv} : Outs{y};
                        },
                        [affine, training](const Ins& in) {
                          const int64_t N = in[0].size(0), C = in[0].size(1), HW = in[0].size(2) * in[0].size(3);
                          const size_t r = affine ? 3 : 1;
                          auto x = vals(in[0]), rm = vals(in[r]), rv = vals(in[r + 1]);
                          std::vector<double> y(x.size());
                          const double M = double(N * HW);
                          for (int64_t c = 0; c < C; ++c) {
                            double s = 0, s2 = 0;
                            for (int64_t n = 0; n < N; ++n)
                              for (int64_t i = 0; i < HW; ++i) s += x[(n * C + c) * HW + i];
                            const double mean = s / M;
                            for (int64_t n = 0; n < N; ++n)
                              for (int64_t i = 0; i < HW; ++i) {
                                const double d = x[(n * C + c) * HW + i] - mean;
                                s2 += d * d;
                              }
                            const double m = training ? mean : rm[c], v = training ? s2 / M : rv[c];
                            const double g = affine ? vals(in[1])[c] : 1, b = affine ? vals(in[2])[c] : 0;
                            for (int64_t n = 0; n < N; ++n)
                              for (int64_t i = 0; i < HW; ++i) {
                                const int64_t k = (n * C + c) * HW + i;
                                y[k] = (x[k] - m) / std::sqrt(v + 1e-5) * g + b;
                              }
                            rm[c] = 0.9 * rm[c] + 0.1 * mean;
                            rv[c] = 0.9 * rv[c] + 0.1 * s2 / (M - 1);
                          }
                          return training ? Ref{y, rm, rv} : Ref{y};
                        }}
                      .tol(5e-6, 5e-6)
                      .diff(affine ? 3 : 1)
                      .batch(training ? 0 : 1, training ? 0 : 1));
    }
}

}  // namespace rows
}  // namespace lockstep_test
