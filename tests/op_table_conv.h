// Op-table rows of conv2d (tests/op_table.h): one row per feature of the op (stride,
// padding, dilation, groups, depthwise, no bias, rectangular arguments) on batches that
// cross the 32-sample chunk of the grad-weight order, with a double-loop reference.
#pragma once
#include "core/ops.h"

namespace lockstep_test {
namespace rows {

// y = conv2d(x, w, b) in double from the documented formula (core/ops/conv.cpp).
inline std::vector<double> ref_conv2d(const Tensor& x, const Tensor& w, const Tensor& b,
                                      const lockstep::Conv2dArgs& a) {
  auto vx = vals(x), vw = vals(w);
  std::vector<double> vb = b.defined() ? vals(b) : std::vector<double>();
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t O = w.size(0), Cg = w.size(1), KH = w.size(2), KW = w.size(3), Og = O / a.groups;
  const int64_t OH = (H + 2 * a.padding[0] - a.dilation[0] * (KH - 1) - 1) / a.stride[0] + 1;
  const int64_t OW = (W + 2 * a.padding[1] - a.dilation[1] * (KW - 1) - 1) / a.stride[1] + 1;
  std::vector<double> y;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double s = vb.empty() ? 0.0 : vb[o];
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t i = 0; i < KH; ++i)
              for (int64_t j = 0; j < KW; ++j) {
                const int64_t ih = oh * a.stride[0] - a.padding[0] + i * a.dilation[0];
                const int64_t iw = ow * a.stride[1] - a.padding[1] + j * a.dilation[1];
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                s += vw[((o * Cg + c) * KH + i) * KW + j] * vx[((n * C + (o / Og) * Cg + c) * H + ih) * W + iw];
              }
          y.push_back(s);
        }
  return y;
}

inline void conv_rows(std::vector<OpRow>& t) {
  struct Case {
    const char* name;
    int64_t N, C, H, W, O, KH, KW;
    lockstep::Conv2dArgs a;
    bool bias;
  };
  lockstep::Conv2dArgs rect;  // different arguments along h and w
  rect.stride[0] = 2, rect.stride[1] = 1, rect.padding[0] = 0, rect.padding[1] = 2, rect.dilation[0] = 1,
  rect.dilation[1] = 2;
  // N = 35: one full chunk of 32 samples and a tail; 70: two chunks and a tail (odd tree).
  const Case cases[] = {
      {"conv2d 3x3 pad 1", 35, 3, 11, 13, 5, 3, 3, {1, 1}, true},
      {"conv2d no bias", 35, 4, 9, 9, 6, 3, 3, {1, 1}, false},
      {"conv2d stride 2", 35, 3, 12, 11, 4, 3, 3, {2, 1}, true},
      {"conv2d dilation 2", 35, 2, 11, 11, 3, 3, 3, {1, 2, 2}, true},
      {"conv2d groups 2", 35, 4, 9, 10, 6, 3, 3, {1, 1, 1, 2}, true},
      {"conv2d depthwise", 35, 5, 9, 9, 10, 3, 3, {1, 1, 1, 5}, true},
      {"conv2d 5x5 pad 2", 35, 1, 14, 14, 6, 5, 5, {1, 2}, true},
      {"conv2d 1x1", 70, 19, 5, 5, 21, 1, 1, {1, 0}, true},
      {"conv2d 2x3 rectangular", 35, 3, 10, 9, 4, 2, 3, rect, true},
      {"conv2d wide 3x3", 70, 17, 7, 7, 33, 3, 3, {1, 1}, true},
  };
  for (const Case& c : cases)
    t.push_back(OpRow{c.name,
                      [c](DType dt, bool small) {
                        const int64_t N = small ? 2 : c.N, H = small ? std::min<int64_t>(c.H, 6) : c.H;
                        const int64_t W = small ? std::min<int64_t>(c.W, 7) : c.W;
                        const int64_t C = small && c.a.groups == 1 ? std::min<int64_t>(c.C, 2) : c.C;
                        const int64_t O = small && c.a.groups == 1 ? std::min<int64_t>(c.O, 3) : c.O;
                        return Ins{rnd({N, C, H, W}, 71, dt), rnd({O, C / c.a.groups, c.KH, c.KW}, 72, dt),
                                   c.bias ? rnd({O}, 73, dt) : Tensor()};
                      },
                      [c](const Ins& in, int64_t) { return Outs{lockstep::conv2d(in[0], in[1], in[2], c.a)}; },
                      [c](const Ins& in) { return Ref{ref_conv2d(in[0], in[1], in[2], c.a)}; }}
                    .tol(1e-5, 2e-5).diff(c.bias ? 3 : 2).batch(1, 1));
}

}  // namespace rows
}  // namespace lockstep_test
