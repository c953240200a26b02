// conv2d kernels (kernels/conv2d.h): the deterministic kernels equal the plain loops of the
// documented orders bit for bit at every SIMD level and thread count; the fast-mode
// algorithms stay within the documented bound of a float64 reference.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "base/parallel.h"
#include "base/simd.h"
#include "kernels/conv2d.h"
#include "test_util.h"

using namespace lockstep;
using lockstep_test::random_floats;

namespace {

Conv2dDims dims(int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t KH, int64_t KW, int64_t stride,
                int64_t pad, int64_t dil, int64_t groups) {
  Conv2dDims d;
  d.N = N, d.C = C, d.H = H, d.W = W, d.O = O, d.KH = KH, d.KW = KW;
  d.stride_h = d.stride_w = stride, d.pad_h = d.pad_w = pad, d.dil_h = d.dil_w = dil, d.groups = groups;
  d.OH = (H + 2 * pad - dil * (KH - 1) - 1) / stride + 1;
  d.OW = (W + 2 * pad - dil * (KW - 1) - 1) / stride + 1;
  return d;
}

struct Data {
  std::vector<float> x, w, b, dy;
  explicit Data(const Conv2dDims& d)
      : x(random_floats(d.N * d.C * d.H * d.W, 1)),
        w(random_floats(d.O * d.cg() * d.KH * d.KW, 2)),
        b(random_floats(d.O, 3)),
        dy(random_floats(d.N * d.O * d.p(), 4)) {}
};

bool same(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), sizeof(float) * a.size()) == 0;
}

// Padding in w only: OW == W but OH < H (im2col's one-span path, no padding rows).
Conv2dDims rows_unpadded() {
  Conv2dDims d = dims(5, 3, 9, 6, 4, 3, 3, 1, 1, 1, 1);
  d.pad_h = 0;
  d.OH = d.H - 2;
  return d;
}

std::vector<Conv2dDims> shapes() {
  return {dims(35, 3, 11, 13, 5, 3, 3, 1, 1, 1, 1), dims(70, 4, 9, 8, 6, 3, 3, 2, 1, 1, 2),
          dims(33, 6, 10, 10, 6, 3, 3, 1, 2, 2, 6), dims(3, 17, 7, 7, 19, 5, 5, 1, 2, 1, 1), rows_unpadded(),
          // K = 600: two k blocks of the packed forward; 33 outputs: an edge strip of 1 channel.
          dims(3, 24, 6, 6, 33, 5, 5, 1, 2, 1, 1)};
}

}  // namespace

TEST_CASE("conv2d kernels: the documented orders, bit for bit, any SIMD level and thread count",
          "[conv2d][deterministic]") {
  for (const Conv2dDims& d : shapes()) {
    Data v(d);
    const size_t ny = d.N * d.O * d.p(), nx = v.x.size(), nw = v.w.size();
    std::vector<float> y_ref(ny), dx_ref(nx), dw_ref(nw), db_ref(d.O);
    conv2d_forward_ref(d, y_ref.data(), v.x.data(), v.w.data(), v.b.data());
    conv2d_backward_input_ref(d, dx_ref.data(), v.dy.data(), v.w.data());
    conv2d_backward_weight_ref(d, dw_ref.data(), db_ref.data(), v.dy.data(), v.x.data());
    for (int l = 0; l <= static_cast<int>(simd_level_available()); ++l)
      for (int threads : {1, 3}) {
        INFO("N " << d.N << " C " << d.C << " groups " << d.groups << ", SIMD level " << l << ", threads " << threads);
        ThreadsGuard th(threads);
        const Exec ex{Mode::deterministic, static_cast<SimdLevel>(l), false};
        std::vector<float> y(ny), dx(nx, 7.f), dw(nw, 7.f), db(d.O, 7.f);
        conv2d_forward_cpu(ex, d, y.data(), v.x.data(), v.w.data(), v.b.data());
        conv2d_backward_input_cpu(ex, d, dx.data(), v.dy.data(), v.w.data());
        conv2d_backward_weight_cpu(ex, d, dw.data(), db.data(), v.dy.data(), v.x.data());
        REQUIRE(same(y, y_ref));
        REQUIRE(same(dx, dx_ref));
        REQUIRE(same(dw, dw_ref));
        REQUIRE(same(db, db_ref));
      }
  }
}

TEST_CASE("conv2d kernels: the forward of a sample does not depend on the batch", "[conv2d][deterministic]") {
  Conv2dDims d = dims(40, 5, 9, 9, 7, 3, 3, 1, 1, 1, 1);
  Data v(d);
  std::vector<float> y(d.N * d.O * d.p()), y1(d.O * d.p());
  const Exec ex = Exec::current();
  conv2d_forward_cpu(ex, d, y.data(), v.x.data(), v.w.data(), v.b.data());
  Conv2dDims one = d;
  one.N = 1;
  const int64_t n = 37;
  conv2d_forward_cpu(ex, one, y1.data(), v.x.data() + n * d.C * d.H * d.W, v.w.data(), v.b.data());
  REQUIRE(std::memcmp(y1.data(), y.data() + n * d.O * d.p(), sizeof(float) * y1.size()) == 0);
}

TEST_CASE("conv2d fast mode: the forward within 1e-5 of float64, the backward within 1e-5 sum |terms|",
          "[conv2d][fast]") {
  for (const Conv2dDims& d : {dims(9, 8, 12, 11, 16, 3, 3, 1, 1, 1, 1), dims(5, 4, 9, 9, 6, 3, 3, 1, 0, 1, 2),
                              dims(4, 6, 10, 9, 5, 3, 3, 2, 1, 1, 1)}) {
    Data v(d);
    std::vector<double> xd(v.x.begin(), v.x.end()), wd(v.w.begin(), v.w.end()), bd(v.b.begin(), v.b.end());
    std::vector<double> dyd(v.dy.begin(), v.dy.end());
    std::vector<double> y64(d.N * d.O * d.p()), dx64(xd.size()), dw64(wd.size()), db64(d.O);
    const Exec ex{Mode::fast, simd_level(), false};
    conv2d_forward_cpu(ex, d, y64.data(), xd.data(), wd.data(), bd.data());
    conv2d_backward_input_cpu(ex, d, dx64.data(), dyd.data(), wd.data());
    conv2d_backward_weight_cpu(ex, d, dw64.data(), db64.data(), dyd.data(), xd.data());
    for (Conv2dAlgo a : {Conv2dAlgo::canonical, Conv2dAlgo::im2col_gemm, Conv2dAlgo::direct, Conv2dAlgo::winograd}) {
      std::vector<float> y(y64.size());
      const Conv2dAlgo ran = conv2d_forward_fast_cpu(ex, a, d, y.data(), v.x.data(), v.w.data(), v.b.data());
      INFO(conv2d_algo_name(a) << " ran " << conv2d_algo_name(ran) << ", stride " << d.stride_h);
      REQUIRE((ran == a || (a == Conv2dAlgo::winograd && !conv2d_algo_applies(a, d))));
      std::vector<double> got(y.begin(), y.end());
      REQUIRE_ALLCLOSE(got, y64, 1e-5, 1e-5);
    }
    // Backward: sums over the batch, bounded by 1e-5 sum |terms| (the same kernels on |x|,
    // |w| and |dy| in float64 give sum |terms| per element).
    auto absv = [](std::vector<double> v) {
      for (double& e : v) e = std::fabs(e);
      return v;
    };
    const std::vector<double> xa = absv(xd), wa = absv(wd), dya = absv(dyd);
    std::vector<double> dx_abs(xd.size()), dw_abs(wd.size()), db_abs(d.O);
    conv2d_backward_input_cpu(ex, d, dx_abs.data(), dya.data(), wa.data());
    conv2d_backward_weight_cpu(ex, d, dw_abs.data(), db_abs.data(), dya.data(), xa.data());
    std::vector<float> dx(xd.size()), dw(wd.size()), db(d.O);
    conv2d_backward_input_fast_cpu(ex, d, dx.data(), v.dy.data(), v.w.data());
    conv2d_backward_weight_fast_cpu(ex, d, dw.data(), db.data(), v.dy.data(), v.x.data());
    auto within = [](const std::vector<float>& got, const std::vector<double>& ref, const std::vector<double>& mag) {
      for (size_t i = 0; i < got.size(); ++i)
        if (std::fabs(double(got[i]) - ref[i]) > 1e-5 * mag[i] + 1e-7) return false;
      return true;
    };
    REQUIRE(within(dx, dx64, dx_abs));
    REQUIRE(within(dw, dw64, dw_abs));
    REQUIRE(within(db, db64, db_abs));
  }
}

TEST_CASE("conv2d fast mode: the autotuner picks an applicable algorithm and keeps it", "[conv2d][fast]") {
  conv2d_autotune_reset();
  Conv2dDims d = dims(4, 8, 12, 12, 8, 3, 3, 1, 1, 1, 1);
  Data v(d);
  const Exec ex{Mode::fast, simd_level(), false};
  std::vector<float> y(d.N * d.O * d.p());
  const Conv2dAlgo first = conv2d_forward_fast_cpu(ex, Conv2dAlgo::autotune, d, y.data(), v.x.data(), v.w.data(),
                                                   v.b.data());
  REQUIRE(first != Conv2dAlgo::autotune);
  REQUIRE(conv2d_algo_applies(first, d));
  for (int i = 0; i < 3; ++i)
    REQUIRE(conv2d_forward_fast_cpu(ex, Conv2dAlgo::autotune, d, y.data(), v.x.data(), v.w.data(), v.b.data()) ==
            first);
}
