// The few-row GEMM path (kernels/gemm_rows.h) and a prepacked B (GemmArgs::b_packed): the
// same bits as the plain canonical loop (gemm_cpu_ref) for 1..7 rows (the row path up to 4,
// the tiled path above: batch invariance across the switch), every transpose, bias and
// accumulate, edge columns, threads 1 and 3 (3 alone under sanitizers), SIMD and scalar.
#include <memory>
#include <vector>

#include "base/parallel.h"
#include "base/simd.h"
#include "kernels/gemm.h"
#include "kernels/gemm_rows.h"
#include "kernels/memory.h"
#include "test_util.h"

using namespace lockstep;
using lockstep_test::random_floats;

namespace {

struct RowsProblem {
  int64_t M, N, K;
  bool ta, tb, bias, acc;
  std::vector<float> a, b, bias_v, c0;
  GemmArgs args(float* c) const {
    GemmArgs g;
    g.trans_a = ta, g.trans_b = tb, g.M = M, g.N = N, g.K = K;
    g.A = a.data(), g.lda = (ta ? M : K) + 3;  // padded leading dimensions
    g.B = b.data(), g.ldb = (tb ? K : N) + 5;
    g.C = c, g.ldc = N + 2;
    g.bias = bias ? bias_v.data() : nullptr;
    g.accumulate = acc;
    return g;
  }
};

RowsProblem make(int64_t M, int64_t N, int64_t K, bool ta, bool tb, bool bias, bool acc, uint64_t seed) {
  RowsProblem p{M, N, K, ta, tb, bias, acc, {}, {}, {}, {}};
  p.a = random_floats(((ta ? K : M)) * ((ta ? M : K) + 3), seed, -1, 1);
  p.b = random_floats(((tb ? N : K)) * ((tb ? K : N) + 5), seed + 1, -1, 1);
  p.bias_v = random_floats(N, seed + 2, -1, 1);
  p.c0 = random_floats(M * (N + 2), seed + 3, -1, 1);
  return p;
}

}  // namespace

TEST_CASE("gemm rows: few-row path and prepacked B give the canonical bits", "[gemm][deterministic]") {
  const int64_t shapes[][2] = {{1, 1}, {15, 7}, {16, 128}, {17, 33}, {70, 300}, {384, 128}, {80, 128}};
  uint64_t seed = 100;
  int row_path = 0;
  for (const auto& nk : shapes)
    for (int64_t M = 1; M <= 7; ++M)
      for (int f = 0; f < 16; ++f) {
        const bool ta = f & 1, tb = f & 2, bias = f & 4, acc = f & 8;
        const RowsProblem p = make(M, nk[0], nk[1], ta, tb, bias, acc, seed += 7);
        std::vector<float> want(p.c0);
        gemm_cpu_ref(p.args(want.data()));
        // The packed op(B), as the frozen-weights scope would pass it.
        // 64-byte aligned, as gemm.h asks (host_alloc).
        std::unique_ptr<float, void (*)(void*)> packed(
            static_cast<float*>(host_alloc(sizeof(float) * static_cast<size_t>(gemm_packed_b_floats(p.N, p.K)))),
            host_free);
        {
          SimdGuard sg(false);
          gemm_pack_b_cpu(Exec::current(), p.args(nullptr), packed.get());
        }
        for (bool simd : {false, true})
          for (int threads : lockstep_test::sweep_threads())
            for (bool pre : {false, true}) {
              SimdGuard sg(simd);
              ThreadsGuard tg(threads);
              std::vector<float> got(p.c0);
              GemmArgs g = p.args(got.data());
              if (pre) g.b_packed = packed.get();
              row_path += gemm_rows::applies(g);
              gemm_cpu(Exec::current(), g);
              INFO("M " << M << " N " << p.N << " K " << p.K << " ta " << ta << " tb " << tb << " bias " << bias
                        << " acc " << acc << " simd " << simd << " threads " << threads << " prepacked " << pre);
              REQUIRE_BITWISE_EQUAL(got, want);
            }
      }
  REQUIRE(row_path > 0);  // the row path did run
}

// The prepacked B must be the same bits with the SIMD packing and the scalar one.
TEST_CASE("gemm rows: gemm_pack_b_cpu is a copy, SIMD or scalar", "[gemm][deterministic]") {
  for (bool tb : {false, true}) {
    const RowsProblem p = make(2, 70, 45, false, tb, false, false, 9);
    std::vector<float> s(static_cast<size_t>(gemm_packed_b_floats(p.N, p.K))), v(s.size());
    {
      SimdGuard sg(false);
      gemm_pack_b_cpu(Exec::current(), p.args(nullptr), s.data());
    }
    {
      SimdGuard sg(true);
      gemm_pack_b_cpu(Exec::current(), p.args(nullptr), v.data());
    }
    REQUIRE_BITWISE_EQUAL(s, v);
    // Element (k, j) of op(B) is at strip j / 16, row k, column j % 16; the padding is 0.
    for (int64_t k = 0; k < p.K; ++k)
      for (int64_t j = 0; j < 80; ++j) {
        const float want = j < p.N ? (tb ? p.b[j * (p.K + 5) + k] : p.b[k * (p.N + 5) + j]) : 0.0f;
        REQUIRE(s[(j / 16) * p.K * 16 + k * 16 + j % 16] == want);
      }
  }
}
