// FrozenWeights (core/frozen_weights.h): inside the scope a frozen weight's products take
// its packed copy, with the same bits as outside; other tensors are not cached; scopes nest
// and end.
#include <vector>

#include "base/parallel.h"
#include "core/autograd.h"
#include "core/frozen_weights.h"
#include "core/ops.h"
#include "test_util.h"

using namespace lockstep;
using lockstep_test::random_floats;

TEST_CASE("frozen weights: products take the packed copy and keep their bits", "[frozen][deterministic]") {
  const Tensor w = Tensor::from_vector(random_floats(70 * 45, 1, -1, 1), {70, 45});
  const Tensor w2 = Tensor::from_vector(random_floats(45 * 33, 2, -1, 1), {45, 33});
  const Tensor b = Tensor::from_vector(random_floats(70, 3, -1, 1), {70});
  NoGradGuard ng;
  for (int64_t rows : {1, 3, 4, 5, 9, 64}) {
    const Tensor x = Tensor::from_vector(random_floats(rows * 45, 4 + rows, -1, 1), {rows, 45});
    const Tensor y = linear(x, w, b), z = matmul(x, w2);
    for (int threads : {1, 2}) {
      ThreadsGuard tg(threads);
      FrozenWeights frozen({w, w2, b});
      INFO("rows " << rows << " threads " << threads);
      REQUIRE(equal_bits(linear(x, w, b), y));
      REQUIRE(equal_bits(linear(x, w, b), y));  // the second call reads the cached copy
      REQUIRE(equal_bits(matmul(x, w2), z));     // B stored K x N: packed too
    }
  }
  // What is and is not served from the scope.
  GemmArgs g;
  g.trans_b = true, g.N = 70, g.K = 45, g.B = w.data<float>(), g.ldb = 45;
  REQUIRE(frozen_packed_b(Exec::current(), g) == nullptr);  // no scope
  {
    FrozenWeights outer({w});
    const float* p = frozen_packed_b(Exec::current(), g);
    REQUIRE(p != nullptr);
    REQUIRE(frozen_packed_b(Exec::current(), g) == p);  // packed once
    g.N = 71;
    REQUIRE(frozen_packed_b(Exec::current(), g) == nullptr);  // would read past the tensor
    g.N = 70;
    {
      FrozenWeights inner({w2});
      REQUIRE(frozen_packed_b(Exec::current(), g) == nullptr);  // the innermost scope only
    }
    REQUIRE(frozen_packed_b(Exec::current(), g) == p);
    const Tensor other = w.clone();
    g.B = other.data<float>();
    REQUIRE(frozen_packed_b(Exec::current(), g) == nullptr);  // not frozen
  }
  g.B = w.data<float>();
  REQUIRE(frozen_packed_b(Exec::current(), g) == nullptr);  // the scope has ended
}
