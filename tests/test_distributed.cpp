// distributed/: the batch tree, the cut BatchNorm kernels through SyncBatchNorm and Dropout row
// offsets. Whole data-parallel runs against the plain trainer: tests/tools/
// test_distributed_training.cpp (threads) and tests/distributed/ (mpirun).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <numeric>

#include "core/autograd.h"
#include "core/ops.h"
#include "core/random.h"
#include "core/tensor.h"
#include "distributed/data_parallel.h"
#include "distributed/local_group.h"
#include "kernels/reduce_order.h"
#include "nn/models.h"
#include "nn/nn.h"
#include "serialize/checkpoint.h"
#include "test_util.h"

using namespace lockstep;
using namespace lockstep_test;

namespace {

}  // namespace

TEST_CASE("BatchTree: workers' nodes combine to tree_sum of all chunks", "[deterministic][dist]") {
  for (int64_t n = 1; n <= 40; ++n) {
    std::vector<float> p = random_floats(static_cast<size_t>(n), static_cast<uint32_t>(n), -1e3f, 1e3f);
    std::vector<float> whole = p;
    const float want = tree_sum_inplace(whole.data(), n);
    for (int W = 1; W <= std::min<int64_t>(n + 3, 9); ++W) {  // W > n: ranks with empty nodes
      distributed::BatchTree tree(n * kBatchChunk, W);
      std::vector<float> nodes(static_cast<size_t>(W), std::nanf(""));  // what an empty node sends: never read
      int64_t covered = 0;
      for (int r = 0; r < W; ++r) {
        auto [b, e] = tree.chunks_of(r);
        REQUIRE(b == covered);  // contiguous, in rank order
        REQUIRE(tree.empty(r) == (r >= n));
        covered = e;
        if (b == e) continue;
        std::vector<float> mine(p.begin() + b, p.begin() + e);  // a kernel on these rows: local tree
        nodes[static_cast<size_t>(r)] = tree_sum_inplace(mine.data(), e - b);
      }
      REQUIRE(covered == n);
      float got = 0;
      tree.combine(nodes.data(), 1, &got);
      INFO("n = " << n << " W = " << W);
      REQUIRE_BITWISE_EQUAL(std::vector<float>{got}, std::vector<float>{want});
    }
  }
}

TEST_CASE("BatchTree: combine of wide rows (several column blocks) is tree_sum per column",
          "[deterministic][dist]") {
  const int64_t n = 11, width = 5000;  // 5000 columns: blocks of 2048, 2048 and 904
  const std::vector<float> p = random_floats(static_cast<size_t>(n * width), 5, -1e3f, 1e3f);  // p[c * width + j]
  std::vector<float> want(static_cast<size_t>(width)), lane(static_cast<size_t>(n));
  for (int64_t j = 0; j < width; ++j) {
    for (int64_t c = 0; c < n; ++c) lane[static_cast<size_t>(c)] = p[static_cast<size_t>(c * width + j)];
    want[static_cast<size_t>(j)] = tree_sum_inplace(lane.data(), n);
  }
  for (int W : {3, 4, 7, 13}) {
    distributed::BatchTree tree(n * kBatchChunk, W);
    std::vector<float> gathered(static_cast<size_t>(W * width), std::nanf(""));
    for (int r = 0; r < W; ++r) {
      const auto [b, e] = tree.chunks_of(r);
      if (b == e) continue;
      for (int64_t j = 0; j < width; ++j) {
        std::vector<float> mine;
        for (int64_t c = b; c < e; ++c) mine.push_back(p[static_cast<size_t>(c * width + j)]);
        gathered[static_cast<size_t>(r * width + j)] = tree_sum_inplace(mine.data(), e - b);
      }
    }
    std::vector<float> got(static_cast<size_t>(width));
    tree.combine(gathered.data(), width, got.data());
    INFO("W = " << W);
    REQUIRE_BITWISE_EQUAL(got, want);
  }
}

TEST_CASE("BatchTree: rows at chunk boundaries, errors name the sizes", "[dist]") {
  distributed::BatchTree t(104, 3);  // chunks 32, 32, 32, 8
  REQUIRE(t.rows_of(0) == std::make_pair(int64_t{0}, int64_t{32}));
  REQUIRE(t.rows_of(1) == std::make_pair(int64_t{32}, int64_t{64}));
  REQUIRE(t.rows_of(2) == std::make_pair(int64_t{64}, int64_t{104}));
  REQUIRE(distributed::BatchTree(128, 2).level_of(1) == 1);
  distributed::BatchTree small(40, 4);  // 2 chunks over 4 ranks: ranks 2 and 3 own no rows
  REQUIRE(small.rows_of(1) == std::make_pair(int64_t{32}, int64_t{40}));
  REQUIRE(small.rows_of(2) == std::make_pair(int64_t{40}, int64_t{40}));
  REQUIRE(small.empty(3));
  REQUIRE_THROWS_WITH(distributed::BatchTree(64, 0), Catch::Contains("world >= 1"));
  REQUIRE_THROWS_WITH(small.rows_of(4), Catch::Contains("outside a world of 4"));
}

TEST_CASE("Dropout: a row offset draws those rows of the whole batch's mask", "[deterministic][dist]") {
  Tensor x = Tensor::empty({10, 6});
  fill_normal(x, 0.0, 1.0, 3, 4);
  Tensor whole = dropout(x, 0.3, true, 5, 6, 7);
  for (int64_t b : {1, 3, 4}) {
    Tensor part = dropout(distributed::take_rows(x, b, 10), 0.3, true, 5, 6, 7, static_cast<uint64_t>(b * 6));
    Tensor want = distributed::take_rows(whole, b, 10);
    REQUIRE(equal_bits(part, want));
  }
}

TEST_CASE("SyncBatchNorm on 1-6 workers equals BatchNorm1d on the whole batch", "[deterministic][dist]") {
  const int64_t N = 104, C = 5;
  Tensor x = Tensor::empty({N, C}), dy = Tensor::empty({N, C});
  fill_normal(x, 0.5, 2.0, 1, 2);
  fill_normal(dy, 0.0, 1.0, 1, 3);
  nn::BatchNorm1d ref(C);
  ref.reset_parameters(9);
  {
    NoGradGuard ng;
    fill_normal(ref.weight(), 1.0, 0.2, 9, 1);
    fill_normal(ref.bias(), 0.0, 0.2, 9, 2);
  }
  Tensor xr = x.clone().set_requires_grad();
  Tensor y = ref.forward(xr);
  sum(mul(y, dy)).backward();
  for (int W = 1; W <= 6; ++W) {  // 104 rows = 4 chunks: at 5 and 6 ranks some own no rows
    // Catch2 assertions are not thread-safe: the ranks report mismatches, checked below.
    std::vector<std::string> problems(static_cast<size_t>(W));
    distributed::run_local_group(W, [&](distributed::Communicator& comm) {
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
    for (int r = 0; r < W; ++r) {
      INFO("world " << W << ", rank " << r << " differs in:" << problems[static_cast<size_t>(r)]);
      REQUIRE(problems[static_cast<size_t>(r)].empty());
    }
  }
}

TEST_CASE("make_mlp with SyncBatchNorm has the plain model's keys and initial bits", "[deterministic][dist]") {
  auto a = nn::make_mlp(3, 0.2);
  nn::MlpOptions o;
  o.sync = std::make_shared<nn::BatchSync>();
  auto b = nn::make_mlp(3, o);
  REQUIRE(dynamic_cast<nn::SyncBatchNorm*>((*b)[1].get()) != nullptr);
  REQUIRE(a->state_dict().keys() == b->state_dict().keys());
  REQUIRE(nn::state_dict_sha256(a->state_dict()) == nn::state_dict_sha256(b->state_dict()));
}
