// CUDA conv2d, pooling and BatchNorm2d kernels called directly, beyond the float32 op-table
// rows (tests/op_table_cnn.h, op_table_conv.h, run by test_op_table.cpp):
//   - float64 (the op table runs float32 only): every conv2d, pooling and BatchNorm2d kernel
//     against its CPU twin, bit for bit, on a batch of 70 (three 32-sample chunks: the
//     tree fold has an odd level) with stride, padding, dilation and groups;
//   - conv2d grad-weight and grad-bias in fast mode (chunk partials added with atomicAdd):
//     within 1e-5 * sum |terms| of the deterministic result, run-to-run changes reported
//     with WARN, never asserted.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>

#include "base/mode.h"
#include "cuda_test_util.h"
#include "kernels/batchnorm2d.h"
#include "kernels/conv2d.h"
#include "kernels/pool2d.h"

using namespace lockstep;
using namespace lockstep_cuda_test;

namespace {

template <typename T>
bool same_bytes(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

Conv2dDims conv_dims() {
  Conv2dDims d;
  d.N = 70, d.C = 4, d.H = 9, d.W = 8, d.O = 6, d.KH = 3, d.KW = 2;
  d.stride_h = 2, d.stride_w = 1, d.pad_h = 1, d.pad_w = 1, d.dil_h = 1, d.dil_w = 2, d.groups = 2;
  d.OH = (d.H + 2 * d.pad_h - d.dil_h * (d.KH - 1) - 1) / d.stride_h + 1;
  d.OW = (d.W + 2 * d.pad_w - d.dil_w * (d.KW - 1) - 1) / d.stride_w + 1;
  return d;
}

int64_t sz(const Conv2dDims& d, char which) {
  switch (which) {
    case 'x': return d.N * d.C * d.H * d.W;
    case 'w': return d.O * d.k();
    default: return d.N * d.O * d.p();  // y
  }
}

}  // namespace

TEST_CASE("cuda conv2d float64: forward, grad-input, grad-weight and grad-bias equal the CPU's bits",
          "[cuda][conv2d][deterministic]") {
  ModeGuard mode(Mode::deterministic);
  const Exec ex = Exec::current();
  const Conv2dDims d = conv_dims();
  const auto x = lockstep_test::random_doubles(static_cast<size_t>(sz(d, 'x')), 31, -2, 2);
  const auto w = lockstep_test::random_doubles(static_cast<size_t>(sz(d, 'w')), 32, -1, 1);
  const auto b = lockstep_test::random_doubles(static_cast<size_t>(d.O), 33, -1, 1);
  const auto dy = lockstep_test::random_doubles(static_cast<size_t>(sz(d, 'y')), 34, -1, 1);
  std::vector<double> y(dy.size()), dx(x.size()), dw(w.size()), db(b.size());
  conv2d_forward_cpu(ex, d, y.data(), x.data(), w.data(), b.data());
  conv2d_backward_input_cpu(ex, d, dx.data(), dy.data(), w.data());
  conv2d_backward_weight_cpu(ex, d, dw.data(), db.data(), dy.data(), x.data());

  Tensor xg = dev(x), wg = dev(w), bg = dev(b), dyg = dev(dy);
  Tensor yg = dev_empty<double>(sz(d, 'y')), dxg = dev_empty<double>(sz(d, 'x'));
  Tensor dwg = dev_empty<double>(sz(d, 'w')), dbg = dev_empty<double>(d.O);
  conv2d_forward_cuda(ex, d, ptr<double>(yg), ptr<double>(xg), ptr<double>(wg), ptr<double>(bg));
  conv2d_backward_input_cuda(ex, d, ptr<double>(dxg), ptr<double>(dyg), ptr<double>(wg));
  conv2d_backward_weight_cuda(ex, d, ptr<double>(dwg), ptr<double>(dbg), ptr<double>(dyg), ptr<double>(xg));
  CHECK(same_bytes(host<double>(yg, sz(d, 'y')), y));
  CHECK(same_bytes(host<double>(dxg, sz(d, 'x')), dx));
  CHECK(same_bytes(host<double>(dwg, sz(d, 'w')), dw));
  CHECK(same_bytes(host<double>(dbg, d.O), db));
  // Without a bias: forward without the addition, grad-weight without grad-bias.
  conv2d_forward_cpu(ex, d, y.data(), x.data(), w.data(), static_cast<const double*>(nullptr));
  conv2d_forward_cuda(ex, d, ptr<double>(yg), ptr<double>(xg), ptr<double>(wg), static_cast<const double*>(nullptr));
  CHECK(same_bytes(host<double>(yg, sz(d, 'y')), y));
}

TEST_CASE("cuda fast atomics: conv2d grad-weight and grad-bias within the atomic-sum bound",
          "[cuda][conv2d][fast]") {
  const Conv2dDims d = conv_dims();
  const auto x = lockstep_test::random_floats(static_cast<size_t>(sz(d, 'x')), 41, -2.f, 2.f);
  const auto dy = lockstep_test::random_floats(static_cast<size_t>(sz(d, 'y')), 42, -1.f, 1.f);
  // sum |terms| of each output: the same sums over |dy| and |x| (float reference loops).
  std::vector<float> ax(x.size()), ady(dy.size()), mag_w(static_cast<size_t>(sz(d, 'w'))), mag_b(d.O);
  for (size_t i = 0; i < x.size(); ++i) ax[i] = std::fabs(x[i]);
  for (size_t i = 0; i < dy.size(); ++i) ady[i] = std::fabs(dy[i]);
  conv2d_backward_weight_ref(d, mag_w.data(), mag_b.data(), ady.data(), ax.data());

  auto run = [&](Mode m) {
    ModeGuard mode(m);
    Tensor xg = dev(x), dyg = dev(dy);
    Tensor dwg = dev_empty<float>(sz(d, 'w')), dbg = dev_empty<float>(d.O);
    conv2d_backward_weight_cuda(Exec::current(), d, ptr<float>(dwg), ptr<float>(dbg), ptr<float>(dyg),
                                ptr<float>(xg));
    return std::make_pair(host<float>(dwg, sz(d, 'w')), host<float>(dbg, d.O));
  };
  const auto det = run(Mode::deterministic);
  int differ = 0;
  const auto first = run(Mode::fast);
  for (int r = 0; r < 4; ++r) {
    const auto fast = r == 0 ? first : run(Mode::fast);
    if (!same_bytes(fast.first, first.first) || !same_bytes(fast.second, first.second)) ++differ;
    for (size_t i = 0; i < det.first.size(); ++i) {
      INFO("dw[" << i << "]: fast " << fast.first[i] << ", deterministic " << det.first[i]);
      REQUIRE(std::fabs(double(fast.first[i]) - det.first[i]) <= 1e-5 * mag_w[i]);
    }
    for (size_t i = 0; i < det.second.size(); ++i) {
      INFO("db[" << i << "]: fast " << fast.second[i] << ", deterministic " << det.second[i]);
      REQUIRE(std::fabs(double(fast.second[i]) - det.second[i]) <= 1e-5 * mag_b[i]);
    }
  }
  WARN("fast mode, conv2d grad-weight/grad-bias: " << differ << " of 3 repeated runs differ in their bits");
}

TEST_CASE("cuda pooling float64: max, average and adaptive pooling equal the CPU's bits",
          "[cuda][pool2d][deterministic]") {
  ModeGuard mode(Mode::deterministic);
  const Exec ex = Exec::current();
  Pool2dGeom g;
  g.planes = 6, g.H = 9, g.W = 7, g.kh = 3, g.kw = 2, g.sh = 2, g.sw = 2, g.ph = 1, g.pw = 1;
  g.OH = (g.H + 2 * g.ph - g.kh) / g.sh + 1, g.OW = (g.W + 2 * g.pw - g.kw) / g.sw + 1;
  const int64_t nin = g.planes * g.H * g.W, nout = g.planes * g.OH * g.OW;
  auto x = lockstep_test::random_doubles(static_cast<size_t>(nin), 51, -2, 2);
  x[5] = std::nan("");  // a NaN wins its windows
  const auto dy = lockstep_test::random_doubles(static_cast<size_t>(nout), 52, -1, 1);
  Tensor xg = dev(x), dyg = dev(dy), yg = dev_empty<double>(nout), dxg = dev_empty<double>(nin);
  Tensor idxg = dev_empty<int64_t>(nout);
  std::vector<double> y(static_cast<size_t>(nout)), dx(static_cast<size_t>(nin));
  std::vector<int64_t> idx(static_cast<size_t>(nout));

  max_pool2d_forward_cpu(ex, y.data(), idx.data(), x.data(), g);
  max_pool2d_forward_cuda(ex, ptr<double>(yg), ptr<int64_t>(idxg), ptr<double>(xg), g);
  CHECK(same_bytes(host<double>(yg, nout), y));
  CHECK(host<int64_t>(idxg, nout) == idx);
  max_pool2d_backward_cpu(ex, dx.data(), dy.data(), idx.data(), g);
  max_pool2d_backward_cuda(ex, ptr<double>(dxg), ptr<double>(dyg), ptr<int64_t>(idxg), g);
  CHECK(same_bytes(host<double>(dxg, nin), dx));
  for (bool cip : {true, false}) {
    avg_pool2d_forward_cpu(ex, y.data(), x.data(), g, cip);
    avg_pool2d_forward_cuda(ex, ptr<double>(yg), ptr<double>(xg), g, cip);
    CHECK(same_bytes(host<double>(yg, nout), y));
    avg_pool2d_backward_cpu(ex, dx.data(), dy.data(), g, cip);
    avg_pool2d_backward_cuda(ex, ptr<double>(dxg), ptr<double>(dyg), g, cip);
    CHECK(same_bytes(host<double>(dxg, nin), dx));
  }
  Pool2dGeom a = g;
  a.OH = 4, a.OW = 3;  // overlapping adaptive windows: 9 -> 4, 7 -> 3
  const int64_t na = a.planes * a.OH * a.OW;
  std::vector<double> ya(static_cast<size_t>(na));
  adaptive_avg_pool2d_forward_cpu(ex, ya.data(), x.data(), a);
  adaptive_avg_pool2d_forward_cuda(ex, ptr<double>(yg), ptr<double>(xg), a);
  CHECK(same_bytes(host<double>(yg, na), ya));
  adaptive_avg_pool2d_backward_cpu(ex, dx.data(), dy.data(), a);
  adaptive_avg_pool2d_backward_cuda(ex, ptr<double>(dxg), ptr<double>(dyg), a);
  CHECK(same_bytes(host<double>(dxg, nin), dx));
}

TEST_CASE("cuda BatchNorm2d float64: training and eval, forward and backward equal the CPU's bits",
          "[cuda][batchnorm2d][deterministic]") {
  ModeGuard mode(Mode::deterministic);
  const Exec ex = Exec::current();
  const int64_t N = 70, C = 3, HW = 5 * 4, n = N * C * HW;
  const auto x = lockstep_test::random_doubles(static_cast<size_t>(n), 61, -2, 5);
  const auto dy = lockstep_test::random_doubles(static_cast<size_t>(n), 62, -1, 1);
  const auto gamma = lockstep_test::random_doubles(static_cast<size_t>(C), 63, 0.5, 1.5);
  const auto beta = lockstep_test::random_doubles(static_cast<size_t>(C), 64, -1, 1);
  const auto rv0 = lockstep_test::random_doubles(static_cast<size_t>(C), 65, 0.5, 2);
  const auto rm0 = lockstep_test::random_doubles(static_cast<size_t>(C), 66, -1, 1);
  for (bool training : {true, false}) {
    INFO((training ? "training" : "eval"));
    std::vector<double> y(n), mean(C), rstd(C), rm = rm0, rv = rv0, dx(n), dg(C), db(C);
    batchnorm2d_forward_cpu(ex, y.data(), mean.data(), rstd.data(), rm.data(), rv.data(), x.data(), gamma.data(),
                            beta.data(), N, C, HW, training, 1e-5, 0.1);
    batchnorm2d_backward_cpu(ex, dx.data(), dg.data(), db.data(), dy.data(), x.data(), mean.data(), rstd.data(),
                             gamma.data(), N, C, HW, training);
    Tensor xg = dev(x), dyg = dev(dy), gg = dev(gamma), bg = dev(beta), rmg = dev(rm0), rvg = dev(rv0);
    Tensor yg = dev_empty<double>(n), mg = dev_empty<double>(C), sg = dev_empty<double>(C);
    Tensor dxg = dev_empty<double>(n), dgg = dev_empty<double>(C), dbg = dev_empty<double>(C);
    batchnorm2d_forward_cuda(ex, ptr<double>(yg), ptr<double>(mg), ptr<double>(sg), ptr<double>(rmg),
                             ptr<double>(rvg), ptr<double>(xg), ptr<double>(gg), ptr<double>(bg), N, C, HW, training,
                             1e-5, 0.1);
    batchnorm2d_backward_cuda(ex, ptr<double>(dxg), ptr<double>(dgg), ptr<double>(dbg), ptr<double>(dyg),
                              ptr<double>(xg), ptr<double>(mg), ptr<double>(sg), ptr<double>(gg), N, C, HW, training);
    CHECK(same_bytes(host<double>(yg, n), y));
    CHECK(same_bytes(host<double>(mg, C), mean));
    CHECK(same_bytes(host<double>(sg, C), rstd));
    CHECK(same_bytes(host<double>(rmg, C), rm));
    CHECK(same_bytes(host<double>(rvg, C), rv));
    CHECK(same_bytes(host<double>(dxg, n), dx));
    CHECK(same_bytes(host<double>(dgg, C), dg));
    CHECK(same_bytes(host<double>(dbg, C), db));
  }
}
