// conv2d at the op and module level: bad input gets "[conv2d] expected ..., got ...";
// nn::Conv2d has PyTorch's parameter names, shapes and init bounds; fast mode's algorithm
// can be pinned and queried, and pinning the canonical one gives deterministic mode's bits;
// data-parallel workers' weight gradients combine to the single-process bits.
#include <cmath>
#include <cstring>

#include "base/mode.h"
#include "core/ops.h"
#include "core/tensor.h"
#include "distributed/batch_tree.h"
#include "kernels/conv2d.h"
#include "nn/conv.h"
#include "test_util.h"

using namespace lockstep;
using Catch::Contains;
using lockstep_test::random_floats;

namespace {
Tensor f32(const Shape& s) { return Tensor::zeros(s, DType::f32); }
Tensor rnd(const Shape& s, uint32_t seed) {
  return Tensor::from_vector(random_floats(static_cast<size_t>(shape_numel(s)), seed), s);
}
}  // namespace

TEST_CASE("conv2d: bad input names the op and what was expected", "[conv2d][deterministic]") {
  auto expect = [](const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dArgs& a, const char* what) {
    INFO(what);
    REQUIRE_THROWS_WITH(conv2d(x, w, b, a), Contains("[conv2d] expected") && Contains(what));
  };
  const Tensor w = f32({4, 3, 3, 3});
  expect(f32({3, 8, 8}), w, Tensor(), {}, "4-d input");
  expect(f32({2, 3, 8, 8}), f32({4, 3, 9}), Tensor(), {}, "4-d weight");
  expect(f32({2, 3, 8, 8}), f32({4, 2, 3, 3}), Tensor(), {}, "weight's dim 1");
  expect(f32({2, 3, 8, 8}), f32({4, 1, 3, 3}), Tensor(), {1, 0, 1, 2}, "groups (2) to divide");
  expect(f32({2, 3, 4, 4}), f32({4, 3, 7, 7}), Tensor(), {}, "kernel no larger than the padded input");
  expect(f32({2, 3, 4, 4}), f32({4, 3, 3, 3}), Tensor(), {1, 0, 3}, "kernel no larger than the padded input");
  expect(f32({2, 3, 8, 8}), w, Tensor(), {0, 1}, "stride >= 1");
  expect(f32({2, 3, 8, 8}), w, Tensor(), {1, 1, 0}, "dilation >= 1");
  expect(f32({0, 3, 8, 8}), w, Tensor(), {}, "non-empty output");
  expect(f32({2, 3, 8, 8}), f32({0, 3, 3, 3}), Tensor(), {}, "non-empty output");
  expect(f32({2, 3, 8, 8}), w, f32({5}), {}, "bias of shape 4");
  expect(f32({2, 3, 8, 8}), Tensor::zeros({4, 3, 3, 3}, DType::f64), Tensor(), {}, "weight's dtype");
  // PyTorch's output size: (8 + 2 - 3) / 2 + 1 = 4
  REQUIRE(conv2d(f32({2, 3, 8, 8}), w, Tensor(), {2, 1}).shape() == Shape{2, 4, 4, 4});
}

TEST_CASE("nn::Conv2d: PyTorch names, shapes and init bounds", "[conv2d][deterministic]") {
  nn::Conv2dOptions o;
  o.padding = 1, o.groups = 2, o.seed = 5;
  nn::Conv2d conv(4, 6, 3, o);
  auto sd = conv.state_dict();
  REQUIRE(sd.items().size() == 2);
  REQUIRE(sd.at("weight").shape() == Shape{6, 2, 3, 3});
  REQUIRE(sd.at("bias").shape() == Shape{6});
  const double bound = 1.0 / std::sqrt(2.0 * 9.0);  // fan_in = C/groups * kH * kW
  for (const char* k : {"weight", "bias"}) {
    auto v = sd.at(k).to_vector<float>();
    double lo = 1, hi = -1;
    for (float e : v) lo = std::min<double>(lo, e), hi = std::max<double>(hi, e);
    REQUIRE(lo >= -bound);
    REQUIRE(hi < bound);
    REQUIRE(hi - lo > bound / 2);  // spread over the range, not a constant
  }
  nn::Conv2d again(4, 6, 3, o);
  REQUIRE(equal_bits(again.weight(), conv.weight()));
  o.bias = false;
  nn::Conv2d nb(4, 6, 3, o);
  REQUIRE(nb.state_dict().items().size() == 1);
  Tensor x = rnd({3, 4, 7, 7}, 9);
  Tensor y = conv.forward(x);
  REQUIRE(y.shape() == Shape{3, 6, 7, 7});
  REQUIRE(equal_bits(y, conv2d(x, conv.weight(), conv.bias(), {1, 1, 1, 2})));
  REQUIRE_THROWS_WITH(nn::Conv2d(4, 6, 3, [] { nn::Conv2dOptions b; b.groups = 3; return b; }()),
                      Contains("[Conv2d] expected groups"));
  // float64 reference runs: the module converts in place and runs in float64.
  conv.to(DType::f64);
  REQUIRE(conv.weight().dtype() == DType::f64);
  Tensor y64 = conv.forward(x.to(DType::f64));
  REQUIRE(y64.dtype() == DType::f64);
  auto a = y.to_vector<float>();
  auto b = y64.to_vector<double>();
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
  REQUIRE(worst < 1e-5);
}

TEST_CASE("conv2d fast mode: a pinned algorithm runs, canonical gives deterministic bits", "[conv2d][fast]") {
  Tensor x = rnd({6, 8, 12, 12}, 1), w = rnd({16, 8, 3, 3}, 2), b = rnd({16}, 3);
  Tensor det = conv2d(x, w, b, {1, 1});
  REQUIRE(conv2d_last_algo() == Conv2dAlgo::canonical);
  ModeGuard fast(Mode::fast);
  const Conv2dAlgo saved = conv2d_algo();
  for (Conv2dAlgo a : {Conv2dAlgo::canonical, Conv2dAlgo::im2col_gemm, Conv2dAlgo::direct, Conv2dAlgo::winograd}) {
    set_conv2d_algo(a);
    Tensor y = conv2d(x, w, b, {1, 1});
    REQUIRE(conv2d_last_algo() == a);
    if (a == Conv2dAlgo::canonical) REQUIRE(equal_bits(y, det));
    if (a == Conv2dAlgo::direct || a == Conv2dAlgo::winograd) REQUIRE(!equal_bits(y, det));  // other roundings
  }
  set_conv2d_algo(Conv2dAlgo::winograd);
  conv2d(x, w, b, {2, 1});  // stride 2: winograd does not apply
  REQUIRE(conv2d_last_algo() == Conv2dAlgo::im2col_gemm);
  set_conv2d_algo(saved);
}

TEST_CASE("conv2d grad-weight: data-parallel workers' partials rebuild the single-process bits",
          "[conv2d][deterministic]") {
  // 100 samples = 4 chunks (the last of 4 samples); each worker computes the weight and bias
  // gradients of its rows alone, and BatchTree::combine adds the nodes as tree_sum would.
  Conv2dDims d;
  d.N = 100, d.C = 3, d.H = 9, d.W = 8, d.O = 5, d.KH = 3, d.KW = 3, d.pad_h = d.pad_w = 1, d.OH = 9, d.OW = 8;
  const auto x = random_floats(d.N * d.C * d.H * d.W, 11), dy = random_floats(d.N * d.O * d.p(), 12);
  const int64_t nw = d.O * d.C * 9, width = nw + d.O;
  std::vector<float> whole(width);
  conv2d_backward_weight_cpu(Exec::current(), d, whole.data(), whole.data() + nw, dy.data(), x.data());
  for (int world = 1; world <= 4; ++world) {
    distributed::BatchTree tree(d.N, world);
    std::vector<float> gathered(world * width), total(width);
    for (int r = 0; r < world; ++r) {
      const auto [b, e] = tree.rows_of(r);
      Conv2dDims part = d;
      part.N = e - b;
      float* out = gathered.data() + r * width;
      conv2d_backward_weight_cpu(Exec::current(), part, out, out + nw, dy.data() + b * d.O * d.p(),
                                 x.data() + b * d.C * d.H * d.W);
    }
    tree.combine(gathered.data(), width, total.data());
    INFO("world " << world);
    REQUIRE(std::memcmp(total.data(), whole.data(), sizeof(float) * width) == 0);
  }
}
