// max_pool2d kernels (kernels/pool2d.h): the path for windows that tile the plane gives the
// general loops' bits (y, idx, dx), ties, NaN, -0 and uncovered trailing rows included.
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "base/parallel.h"
#include "base/simd.h"
#include "kernels/pool2d.h"
#include "test_util.h"

using namespace lockstep;
using lockstep_test::random_floats;

namespace {

template <typename T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), sizeof(T) * a.size()) == 0;
}

template <typename T>
void check(const Pool2dGeom& g) {
  // Values on a coarse grid (many ties), some NaN, -inf and -0.
  std::vector<float> r = random_floats(g.planes * g.H * g.W, 11, -4.f, 4.f);
  std::vector<T> x(r.size());
  for (size_t i = 0; i < r.size(); ++i) {
    x[i] = static_cast<T>(std::floor(r[i]));
    if (i % 37 == 5) x[i] = std::numeric_limits<T>::quiet_NaN();
    if (i % 41 == 7) x[i] = -std::numeric_limits<T>::infinity();
    if (i % 43 == 9) x[i] = T(-0.0);
  }
  std::vector<float> rd = random_floats(g.planes * g.OH * g.OW, 12);
  std::vector<T> dy(rd.begin(), rd.end());
  for (size_t i = 0; i < dy.size(); i += 5) dy[i] = T(-0.0);
  const size_t ny = dy.size();
  std::vector<T> y(ny), y_ref(ny), dx(x.size(), T(7)), dx_ref(x.size(), T(7));
  std::vector<int64_t> idx(ny), idx_ref(ny);
  max_pool2d_forward_loops(y_ref.data(), idx_ref.data(), x.data(), g);
  max_pool2d_backward_loops(dx_ref.data(), dy.data(), idx_ref.data(), g);
  for (int l = 0; l <= static_cast<int>(simd_level_available()); ++l)
    for (int threads : {1, 3}) {
      INFO("SIMD level " << l << ", threads " << threads);
      ThreadsGuard tg(threads);
      const Exec ex{Mode::deterministic, static_cast<SimdLevel>(l), false};
      max_pool2d_forward_cpu(ex, y.data(), idx.data(), x.data(), g);
      max_pool2d_backward_cpu(ex, dx.data(), dy.data(), idx_ref.data(), g);
      REQUIRE(same_bits(y, y_ref));
      REQUIRE(same_bits(idx, idx_ref));
      REQUIRE(same_bits(dx, dx_ref));
    }
}

Pool2dGeom geom(int64_t planes, int64_t H, int64_t W, int64_t k) {
  Pool2dGeom g;
  g.planes = planes, g.H = H, g.W = W, g.kh = g.kw = g.sh = g.sw = k;
  g.OH = (H - k) / k + 1, g.OW = (W - k) / k + 1;
  return g;
}

}  // namespace

TEST_CASE("max_pool2d: windows that tile the plane give the general loops' bits", "[pool][deterministic]") {
  // 28 x 28: the recipe's; 7 x 9: a trailing row and column; 6 x 34: 17 outputs a row (8 + 8 + 1 lanes).
  for (const Pool2dGeom& g :
       {geom(6, 28, 28, 2), geom(5, 7, 9, 2), geom(3, 6, 34, 2), geom(4, 10, 11, 3), geom(3, 5, 4, 1)}) {
    INFO("H " << g.H << " W " << g.W << " k " << g.kh);
    check<float>(g);
    check<double>(g);
  }
  Pool2dGeom g = geom(4, 9, 8, 2);  // 2 x 3 windows, stride (2, 3)
  g.kw = g.sw = 3, g.OW = (g.W - 3) / 3 + 1;
  check<float>(g);
}
