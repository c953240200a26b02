// Data-parallel training through the tools' training loop (tools/train/distributed.h) at
// world sizes 1-4 on threads (LocalGroup) against the plain single-process Trainer. The
// same checks under mpirun: tests/distributed/.
#include <catch2/catch.hpp>

#include "data/mnist.h"
#include "test_util.h"
#include "train/distributed.h"

using namespace lockstep;
using namespace lockstep_test;

namespace {

// Small, fast runs that still cross an epoch and hold a short last batch (616 = 4 x 128 + 104:
// four chunks, the last of 8 rows): 6 steps of `lockstep train`'s recipe, seed 11.
tools::TrainConfig small_config() {
  tools::TrainConfig cfg;
  cfg.max_steps = cfg.epochs = 6;  // enough epochs: the cosine schedule spans max_steps
  cfg.batch_size = 128;
  cfg.seed = 11;
  return cfg;
}

tools::TrainData small_set() {
  static auto set = tools::train_images_or_synthetic(data::kFashionMnistDir, 616, 11);
  return {set, nullptr};
}

tools::TrainResult train_reference(const tools::TrainConfig& cfg) {
  tools::Trainer t(cfg, nullptr, small_set());
  return t.run();
}

}  // namespace

TEST_CASE("distributed training on 1-6 workers gives the single-process bits", "[deterministic][dist]") {
  const auto cfg = small_config();
  const tools::TrainResult ref = train_reference(cfg);
  REQUIRE(ref.steps == cfg.max_steps);
  for (int W = 1; W <= 6; ++W) {  // 4 chunks per batch: at 5 and 6 workers some ranks own no rows
    tools::DistributedOptions o;
    o.check_replicas = true;
    const tools::TrainResult r = tools::train_at_world_size(W, cfg, small_set(), o).train;
    INFO("world " << W);
    REQUIRE(r.weights_sha256 == ref.weights_sha256);
    REQUIRE_BITWISE_EQUAL(r.losses, ref.losses);
  }
}

TEST_CASE("distributed training: per-rank BatchNorm changes the result with the world size",
          "[deterministic][dist]") {
  auto cfg = small_config();
  cfg.max_steps = cfg.epochs = 2;
  tools::DistributedOptions o;
  o.sync_batchnorm = false;
  const std::string ref = train_reference(cfg).weights_sha256;
  // one rank: the whole batch
  REQUIRE(tools::train_at_world_size(1, cfg, small_set(), o).train.weights_sha256 == ref);
  REQUIRE(tools::train_at_world_size(2, cfg, small_set(), o).train.weights_sha256 != ref);
  // More ranks than chunks (4 per batch): rank 4 sits every step out and still joins the
  // collectives; ranks 0-3 each normalise over one chunk.
  const auto five = tools::train_at_world_size(5, cfg, small_set(), o).train;
  REQUIRE(five.steps == 2);
  REQUIRE(five.weights_sha256 != ref);
}

TEST_CASE("distributed training: a checkpoint written at world 2 resumes bit-exactly at world 3 and 1",
          "[deterministic][dist]") {
  const std::string dir = make_temp_dir("dist_resume");
  auto cfg = small_config();
  const std::string want = train_reference(cfg).weights_sha256;
  auto first = cfg;
  first.save_dir = dir;
  first.save_every = 3;
  tools::DistributedOptions fail;
  fail.fail_rank = 1, fail.fail_step = 5;  // the job dies after the step-3 checkpoint
  REQUIRE_THROWS_WITH(tools::train_at_world_size(2, first, small_set(), fail),
                      Catch::Contains("rank 1") && Catch::Contains("injected failure before step 5"));
  for (int W : {3, 1}) {
    auto next = cfg;
    next.resume_dir = dir;
    const tools::TrainResult r = tools::train_at_world_size(W, next, small_set()).train;
    INFO("resumed at world " << W);
    REQUIRE(r.losses.size() == 3);
    REQUIRE(r.weights_sha256 == want);
  }
  auto plain = cfg;
  plain.resume_dir = dir;
  REQUIRE(train_reference(plain).weights_sha256 == want);
}
