// The lab's stateful global generator (tools/lab/broken.h), kept out of the library: it
// shows the "one extra draw shifts everything" problem that keyed streams avoid.
#include <catch2/catch.hpp>

#include "core/random.h"
#include "lab/broken.h"
#include "test_util.h"

using namespace lockstep;
using namespace lockstep_cli::lab;

TEST_CASE("random: the stateful global generator shifts after one extra draw", "[random]") {
  // The problem: with one shared stateful stream, an unrelated extra draw (a new
  // augmentation, a debug print that samples) changes every value drawn afterwards.
  Tensor w1 = Tensor::empty({8}), w2 = Tensor::empty({8});
  manual_seed(123);
  global_fill_uniform(w1, -1, 1);
  manual_seed(123);
  (void)global_uniform();  // the extra draw
  global_fill_uniform(w2, -1, 1);
  REQUIRE_FALSE(equal_bits(w1, w2));
  // ... and reseeding restores the sequence: only the seed and the count of draws matter
  manual_seed(123);
  global_fill_uniform(w2, -1, 1);
  REQUIRE(equal_bits(w1, w2));
  // The fix: keyed streams are unaffected by any number of other draws.
  Tensor k1 = Tensor::empty({8}), k2 = Tensor::empty({8});
  fill_uniform(k1, -1, 1, 123, stream_id("init:0.weight"));
  (void)global_uniform();
  fill_uniform(k2, -1, 1, 123, stream_id("init:0.weight"));
  REQUIRE(equal_bits(k1, k2));
}

TEST_CASE("random: bad fills throw", "[random][errors]") {
  Tensor i = Tensor::zeros({3}, DType::i64);
  REQUIRE_THROWS_WITH(fill_uniform(i, 0, 1, 1, 1), Catch::Contains("[fill_uniform]"));
  Tensor f = Tensor::zeros({3});
  REQUIRE_THROWS_WITH(fill_uniform(f, 1, 0, 1, 1), Catch::Contains("lo <= hi"));
  REQUIRE_THROWS_WITH(fill_normal(f, 0, -1, 1, 1), Catch::Contains("std >= 0"));
}
