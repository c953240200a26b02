// Pooling, BatchNorm2d, Flatten: the facts the op table (tests/op_table_cnn.h) does not
// check — max pooling's tie and NaN rules, the gather backward against a scatter, SyncBatchNorm
// on 4-D batches split across workers, the modules' keys and the bad-input messages.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "core/autograd.h"
#include "core/ops.h"
#include "core/random.h"
#include "core/tensor.h"
#include "distributed/data_parallel.h"
#include "distributed/local_group.h"
#include "nn/nn.h"
#include "test_util.h"

using namespace lockstep;
using namespace lockstep_test;
using Catch::Contains;

TEST_CASE("max_pool2d: ties go to the first element in window order, NaN propagates", "[deterministic][pool]") {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  // one 4 x 4 plane, 2 x 2 windows: all equal; a tie of the two right elements; NaN; all -inf
  Tensor x = Tensor::from_vector(std::vector<float>{1, 1, 0, 2,     //
                                                    1, 1, 0, 2,     //
                                                    nan, 5, -inf, -inf,  //
                                                    5, 7, -inf, -inf},
                                 {1, 1, 4, 4});
  auto [y, idx] = max_pool2d_with_indices(x, {2, 2}, {2, 2}, {0, 0});
  REQUIRE(idx.to_vector<int64_t>() == std::vector<int64_t>{0, 3, 8, 10});
  auto v = y.to_vector<float>();
  REQUIRE(v[0] == 1);
  REQUIRE(v[1] == 2);
  REQUIRE(std::isnan(v[2]));
  REQUIRE(v[3] == -inf);
}

TEST_CASE("max_pool2d backward (a gather) equals the scatter of dy by the indices in window order",
          "[deterministic][pool]") {
  // Overlapping 3 x 3 windows, stride 1: an element is chosen by up to 9 windows.
  // Multiples of 1/2: many ties, many maxima shared by several windows.
  const Shape s{5, 4, 17, 15};
  auto vx = random_floats(static_cast<size_t>(shape_numel(s)), 7, -2.f, 2.f);
  for (auto& e : vx) e = std::round(e * 2.f) / 2.f;
  Tensor x = Tensor::from_vector(vx, s);
  x.set_requires_grad();
  auto [y, idx] = max_pool2d_with_indices(x, {3, 3}, {1, 1}, {1, 1});
  Tensor dy = Tensor::empty(y.shape());
  fill_normal(dy, 0, 1, 3, 2);
  sum(mul(y, dy)).backward();
  // scatter: dx starts at +0 and each window adds its dy at its index, windows in order
  std::vector<float> want(static_cast<size_t>(x.numel()), 0.f);
  auto g = dy.to_vector<float>();
  auto id = idx.to_vector<int64_t>();
  const int64_t planes = 5 * 4, HW = 17 * 15, OHW = y.size(2) * y.size(3);
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t o = 0; o < OHW; ++o) want[p * HW + id[p * OHW + o]] += g[p * OHW + o];
  REQUIRE_BITWISE_EQUAL(x.grad().to_vector<float>(), want);
}

TEST_CASE("SyncBatchNorm on 4-D batches over 1-4 workers equals BatchNorm2d on the whole batch",
          "[deterministic][dist]") {
  const int64_t N = 104, C = 3, H = 5, W = 6;
  Tensor x = Tensor::empty({N, C, H, W}), dy = Tensor::empty({N, C, H, W});
  fill_normal(x, 0.5, 2.0, 1, 2);
  fill_normal(dy, 0.0, 1.0, 1, 3);
  nn::BatchNorm2d ref(C);
  {
    NoGradGuard ng;
    fill_normal(ref.weight(), 1.0, 0.2, 9, 1);
    fill_normal(ref.bias(), 0.0, 0.2, 9, 2);
  }
  Tensor xr = x.clone();
  xr.set_requires_grad();
  Tensor y = ref.forward(xr);
  sum(mul(y, dy)).backward();
  for (int Wd = 1; Wd <= 4; ++Wd) {
    std::vector<std::string> problems(static_cast<size_t>(Wd));
    distributed::run_local_group(Wd, [&](distributed::Communicator& comm) {
      auto sync = std::make_shared<nn::BatchSync>();
      auto bn = std::make_shared<nn::SyncBatchNorm>(C, sync);
      nn::Sequential model(bn);
      {
        NoGradGuard ng;
        bn->weight().copy_(ref.weight());
        bn->bias().copy_(ref.bias());
      }
      distributed::DataParallel dp(comm, model, sync);
      auto [b, e] = dp.begin_step(N);
      Tensor xl = distributed::take_rows(x, b, e);
      xl.set_requires_grad();
      Tensor yl = bn->forward(xl);
      sum(mul(yl, distributed::take_rows(dy, b, e))).backward();
      dp.combine_gradients();
      std::string& p = problems[static_cast<size_t>(comm.rank())];
      if (!equal_bits(yl, distributed::take_rows(y.detach(), b, e))) p += " y";
      if (!equal_bits(xl.grad(), distributed::take_rows(xr.grad(), b, e))) p += " dx";
      if (!equal_bits(bn->weight().grad(), ref.weight().grad())) p += " dweight";
      if (!equal_bits(bn->bias().grad(), ref.bias().grad())) p += " dbias";
      if (!equal_bits(bn->running_mean(), ref.running_mean())) p += " running_mean";
      if (!equal_bits(bn->running_var(), ref.running_var())) p += " running_var";
    });
    for (int r = 0; r < Wd; ++r) {
      INFO("world " << Wd << ", rank " << r << " differs in:" << problems[static_cast<size_t>(r)]);
      REQUIRE(problems[static_cast<size_t>(r)].empty());
    }
  }
}

TEST_CASE("BatchNorm2d, pooling and Flatten modules: PyTorch keys, shapes and repr", "[unit][pool]") {
  nn::Sequential m(std::make_shared<nn::BatchNorm2d>(4), std::make_shared<nn::MaxPool2d>(2),
                   std::make_shared<nn::AvgPool2d>(Size2{3, 3}, Size2{1, 1}, Size2{1, 1}),
                   std::make_shared<nn::AdaptiveAvgPool2d>(Size2{3, 3}), std::make_shared<nn::Flatten>(),
                   std::make_shared<nn::Unflatten>(1, Shape{4, 9}));
  REQUIRE(m.state_dict().keys() ==
          std::vector<std::string>{"0.weight", "0.bias", "0.running_mean", "0.running_var", "0.num_batches_tracked"});
  Tensor x = Tensor::empty({2, 4, 8, 8});
  fill_normal(x, 0, 1, 1, 1);
  REQUIRE(m.forward(x).shape() == Shape{2, 4, 9});
  const std::string d = m.describe();
  REQUIRE_THAT(d, Contains("BatchNorm2d(4, eps=1e-05") && Contains("MaxPool2d(kernel_size=2, stride=2") &&
                      Contains("AdaptiveAvgPool2d(output_size=3)") && Contains("Flatten(start_dim=1, end_dim=-1)"));
  nn::Flatten f(0);
  REQUIRE(f.forward(x).shape() == Shape{2 * 4 * 8 * 8});
}

TEST_CASE("pooling and BatchNorm2d reject bad input naming the op", "[unit][pool]") {
  Tensor x = Tensor::zeros({2, 3, 5, 5});
  REQUIRE_THROWS_WITH(max_pool2d(Tensor::zeros({3, 5, 5}), {2, 2}, {2, 2}, {0, 0}),
                      Contains("[max_pool2d] expected input of shape N x C x H x W, got 3x5x5"));
  REQUIRE_THROWS_WITH(max_pool2d(x, {0, 2}, {2, 2}, {0, 0}), Contains("[max_pool2d] expected a positive kernel"));
  REQUIRE_THROWS_WITH(avg_pool2d(x, {2, 2}, {0, 1}, {0, 0}), Contains("[avg_pool2d] expected a positive stride"));
  REQUIRE_THROWS_WITH(max_pool2d(x, {2, 2}, {2, 2}, {2, 0}), Contains("[max_pool2d] expected padding between 0"));
  REQUIRE_THROWS_WITH(avg_pool2d(x, {7, 2}, {1, 1}, {0, 0}),
                      Contains("[avg_pool2d] kernel 7 x 2 is larger than the padded input 5 x 5"));
  REQUIRE_THROWS_WITH(max_pool2d(Tensor::zeros({2, 3, 5, 5}, DType::i64), {2, 2}, {2, 2}, {0, 0}),
                      Contains("[max_pool2d] expected a float input"));
  REQUIRE_THROWS_WITH(adaptive_avg_pool2d(x, {0, 1}), Contains("[adaptive_avg_pool2d] expected a positive output"));
  REQUIRE_THROWS_WITH(adaptive_avg_pool2d(Tensor::zeros({2, 3, 0, 5}), {1, 1}),
                      Contains("[adaptive_avg_pool2d] expected a non-empty plane"));
  REQUIRE_THROWS_WITH(batch_norm2d(Tensor::zeros({2, 3}), {}, {}, {}, {}, true, 0.1, 1e-5),
                      Contains("[batch_norm2d] expected input of shape N x C x H x W, got 2x3"));
  REQUIRE_THROWS_WITH(batch_norm2d(x, {}, {}, Tensor::ones({4}), {}, true, 0.1, 1e-5),
                      Contains("[batch_norm2d] weight must be a contiguous float32 vector of 3 channels"));
  REQUIRE_THROWS_WITH(batch_norm2d(Tensor::zeros({1, 3, 1, 1}), {}, {}, {}, {}, true, 0.1, 1e-5),
                      Contains("[batch_norm2d] expected more than 1 value per channel when training"));
  nn::BatchNorm2d bn(3);
  REQUIRE_THROWS_WITH(bn.forward(Tensor::zeros({2, 4, 5, 5})), Contains("[BatchNorm2d] expected input N x 3 x H x W"));
  REQUIRE_THROWS_WITH(nn::Unflatten(1, {2, 2}).forward(x), Contains("[Unflatten] sizes 2x2 have 4 elements"));
  REQUIRE_THROWS_WITH(nn::Flatten(2, 1).forward(x), Contains("[Flatten] start_dim 2 comes after end_dim 1"));
  REQUIRE_THROWS_WITH(nn::Flatten(1, 7).forward(x), Contains("[Flatten] dim 7 is out of range"));
}

TEST_CASE("BatchNorm2d sums a chunk of 32 samples in double: a channel's sum of dy is the rounded exact sum",
          "[deterministic][batchnorm]") {
  // One chunk (N = 32) of 28 x 28 planes: 25,088 terms per channel. The chunk partial is held in
  // double and rounded once, so dbias is the float nearest the exact sum; a float chain over the
  // same terms (what the kernel did before) is several ulps off, which this test would catch.
  const int64_t N = 32, C = 2, H = 28, W = 28, HW = H * W;
  Tensor x = Tensor::empty({N, C, H, W}), dy = Tensor::empty({N, C, H, W});
  fill_normal(x, 3.0, 1.0, 5, 1);
  fill_normal(dy, 0.0, 1.0, 5, 2);
  nn::BatchNorm2d bn(C);
  Tensor xr = x.clone();
  xr.set_requires_grad();
  sum(mul(bn.forward(xr), dy)).backward();
  const float* g = dy.data<float>();
  const float* db = bn.bias().grad().data<float>();
  for (int64_t c = 0; c < C; ++c) {
    double exact = 0;
    float chain = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < HW; ++i) {
        exact += g[(n * C + c) * HW + i];
        chain += g[(n * C + c) * HW + i];
      }
    INFO("channel " << c << ": dbias " << db[c] << ", exact " << exact << ", float chain " << chain);
    REQUIRE(db[c] == static_cast<float>(exact));
    const float ulp = std::nextafter(static_cast<float>(std::fabs(exact)), 1e30f) - static_cast<float>(std::fabs(exact));
    REQUIRE(std::fabs(chain - exact) > 2 * ulp);  // the float chain this replaced would fail the check above
  }
}
