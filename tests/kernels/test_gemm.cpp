// GEMM kernels (kernels/gemm.h): the deterministic gemm_cpu against a double-precision loop
// and bit for bit against gemm_cpu_ref, across thread counts, repeated runs, SIMD/scalar
// and batch sizes; the batch-chunked order against chunk partials + tree_sum_inplace; the
// float64 overload; and fast mode (variants and autotuner) within a derived tolerance.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <thread>
#include <vector>

#include "base/parallel.h"
#include "base/simd.h"
#include "kernels/gemm.h"
#include "kernels/reduce_order.h"
#include "test_util.h"

using lockstep::Exec;
using lockstep::GemmAlgo;
using lockstep::GemmArgs;
using lockstep::GemmArgsF64;
using lockstep::KOrder;
using lockstep_test::random_doubles;
using lockstep_test::random_floats;

namespace {

struct GemmShape {
  int64_t M, N, K;
};

// Shapes: 1, 3, 7, 17, 129, 1000 and sizes off the 6 x 16 register tile, the 144-row and
// 256-deep cache blocks (K = 257 and 1000 take several k blocks).
const std::vector<GemmShape> kShapes = {{1, 1, 1},     {3, 7, 17},   {17, 3, 7},    {7, 17, 1},
                                    {129, 7, 3},   {1, 129, 17}, {17, 17, 129}, {7, 3, 1000},
                                    {1000, 17, 3}, {3, 1000, 7}, {129, 33, 257}};

// One GEMM problem with padded leading dimensions (ld = width + pad), so a kernel that
// reads or writes past a row shows up; C's padding is compared too.
struct Problem {
  GemmArgs g;
  std::vector<float> A, B, C0, bias;

  // align_b: B's first row starts on a 64-byte boundary (with a pad that makes ldb a
  // multiple of 16, every row does).
  Problem(bool ta, bool tb, GemmShape s, bool with_bias, bool accumulate, KOrder order, uint32_t seed,
          int64_t pad = 3, bool align_b = false) {
    g.trans_a = ta;
    g.trans_b = tb;
    g.M = s.M, g.N = s.N, g.K = s.K;
    int64_t a_rows = ta ? s.K : s.M, a_cols = ta ? s.M : s.K;
    int64_t b_rows = tb ? s.N : s.K, b_cols = tb ? s.K : s.N;
    g.lda = a_cols + pad;
    g.ldb = b_cols + pad;
    g.ldc = s.N + pad;
    A = random_floats(a_rows * g.lda + 1, seed);
    B = random_floats(b_rows * g.ldb + 1 + (align_b ? 16 : 0), seed + 1);
    C0 = random_floats(s.M * g.ldc + 1, seed + 2, -4.f, 4.f);
    if (with_bias) bias = random_floats(s.N + 1, seed + 3);
    g.A = A.data();
    g.B = B.data();
    while (align_b && reinterpret_cast<uintptr_t>(g.B) % 64 != 0) ++g.B;
    g.bias = with_bias ? bias.data() : nullptr;
    g.accumulate = accumulate;
    g.order = order;
  }
  Problem(const Problem&) = delete;  // g points into this object's vectors

  float a(int64_t i, int64_t k) const { return g.trans_a ? A[k * g.lda + i] : A[i * g.lda + k]; }
  float b(int64_t k, int64_t j) const { return g.trans_b ? B[j * g.ldb + k] : B[k * g.ldb + j]; }

  // Runs fn on a fresh copy of C0 and returns the whole C buffer, padding included.
  template <typename Fn>
  std::vector<float> run(Fn fn) const {
    std::vector<float> C = C0;
    GemmArgs x = g;
    x.C = C.data();
    fn(x);
    return C;
  }
  // The deterministic kernel with the given settings (default: those in force now).
  std::vector<float> det(const Exec& ex = Exec::current()) const {
    return run([&](const GemmArgs& x) { lockstep::gemm_cpu(ex, x); });
  }
  std::vector<float> ref() const { return run([](const GemmArgs& x) { lockstep::gemm_cpu_ref(x); }); }

  // The exact result in double (products of floats are exact in double) and, per
  // element, the scale sum_k |a||b| + |bias| + |C0| that rounding errors are measured in.
  void exact(std::vector<double>* value, std::vector<double>* scale, int64_t drop_last_k = 0) const {
    value->assign(C0.size(), 0.0);
    scale->assign(C0.size(), 0.0);
    for (int64_t i = 0; i < g.M; ++i)
      for (int64_t j = 0; j < g.N; ++j) {
        double v = 0, s = 0;
        for (int64_t k = 0; k < g.K - drop_last_k; ++k) {
          v += double(a(i, k)) * double(b(k, j));
          s += std::fabs(double(a(i, k)) * double(b(k, j)));
        }
        if (g.bias) v += g.bias[j], s += std::fabs(g.bias[j]);
        double c0 = C0[i * g.ldc + j];
        if (g.accumulate) v += c0, s += std::fabs(c0);
        (*value)[i * g.ldc + j] = v;
        (*scale)[i * g.ldc + j] = s;
      }
  }

  bool is_output(size_t idx) const {
    return static_cast<int64_t>(idx) < g.M * g.ldc && static_cast<int64_t>(idx % g.ldc) < g.N;
  }
};

// Smallest L with 2^L >= n (TreeStack storage: L + 1 slots).
int64_t ceil_log2(int64_t n) {
  int64_t l = 0;
  while ((int64_t{1} << l) < n) ++l;
  return l;
}

// Rounding-error bound: any float evaluation of sum_k a_k b_k (+ bias) (+ C), whatever the
// order and with or without fma, is within gamma_n * (sum |a_k b_k| + |bias| + |C|) of the
// exact value, n = K + 2 roundings at most along any path, gamma_n = n u / (1 - n u),
// u = 2^-24 (Higham, Accuracy and Stability, 3.1 and 4.2).
double gamma_n(int64_t n) {
  const double u = std::ldexp(1.0, -24);
  return n * u / (1 - n * u);
}

// Index of the first element of got outside |got - want| <= factor * gamma * scale, or -1.
// Padding elements of C must be untouched (got == C0).
template <typename W>
int64_t first_outside_bound(const Problem& p, const std::vector<float>& got, const std::vector<W>& want,
                            const std::vector<double>& scale, double factor) {
  double bound = factor * gamma_n(p.g.K + 2);
  for (size_t idx = 0; idx < got.size(); ++idx) {
    if (!p.is_output(idx)) {
      if (got[idx] != p.C0[idx]) return static_cast<int64_t>(idx);
      continue;
    }
    double err = std::fabs(double(got[idx]) - double(want[idx]));
    if (!(err <= bound * scale[idx])) return static_cast<int64_t>(idx);
  }
  return -1;
}

// Calls fn(problem, description) for every transpose, bias, accumulate and order
// combination of the shape list.
template <typename Fn>
void for_all_configs(const std::vector<GemmShape>& shapes, Fn fn) {
  uint32_t seed = 100;
  for (GemmShape s : shapes)
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb)
        for (int bias = 0; bias < 2; ++bias)
          for (int acc = 0; acc < 2; ++acc)
            for (KOrder order : {KOrder::sequential, KOrder::batch_chunked}) {
              Problem p(ta, tb, s, bias, acc, order, seed += 10);
              std::string what = "M=" + std::to_string(s.M) + " N=" + std::to_string(s.N) +
                                 " K=" + std::to_string(s.K) + " trans_a=" + std::to_string(ta) +
                                 " trans_b=" + std::to_string(tb) + " bias=" + std::to_string(bias) +
                                 " accumulate=" + std::to_string(acc) +
                                 (order == KOrder::sequential ? " sequential" : " batch_chunked");
              fn(p, what);
            }
}

}  // namespace

TEST_CASE("gemm_cpu: within the rounding bound of a double-precision loop", "[gemm][deterministic]") {
  for_all_configs(kShapes, [](const Problem& p, const std::string& what) {
    INFO(what);
    std::vector<double> exact, scale;
    p.exact(&exact, &scale);
    REQUIRE(first_outside_bound(p, p.det(), exact, scale, 1.0) == -1);
  });
}

TEST_CASE("gemm_cpu: the accuracy bound catches a missing k term", "[gemm][deterministic]") {
  // The bound above is loose (a worst case); it must still reject a wrong sum.
  Problem p(false, false, {17, 17, 129}, true, true, KOrder::sequential, 7);
  std::vector<double> short_sum, scale;
  p.exact(&short_sum, &scale, /*drop_last_k=*/1);
  REQUIRE(first_outside_bound(p, p.det(), short_sum, scale, 1.0) != -1);
}

TEST_CASE("gemm_cpu: bitwise equal to gemm_cpu_ref", "[gemm][deterministic]") {
  for_all_configs(kShapes, [](const Problem& p, const std::string& what) {
    INFO(what);
    auto got = p.det(), want = p.ref();
    REQUIRE_BITWISE_EQUAL(got, want);
  });
}

TEST_CASE("gemm_cpu: K == 0 gives the epilogue of +0.0f, empty M or N writes nothing",
          "[gemm][deterministic]") {
  for (int bias = 0; bias < 2; ++bias)
    for (int acc = 0; acc < 2; ++acc) {
      Problem p(false, true, {5, 6, 0}, bias, acc, KOrder::batch_chunked, 3);
      auto got = p.det();
      for (int64_t i = 0; i < 5; ++i)
        for (int64_t j = 0; j < 6; ++j) {
          float want = 0.0f;
          if (bias) want = want + p.bias[j];
          if (acc) want = p.C0[i * p.g.ldc + j] + want;
          REQUIRE(got[i * p.g.ldc + j] == want);
          REQUIRE(std::signbit(got[i * p.g.ldc + j]) == std::signbit(want));
        }
      REQUIRE_BITWISE_EQUAL(got, p.ref());
    }
  for (GemmShape s : {GemmShape{0, 5, 7}, GemmShape{5, 0, 7}}) {
    Problem p(false, false, s, true, false, KOrder::sequential, 4);
    auto got = p.det();
    REQUIRE_BITWISE_EQUAL(got, p.C0);
  }
}

TEST_CASE("gemm_cpu: bitwise identical for 1, 2, 3 and 8 threads", "[gemm][deterministic]") {
  // Large enough (> 4M fmas, gemm_cpu's smallest task) to use several threads: several row
  // strips per thread and k blocks, and (M = 5) the column split; the 1-thread result is
  // also checked against the reference.
  for (GemmShape s : {GemmShape{200, 130, 600}, GemmShape{5, 3000, 700}})
    for (KOrder order : {KOrder::sequential, KOrder::batch_chunked})
      for (int tb = 0; tb < 2; ++tb) {
        Problem p(false, tb, s, true, true, order, 11);
        INFO("M=" << s.M << " order=" << int(order) << " trans_b=" << tb);
        std::vector<float> one;
        {
          lockstep::ThreadsGuard threads(1);
          one = p.det();
        }
        REQUIRE_BITWISE_EQUAL(one, p.ref());
        for (int t : {2, 3, 8}) {
          lockstep::ThreadsGuard threads(t);
          INFO("threads=" << t);
          auto got = p.det();
          REQUIRE_BITWISE_EQUAL(got, one);
        }
      }
}

TEST_CASE("gemm_cpu: column split with op(A) packed once and shared", "[gemm][deterministic]") {
  // M < N on several threads: the threads split the column strips and share one packed A,
  // each group of strips packed by whichever thread claims it first. Two row blocks (M =
  // 160), plain and transposed A, one or two k blocks; every thread count must give the
  // 1-thread bits, and those the reference's.
  for (int ta = 0; ta < 2; ++ta)
    for (KOrder order : {KOrder::sequential, KOrder::batch_chunked}) {
      Problem p(ta, false, {160, 400, 600}, true, false, order, 13);
      INFO("trans_a=" << ta << " order=" << int(order));
      std::vector<float> one;
      {
        lockstep::ThreadsGuard threads(1);
        one = p.det();
      }
      REQUIRE_BITWISE_EQUAL(one, p.ref());
      for (int t : {2, 3}) {
        lockstep::ThreadsGuard threads(t);
        INFO("threads=" << t);
        REQUIRE_BITWISE_EQUAL(p.det(), one);
      }
    }
}

TEST_CASE("gemm_cpu: 20 repeated runs give the same bits", "[gemm][deterministic]") {
  Problem p(true, false, {257, 130, 513}, true, true, KOrder::batch_chunked, 21);
  auto first = p.det();
  for (int run = 0; run < 20; ++run) {
    auto again = p.det();
    REQUIRE_BITWISE_EQUAL(again, first);
  }
}

TEST_CASE("gemm_cpu: every SIMD level gives the scalar path's bits", "[gemm][deterministic]") {
  using lockstep::SimdLevel;
  if (!lockstep::simd_available())
    WARN("no SIMD level (AVX2/FMA, NEON) in this build or CPU: only the scalar path runs here");
  if (lockstep::simd_level_available() != SimdLevel::avx512)
    WARN("AVX-512 not available in this build or CPU: its group kernel is not compared here");
  // Shapes for the AVX-512 groups of up to 5 row strips: 161 rows are one 150-row block of
  // five whole groups plus a strip and a 5-row edge; 47 rows end in a group of 2 and an
  // edge; K = 600 takes three k blocks (partials and block subtrees between calls), K = 41
  // ends in a partial chunk; N = 40 ends in an 8-column edge strip. Groups with an edge
  // tile: 1 row and 6 rows (a lone tile), 7 rows (a full tile and a 1-row edge), 128 rows
  // (the MLP's batch: 21 strips and a 2-row edge), N = 17 (a 1-column edge strip).
  // Batch-chunked k blocks of the AVX-512 kernel (16 chunks): K = 257 and 300 are one block
  // of 9 and 10 chunks, 600 is 16 + 3, 1000 is 16 + 16, 1100 is 16 + 16 + 3 (three block
  // subtrees on the tile's TreeStack).
  const std::vector<GemmShape> shapes = {{129, 33, 257}, {150, 100, 600}, {7, 40, 1000}, {161, 40, 600},
                                     {47, 32, 41},   {300, 16, 9},    {1, 40, 70},   {6, 17, 300},
                                     {128, 48, 256}, {31, 40, 1100}};
  for (GemmShape s : shapes)
    for (KOrder order : {KOrder::sequential, KOrder::batch_chunked})
      for (int ta = 0; ta < 2; ++ta) {
        Problem p(ta, !ta, s, true, ta, order, 31);
        // The level reaches the kernel only through its Exec.
        const std::vector<float> scalar = p.det(Exec{lockstep::Mode::deterministic, SimdLevel::scalar});
        for (SimdLevel level : lockstep::simd_levels_available()) {
          if (level == SimdLevel::scalar) continue;
          for (int threads : {1, 3}) {
            INFO("M=" << s.M << " N=" << s.N << " K=" << s.K << " order=" << int(order) << " trans_a=" << ta
                      << " level=" << lockstep::simd_level_name(level) << " threads=" << threads);
            lockstep::ThreadsGuard tg(threads);
            REQUIRE_BITWISE_EQUAL(p.det(Exec{lockstep::Mode::deterministic, level}), scalar);
          }
        }
      }
}

// The AVX-512 group kernel reads a plain B in place (no packing) when M <= 150 or M x K <=
// 150 x 512 (one larger row block: 256 x 48 x 128 here), B's rows are 64-byte aligned and
// their stride is not a multiple of 4 KiB (gemm_cpu.cpp). The padded Problems above never
// qualify; these do: ldb = 48 (N = 40: two strips in place and a packed 8-column edge
// strip), 112 (K = 600: k blocks, and 16 + 3 chunks), 32, 64, and 784 (the row stride of
// the MLP's 128 x 784 x 256). Compared with the scalar path, which always packs.
TEST_CASE("gemm_cpu: B read in place gives the packed path's bits", "[gemm][deterministic]") {
  using lockstep::SimdLevel;
  if (lockstep::simd_level_available() != SimdLevel::avx512)
    WARN("AVX-512 not available in this build or CPU: B is never read in place here");
  struct Case {
    GemmShape s;
    int64_t pad;
  };
  for (Case c : {Case{{128, 40, 300}, 8}, Case{{150, 100, 600}, 12}, Case{{7, 32, 41}, 0}, Case{{13, 64, 70}, 0},
                 Case{{128, 784, 70}, 0}, Case{{256, 48, 128}, 0}})
    for (KOrder order : {KOrder::sequential, KOrder::batch_chunked})
      for (int ta = 0; ta < 2; ++ta) {
        Problem p(ta, false, c.s, true, ta, order, 33, c.pad, true);
        REQUIRE(reinterpret_cast<uintptr_t>(p.g.B) % 64 == 0);
        const std::vector<float> scalar = p.det(Exec{lockstep::Mode::deterministic, SimdLevel::scalar});
        for (SimdLevel level : lockstep::simd_levels_available())
          for (int threads : lockstep_test::sweep_threads()) {
            INFO("M=" << c.s.M << " N=" << c.s.N << " K=" << c.s.K << " order=" << int(order) << " trans_a=" << ta
                      << " level=" << lockstep::simd_level_name(level) << " threads=" << threads);
            lockstep::ThreadsGuard tg(threads);
            REQUIRE_BITWISE_EQUAL(p.det(Exec{lockstep::Mode::deterministic, level}), scalar);
          }
      }
}

TEST_CASE("gemm_cpu: row i of C does not depend on the batch size (1, 7 or 512 rows)",
          "[gemm][deterministic]") {
  // x (batch x K) times w^T (w stored N x K), as in a linear layer, and the transposed-A
  // layout; both orders. Sub-batches are views of the same rows of A.
  const int64_t K = 129, N = 67;
  for (int ta = 0; ta < 2; ++ta)
    for (KOrder order : {KOrder::sequential, KOrder::batch_chunked}) {
      Problem full(ta, true, {512, N, K}, true, false, order, 41, 0);
      auto all = full.det();
      for (int64_t rows : {1, 7}) {
        for (int64_t i0 : {int64_t{0}, int64_t{5}, int64_t{300}, 512 - rows}) {
          GemmArgs sub = full.g;
          sub.M = rows;
          sub.A = ta ? full.A.data() + i0 : full.A.data() + i0 * full.g.lda;
          std::vector<float> C(rows * full.g.ldc, 0.0f);
          sub.C = C.data();
          lockstep::gemm_cpu(Exec::current(), sub);
          std::vector<float> want(all.begin() + i0 * full.g.ldc, all.begin() + (i0 + rows) * full.g.ldc);
          INFO("trans_a=" << ta << " order=" << int(order) << " rows=" << rows << " from row " << i0);
          REQUIRE_BITWISE_EQUAL(C, want);
        }
      }
    }
}

TEST_CASE("gemm_cpu: batch_chunked equals chunk partials combined by tree_sum_inplace",
          "[gemm][deterministic]") {
  // Reference built here: each chunk of kBatchChunk k values from +0.0f with one fma per
  // term, then tree_sum_inplace over the chunk partials, then bias. K = 200, 223 and 988
  // leave three unmerged subtrees in a k block (7 chunks), so the final fold order shows;
  // K up to 2100 takes 9 k blocks, so the combination of the blocks is exercised. On 1 and
  // 2 threads: the AVX2 kernel sums chunk pairs on half tiles on 1 thread and whole tiles
  // one chunk at a time on more (gemm_cpu.cpp, Plan::pairs); M = 13 gives tiles of 6 and 1
  // rows (the pair kernel skips the empty half of the second).
  for (int threads : {1, 2}) {
    for (int64_t K : {1, 31, 32, 33, 64, 100, 200, 223, 255, 256, 257, 988, 1000, 2100}) {
      lockstep::ThreadsGuard guard(threads);
      Problem p(true, false, {13, 37, K}, true, false, KOrder::batch_chunked, 51);
      std::vector<float> want = p.C0;
      std::vector<float> parts;
      for (int64_t i = 0; i < p.g.M; ++i)
        for (int64_t j = 0; j < p.g.N; ++j) {
          parts.clear();
          for (int64_t k0 = 0; k0 < K; k0 += lockstep::kBatchChunk) {
            float acc = 0.0f;
            for (int64_t k = k0; k < std::min(K, k0 + lockstep::kBatchChunk); ++k) acc = std::fma(p.a(i, k), p.b(k, j), acc);
            parts.push_back(acc);
          }
          float sum = lockstep::tree_sum_inplace(parts.data(), static_cast<int64_t>(parts.size()));
          want[i * p.g.ldc + j] = sum + p.bias[j];
        }
      INFO("K=" << K << " threads=" << threads);
      auto got = p.det();
      REQUIRE_BITWISE_EQUAL(got, want);
      // The order is visible: for long K the sequential sum differs in some bits.
      if (K >= 1000) {
        Problem q(true, false, {13, 37, K}, true, false, KOrder::sequential, 51);  // same data
        auto seq = q.det();
        REQUIRE_FALSE(lockstep_test::first_bitwise_difference(seq.data(), got.data(), got.size()).empty());
      }
    }
  }
}

TEST_CASE("TreeStack equals tree_sum_inplace for n = 1..200", "[gemm][deterministic]") {
  // Three lanes of partials with magnitudes spread over 2^-20 .. 2^20, so the order of the
  // additions shows in the bits.
  const int64_t width = 3;
  int order_mattered = 0;
  for (int64_t n = 1; n <= 200; ++n) {
    auto v = random_floats(n * width, static_cast<uint32_t>(1000 + n));
    auto e = random_floats(n * width, static_cast<uint32_t>(5000 + n), -20.f, 20.f);
    for (size_t i = 0; i < v.size(); ++i) v[i] = std::ldexp(v[i], static_cast<int>(e[i]));
    std::vector<float> storage((ceil_log2(n) + 1) * width);
    lockstep::TreeStack<float> stack(storage.data(), width);
    for (int64_t p = 0; p < n; ++p) {
      std::copy(v.begin() + p * width, v.begin() + (p + 1) * width, stack.next());
      stack.push();
    }
    REQUIRE(stack.count() == n);
    const float* got = stack.finish();
    for (int64_t lane = 0; lane < width; ++lane) {
      std::vector<float> lane_values(n);
      float left_to_right = 0.0f;
      for (int64_t p = 0; p < n; ++p) {
        lane_values[p] = v[p * width + lane];
        left_to_right += lane_values[p];
      }
      float want = lockstep::tree_sum_inplace(lane_values.data(), n);
      INFO("n=" << n << " lane=" << lane);
      REQUIRE(std::memcmp(&got[lane], &want, sizeof(float)) == 0);
      order_mattered += left_to_right != want;
    }
  }
  REQUIRE(order_mattered > 0);
}

TEST_CASE("gemm_cpu float64: bitwise equal to the canonical loops written here", "[gemm][deterministic]") {
  // Same contract in double: sequential fma chain from +0.0, or chunk partials + tree.
  for (GemmShape s : {GemmShape{1, 1, 1}, GemmShape{17, 70, 129}, GemmShape{7, 3, 1000}, GemmShape{3, 5, 0}})
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb)
        for (KOrder order : {KOrder::sequential, KOrder::batch_chunked}) {
          GemmArgsF64 g;
          g.trans_a = ta, g.trans_b = tb, g.M = s.M, g.N = s.N, g.K = s.K, g.order = order;
          g.lda = (ta ? s.M : s.K) + 2;
          g.ldb = (tb ? s.K : s.N) + 2;
          g.ldc = s.N + 1;
          auto A = random_doubles((ta ? s.K : s.M) * g.lda, 61);
          auto B = random_doubles((tb ? s.N : s.K) * g.ldb, 62);
          auto C0 = random_doubles(s.M * g.ldc, 63);
          auto bias = random_doubles(s.N, 64);
          g.A = A.data(), g.B = B.data(), g.bias = bias.data(), g.accumulate = true;
          auto a = [&](int64_t i, int64_t k) { return ta ? A[k * g.lda + i] : A[i * g.lda + k]; };
          auto b = [&](int64_t k, int64_t j) { return tb ? B[j * g.ldb + k] : B[k * g.ldb + j]; };
          std::vector<double> want = C0, parts;
          for (int64_t i = 0; i < s.M; ++i)
            for (int64_t j = 0; j < s.N; ++j) {
              double acc = 0.0;
              if (order == KOrder::sequential || s.K == 0) {
                for (int64_t k = 0; k < s.K; ++k) acc = std::fma(a(i, k), b(k, j), acc);
              } else {
                parts.clear();
                for (int64_t k0 = 0; k0 < s.K; k0 += lockstep::kBatchChunk) {
                  double part = 0.0;
                  for (int64_t k = k0; k < std::min(s.K, k0 + lockstep::kBatchChunk); ++k)
                    part = std::fma(a(i, k), b(k, j), part);
                  parts.push_back(part);
                }
                acc = lockstep::tree_sum_inplace(parts.data(), static_cast<int64_t>(parts.size()));
              }
              want[i * g.ldc + j] = C0[i * g.ldc + j] + (acc + bias[j]);
            }
          INFO("M=" << s.M << " K=" << s.K << " trans_a=" << ta << " trans_b=" << tb << " order=" << int(order));
          for (int t : {1, 3}) {
            lockstep::ThreadsGuard threads(t);
            std::vector<double> C = C0;
            g.C = C.data();
            lockstep::gemm_cpu(Exec::current(), g);
            REQUIRE_BITWISE_EQUAL(C, want);
          }
        }
}

// ---- fast mode ----------------------------------------------------------------------

namespace {

// Shapes for fast mode: Eigen and split_k differ from the canonical order only when there
// is something to block (split_k needs K >= 256 for two ranges).
const std::vector<GemmShape> kFastShapes = {{1, 1, 1}, {17, 129, 7}, {129, 17, 1000}, {120, 150, 512}};

// What a fast result is checked against, computed once per problem.
struct Expected {
  std::vector<double> exact, scale;
  std::vector<float> det;
  explicit Expected(const Problem& p) : det(p.det()) { p.exact(&exact, &scale); }
};

// Fast result vs the deterministic one: both lie within gamma_{K+2} * scale of the exact
// value, so they are within twice that of each other.
void require_fast_close(const Problem& p, const Expected& e, const std::vector<float>& fast,
                        const std::string& what) {
  INFO(what);
  int64_t bad = first_outside_bound(p, fast, e.det, e.scale, 2.0);
  if (bad >= 0) {
    INFO("element " << bad << ": fast " << fast[bad] << ", deterministic " << e.det[bad]
                    << ", bound " << 2.0 * gamma_n(p.g.K + 2) * e.scale[bad]);
    REQUIRE(bad == -1);
  }
  REQUIRE(first_outside_bound(p, fast, e.exact, e.scale, 1.0) == -1);
}

}  // namespace

TEST_CASE("gemm_fast_cpu_with: every variant within the rounding bound of gemm_cpu", "[gemm][fast]") {
  auto check = [](const Problem& p, const Expected& e, const std::string& what, int threads) {
    lockstep::ThreadsGuard guard(threads);
    for (GemmAlgo algo : {GemmAlgo::canonical, GemmAlgo::eigen, GemmAlgo::split_k}) {
      auto fast = p.run([&](const GemmArgs& x) { lockstep::gemm_fast_cpu_with(Exec::current(), algo, x); });
      require_fast_close(p, e, fast, what + " algo=" + lockstep::gemm_algo_name(algo) +
                                         " threads=" + std::to_string(threads));
      // canonical is gemm_cpu itself.
      if (algo == GemmAlgo::canonical) REQUIRE_BITWISE_EQUAL(fast, e.det);
    }
  };
  // Every configuration on one thread; two threads (Eigen's and split_k's parallel paths)
  // on the configurations with both bias and accumulate, to keep the test short.
  for_all_configs(kFastShapes, [&](const Problem& p, const std::string& what) {
    Expected e(p);
    check(p, e, what, 1);
    if (p.g.bias && p.g.accumulate) check(p, e, what, 2);
  });
  // Three threads: split_k's three partials meet in completion order.
  Problem p(false, true, {120, 150, 1000}, true, true, KOrder::sequential, 73);
  check(p, Expected(p), "three threads", 3);
}

TEST_CASE("gemm_fast_cpu: the tolerance rejects a wrong fast result", "[gemm][fast]") {
  // A missing k term (a plausible blocking bug) must fall outside the bound used above.
  Problem p(false, false, {17, 129, 1000}, true, true, KOrder::sequential, 72);
  Expected e(p);
  std::vector<double> short_sum, scale;
  p.exact(&short_sum, &scale, /*drop_last_k=*/1);
  std::vector<float> wrong(short_sum.begin(), short_sum.end());
  REQUIRE(first_outside_bound(p, wrong, e.det, e.scale, 2.0) != -1);
}

TEST_CASE("gemm_fast_cpu: autotuned choice is valid, cached, and never writes the caller's C",
          "[gemm][fast]") {
  lockstep::gemm_autotune_reset();
  for (GemmShape s : {GemmShape{64, 64, 64}, GemmShape{129, 200, 700}}) {
    Problem p(true, false, s, true, /*accumulate=*/true, KOrder::batch_chunked, 81);
    Expected e(p);
    std::vector<float> C = p.C0;
    GemmArgs g = p.g;
    g.C = C.data();
    // Tuning runs every variant several times on scratch memory: C must stay C0.
    GemmAlgo choice = lockstep::gemm_autotune_choice(Exec::current(), g);
    REQUIRE_BITWISE_EQUAL(C, p.C0);
    REQUIRE(lockstep::gemm_autotune_choice(Exec::current(), g) == choice);
    // One accumulation into C, not one per timed variant.
    lockstep::gemm_fast_cpu(Exec::current(), g);
    require_fast_close(p, e, C, std::string("autotuned ") + lockstep::gemm_algo_name(choice));
    WARN("M=" << s.M << " N=" << s.N << " K=" << s.K << " threads=" << lockstep::num_threads()
              << ": autotuner chose " << lockstep::gemm_algo_name(choice));
  }
}

TEST_CASE("gemm_fast_cpu: concurrent callers tune once and all get correct results", "[gemm][fast]") {
  lockstep::gemm_autotune_reset();
  Problem p(false, true, {96, 160, 384}, true, false, KOrder::sequential, 91);
  Expected e(p);
  std::vector<std::vector<float>> results(4, p.C0);
  std::vector<GemmAlgo> choices(4);
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t)
    callers.emplace_back([&, t] {
      GemmArgs g = p.g;
      g.C = results[t].data();
      lockstep::gemm_fast_cpu(Exec::current(), g);
      choices[t] = lockstep::gemm_autotune_choice(Exec::current(), g);
    });
  for (auto& c : callers) c.join();
  for (int t = 0; t < 4; ++t) {
    REQUIRE(choices[t] == choices[0]);
    require_fast_close(p, e, results[t], "caller " + std::to_string(t));
  }
}

TEST_CASE("gemm_fast_cpu: reports whether fast mode changed bits (informational)", "[gemm][fast]") {
  // Fast mode promises a tolerance, not bits; this prints what happened on this machine.
  // Each result is still held to the tolerance.
  Problem p(false, false, {100, 130, 1500}, false, false, KOrder::sequential, 101);
  Expected e(p);
  for (GemmAlgo algo : {GemmAlgo::eigen, GemmAlgo::split_k}) {
    std::vector<float> one_thread;
    bool runs_differ = false, threads_differ = false;
    for (int threads : {1, 2, 3, 8}) {
      lockstep::ThreadsGuard guard(threads);
      std::vector<float> first;
      for (int run = 0; run < 4; ++run) {
        auto got = p.run([&](const GemmArgs& x) { lockstep::gemm_fast_cpu_with(Exec::current(), algo, x); });
        require_fast_close(p, e, got, lockstep::gemm_algo_name(algo));
        if (first.empty()) first = got;
        runs_differ |= !lockstep_test::first_bitwise_difference(got.data(), first.data(), got.size()).empty();
      }
      if (one_thread.empty()) one_thread = first;
      threads_differ |=
          !lockstep_test::first_bitwise_difference(first.data(), one_thread.data(), first.size()).empty();
    }
    WARN("fast mode, " << lockstep::gemm_algo_name(algo) << ": repeated runs "
                       << (runs_differ ? "DIFFERED" : "were identical") << "; thread counts 1/2/3/8 "
                       << (threads_differ ? "DIFFERED" : "were identical") << " in bits, vs deterministic "
                       << (lockstep_test::first_bitwise_difference(one_thread.data(), e.det.data(), e.det.size()).empty()
                               ? "identical"
                               : "different"));
  }
}
