// Reductions (kernels/reduce.h, core/ops/reduce.cpp): accuracy against float64 loops,
// bitwise equality with the canonical orders written out here as plain loops, and the same
// bits for every thread count, 20 repeats and the SIMD and scalar paths.
#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <vector>

#include "base/mode.h"
#include "base/parallel.h"
#include "base/simd.h"
#include "core/tensor.h"
#include "kernels/reduce.h"
#include "kernels/reduce_order.h"
#include "lockstep/config.h"
#include "test_util.h"

using namespace lockstep;
using lockstep_test::kThreadCounts;
using lockstep_test::random_floats;

namespace {

const int64_t kSizes[] = {0, 1, 3, 7, 17, 129, 1000, 4095, 4096, 4097, 100003};

// The Exec of a deterministic kernel call on the SIMD path (the highest level available
// here) or the portable one.
Exec simd_exec(bool simd) { return Exec{Mode::deterministic, simd ? simd_level_available() : SimdLevel::scalar}; }

// Values over many binades, so that a change of summation order changes the rounding.
std::vector<float> spread_floats(size_t n, uint32_t seed) {
  std::vector<float> v = random_floats(n, seed);
  std::vector<float> e = random_floats(n, seed + 1, -12.f, 12.f);
  for (size_t i = 0; i < n; ++i) v[i] = std::ldexp(v[i], static_cast<int>(e[i]));
  return v;
}

// The pairwise tree of reduce_order.h item 3, written independently: level by level.
float tree(std::vector<float> p) {
  while (p.size() > 1) {
    std::vector<float> next;
    for (size_t i = 0; i + 1 < p.size(); i += 2) next.push_back(p[i] + p[i + 1]);
    if (p.size() % 2) next.push_back(p.back());
    p = next;
  }
  return p.empty() ? 0.0f : p[0];
}

// Contiguous order, item 1: 4096-element blocks, 32 lanes, halving fold, tree over blocks.
float canonical_sum(const float* x, int64_t n) {
  std::vector<float> blocks;
  for (int64_t b = 0; b < n; b += 4096) {
    float lane[32];
    for (float& l : lane) l = 0.0f;
    for (int64_t i = b; i < std::min(n, b + 4096); ++i) lane[(i - b) % 32] = lane[(i - b) % 32] + x[i];
    for (int s = 16; s >= 1; s /= 2)
      for (int j = 0; j < s; ++j) lane[j] = lane[j] + lane[j + s];
    blocks.push_back(lane[0]);
  }
  return tree(blocks);
}

// Batch order, item 2: chunks of 32 rows summed in order from +0, tree over the chunks.
std::vector<float> canonical_cols(const float* x, int64_t rows, int64_t cols) {
  std::vector<float> out(cols);
  for (int64_t j = 0; j < cols; ++j) {
    std::vector<float> chunks;
    for (int64_t c = 0; c < rows; c += 32) {
      float acc = 0.0f;
      for (int64_t r = c; r < std::min(rows, c + 32); ++r) acc = acc + x[r * cols + j];
      chunks.push_back(acc);
    }
    out[j] = tree(chunks);
  }
  return out;
}

double sum_abs(const float* x, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::fabs(static_cast<double>(x[i]));
  return s;
}

double sum_f64(const float* x, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += x[i];
  return s;
}

// Worst-case rounding bound of the contiguous order: a lane adds up to 128 terms, then
// 5 fold levels and ceil(log2(blocks)) tree levels.
double contiguous_bound(int64_t n) {
  const double blocks = std::max<double>(1, std::ceil(n / 4096.0));
  return (128 + 5 + std::ceil(std::log2(blocks)) + 1) * std::numeric_limits<float>::epsilon();
}

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

}  // namespace

TEST_CASE("sum_cpu: the canonical tests can tell orders apart", "[reduce][deterministic]") {
  // A plain left-to-right sum differs from the contiguous order on this data, so the bitwise
  // checks below would notice a kernel that summed in another order.
  std::vector<float> x = spread_floats(100003, 11);
  float seq = 0.0f;
  for (float v : x) seq += v;
  REQUIRE(bits(seq) != bits(canonical_sum(x.data(), 100003)));
}

TEST_CASE("sum_cpu: accurate and bitwise equal to the contiguous order", "[reduce][deterministic]") {
  for (int64_t n : kSizes) {
    std::vector<float> x = spread_floats(static_cast<size_t>(n), static_cast<uint32_t>(n) + 3);
    const float want = canonical_sum(x.data(), n);
    INFO("n = " << n);
    float got = -1.0f;
    sum_cpu(Exec::current(), &got, x.data(), n);
    REQUIRE(bits(got) == bits(want));
    REQUIRE(bits(sum_cpu_ref(x.data(), n)) == bits(want));
    REQUIRE(bits(sum_serial_cpu(Exec::current(), x.data(), n)) == bits(want));
    const double err = std::fabs(got - sum_f64(x.data(), n));
    REQUIRE(err <= contiguous_bound(n) * sum_abs(x.data(), n));
  }
  float z = -1.0f;
  sum_cpu(Exec::current(), &z, static_cast<const float*>(nullptr), 0);
  REQUIRE(bits(z) == bits(0.0f));  // an empty sum is +0
}

TEST_CASE("sum_cpu: same bits for every thread count, SIMD path and run", "[reduce][deterministic]") {
  for (int64_t n : {int64_t(4097), int64_t(100003), int64_t(1) << 20}) {
    std::vector<float> x = spread_floats(static_cast<size_t>(n), 5);
    const float want = canonical_sum(x.data(), n);
    for (bool simd : {false, true}) {
      for (int t : kThreadCounts) {
        ThreadsGuard tg(t);
        for (int rep = 0; rep < 20; ++rep) {
          float got;
          sum_cpu(simd_exec(simd), &got, x.data(), n);
          INFO("n = " << n << ", simd " << simd << ", threads " << t << ", run " << rep);
          REQUIRE(bits(got) == bits(want));
        }
      }
    }
  }
  if (!simd_available()) WARN("AVX2 is not available here: the SIMD runs used the scalar path");
}

TEST_CASE("sum_block_avx2 / sum_block_neon equal the scalar block for every length", "[reduce][deterministic]") {
  std::vector<float> x = spread_floats(4096, 17);
  int checked = 0;
  for (int64_t len = 0; len <= 4096; ++len) {
    const float want = canonical_sum(x.data(), len);
    INFO("len = " << len);
#if LOCKSTEP_HAVE_AVX2
    if (Exec{Mode::deterministic, simd_level_available()}.avx2()) {
      REQUIRE(bits(sum_block_avx2(x.data(), len)) == bits(want));
      checked = 1;
    }
#endif
#if LOCKSTEP_HAVE_NEON
    REQUIRE(bits(sum_block_neon(x.data(), len)) == bits(want));  // run under qemu-aarch64 on x86 CI
    checked = 1;
#endif
  }
  if (!checked) WARN("no AVX2 or NEON block kernel here: nothing to compare");
}

TEST_CASE("sum_rows_cpu: each row in the contiguous order, any threads", "[reduce][deterministic]") {
  const int64_t shapes[][2] = {{1, 1}, {3, 7}, {17, 129}, {5, 4095}, {3, 4097}, {1, 100003}, {2, 100003},
                               {1000, 3}, {129, 1000}, {1000, 1000}, {4, 0}};
  for (auto& s : shapes) {
    const int64_t rows = s[0], cols = s[1];
    std::vector<float> x = spread_floats(static_cast<size_t>(rows * cols), 23);
    std::vector<float> want(rows);
    for (int64_t r = 0; r < rows; ++r) want[r] = canonical_sum(x.data() + r * cols, cols);
    for (bool simd : {false, true}) {
      for (int t : kThreadCounts) {
        ThreadsGuard tg(t);
        std::vector<float> got(rows, -1.0f);
        sum_rows_cpu(simd_exec(simd), got.data(), x.data(), rows, cols);
        INFO(rows << "x" << cols << ", simd " << simd << ", threads " << t);
        REQUIRE_BITWISE_EQUAL(got, want);
      }
    }
  }
}

TEST_CASE("sum_rows_cpu: float64 rows are accurate", "[reduce][deterministic]") {
  std::vector<double> x = lockstep_test::random_doubles(3 * 100003, 3);
  std::vector<double> got(3);
  sum_rows_cpu(Exec::current(), got.data(), x.data(), 3, 100003);
  for (int r = 0; r < 3; ++r) {
    long double ref = 0;
    for (int64_t i = 0; i < 100003; ++i) ref += x[r * 100003 + i];
    REQUIRE(std::fabs(got[r] - static_cast<double>(ref)) <= 1e-12);
    REQUIRE(got[r] == sum_cpu_ref(x.data() + r * 100003, 100003));
  }
}

TEST_CASE("TreeStack builds the same tree as tree_sum_inplace", "[reduce][deterministic]") {
  for (int64_t n = 1; n <= 100; ++n) {
    std::vector<float> p = spread_floats(static_cast<size_t>(n), static_cast<uint32_t>(n));
    float slots[65];
    TreeStack<float> stack(slots, 1);
    for (float v : p) {
      *stack.next() = v;
      stack.push();
    }
    const float s = *stack.finish();
    INFO("n = " << n);
    REQUIRE(bits(s) == bits(tree(p)));
    REQUIRE(bits(tree_sum_inplace(p.data(), n)) == bits(s));
  }
}

TEST_CASE("sum_cols_cpu: batch order, accurate, any threads", "[reduce][deterministic]") {
  const int64_t shapes[][2] = {{1, 1},   {3, 7},    {31, 5},    {32, 17},  {33, 129}, {100, 1},
                               {1000, 3}, {4097, 2}, {129, 1000}, {4096, 7}, {100003, 1}, {0, 5},
                               {4096, 1000}, {1 << 20, 1}, {1 << 18, 3}};  // the last three split
  for (auto& s : shapes) {
    const int64_t rows = s[0], cols = s[1];
    std::vector<float> x = spread_floats(static_cast<size_t>(rows * cols), 29);
    const std::vector<float> want = canonical_cols(x.data(), rows, cols);
    // accuracy: each chunk adds <= 32 terms, then ceil(log2(chunks)) tree levels
    const double levels = 32 + std::ceil(std::log2(std::max<double>(1, std::ceil(rows / 32.0)))) + 1;
    for (int64_t j = 0; j < cols; ++j) {
      double ref = 0, mag = 0;
      for (int64_t r = 0; r < rows; ++r) ref += x[r * cols + j], mag += std::fabs(x[r * cols + j]);
      REQUIRE(std::fabs(want[j] - ref) <= levels * std::numeric_limits<float>::epsilon() * mag);
    }
    std::vector<float> ref_out(cols);
    sum_cols_cpu_ref(ref_out.data(), x.data(), rows, cols);
    REQUIRE_BITWISE_EQUAL(ref_out, want);
    for (int t : kThreadCounts) {
      ThreadsGuard tg(t);
      for (int rep = 0; rep < 20; ++rep) {
        std::vector<float> got(cols, -1.0f);
        sum_cols_cpu(Exec::current(), got.data(), x.data(), rows, cols, false);
        INFO(rows << "x" << cols << ", threads " << t << ", run " << rep);
        REQUIRE_BITWISE_EQUAL(got, want);
      }
    }
  }
}

TEST_CASE("sum_cols_cpu: equals chunk partials combined by tree_sum_inplace", "[reduce][deterministic]") {
  const int64_t rows = 1000, cols = 37;  // 32 chunks, the last one 8 rows
  std::vector<float> x = spread_floats(rows * cols, 31);
  std::vector<float> got(cols);
  sum_cols_cpu(Exec::current(), got.data(), x.data(), rows, cols, false);
  for (int64_t j = 0; j < cols; ++j) {
    std::vector<float> part;
    for (int64_t c = 0; c < rows; c += kBatchChunk) {
      float acc = 0.0f;
      for (int64_t r = c; r < std::min(rows, c + kBatchChunk); ++r) acc += x[r * cols + j];
      part.push_back(acc);
    }
    REQUIRE(bits(tree_sum_inplace(part.data(), static_cast<int64_t>(part.size()))) == bits(got[j]));
  }
  // a plain top-to-bottom column sum differs somewhere: the check above can fail
  bool any_diff = false;
  for (int64_t j = 0; j < cols; ++j) {
    float seq = 0.0f;
    for (int64_t r = 0; r < rows; ++r) seq += x[r * cols + j];
    any_diff |= bits(seq) != bits(got[j]);
  }
  REQUIRE(any_diff);
}

TEST_CASE("sum_cols_cpu: accumulate adds the old value first", "[reduce][deterministic]") {
  const int64_t rows = 77, cols = 300;
  std::vector<float> x = spread_floats(rows * cols, 37);
  std::vector<float> old = spread_floats(cols, 38);
  const std::vector<float> s = canonical_cols(x.data(), rows, cols);
  for (int t : kThreadCounts) {
    ThreadsGuard tg(t);
    std::vector<float> got = old;
    sum_cols_cpu(Exec::current(), got.data(), x.data(), rows, cols, true);
    for (int64_t j = 0; j < cols; ++j) REQUIRE(bits(got[j]) == bits(old[j] + s[j]));
  }
}

TEST_CASE("sum_mid_cpu: batch order over the middle dim", "[reduce][deterministic]") {
  const int64_t shapes[][3] = {{1, 1, 1}, {3, 7, 5}, {2, 100, 1}, {5, 33, 300}, {1, 4097, 3}, {4, 0, 3},
                               {8, 1000, 300}, {2, 1 << 17, 2}};
  for (auto& s : shapes) {
    const int64_t outer = s[0], d = s[1], inner = s[2];
    std::vector<float> x = spread_floats(static_cast<size_t>(outer * d * inner), 41);
    std::vector<float> want;
    for (int64_t o = 0; o < outer; ++o) {
      std::vector<float> w = canonical_cols(x.data() + o * d * inner, d, inner);
      want.insert(want.end(), w.begin(), w.end());
    }
    for (int t : kThreadCounts) {
      ThreadsGuard tg(t);
      std::vector<float> got(outer * inner, -1.0f);
      sum_mid_cpu(Exec::current(), got.data(), x.data(), outer, d, inner);
      INFO(outer << "x" << d << "x" << inner << ", threads " << t);
      REQUIRE_BITWISE_EQUAL(got, want);
    }
  }
}

TEST_CASE("max_cpu / argmax_cpu: first maximum, NaN propagates", "[reduce][deterministic]") {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  // rows: ties go to the first index; -0 before +0 stays -0; NaN wins wherever it is
  std::vector<float> x = {1, 3, 3, 2,  -0.0f, 0.0f, -1, -2,  -inf, -inf, -inf, -inf,  1, nan, 5, nan};
  std::vector<float> mx(4);
  std::vector<int64_t> am(4);
  max_cpu(Exec::current(), mx.data(), x.data(), 4, 4, 1);
  argmax_cpu(Exec::current(), am.data(), x.data(), 4, 4, 1);
  REQUIRE(am == std::vector<int64_t>{1, 0, 0, 1});
  REQUIRE(mx[0] == 3);
  REQUIRE(bits(mx[1]) == bits(-0.0f));
  REQUIRE(mx[2] == -inf);
  REQUIRE(std::isnan(mx[3]));
  // the same data as 4 x 4 reduced over the first dim (columns)
  max_cpu(Exec::current(), mx.data(), x.data(), 1, 4, 4);
  argmax_cpu(Exec::current(), am.data(), x.data(), 1, 4, 4);
  REQUIRE(am == std::vector<int64_t>{0, 3, 3, 3});
  REQUIRE(mx[0] == 1);
  REQUIRE(std::isnan(mx[1]));
  REQUIRE(mx[2] == 5);
  REQUIRE(std::isnan(mx[3]));
}

TEST_CASE("max_cpu / argmax_cpu: against plain loops, any threads", "[reduce][deterministic]") {
  const int64_t shapes[][3] = {{1000, 17, 1}, {3, 100003, 1}, {64, 4096, 1}, {7, 129, 300}, {2, 5, 4097}};
  for (auto& s : shapes) {
    const int64_t outer = s[0], d = s[1], inner = s[2];
    std::vector<float> x = random_floats(static_cast<size_t>(outer * d * inner), 43);
    for (size_t i = 0; i < x.size(); i += 7) x[i] = 0.5f;  // plenty of ties
    std::vector<float> want(outer * inner);
    std::vector<int64_t> want_i(outer * inner);
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t j = 0; j < inner; ++j) {
        int64_t best = 0;
        for (int64_t k = 1; k < d; ++k)
          if (x[(o * d + k) * inner + j] > x[(o * d + best) * inner + j]) best = k;
        want_i[o * inner + j] = best;
        want[o * inner + j] = x[(o * d + best) * inner + j];
      }
    for (int t : kThreadCounts) {
      ThreadsGuard tg(t);
      std::vector<float> got(outer * inner);
      std::vector<int64_t> got_i(outer * inner);
      max_cpu(Exec::current(), got.data(), x.data(), outer, d, inner);
      argmax_cpu(Exec::current(), got_i.data(), x.data(), outer, d, inner);
      REQUIRE_BITWISE_EQUAL(got, want);
      REQUIRE(got_i == want_i);
    }
  }
}

TEST_CASE("fast sums: within tolerance of a float64 reference", "[reduce][fast]") {
  const double tol = 1e-5;  // times sum |x|: kernels/reduce.h
  for (int64_t n : kSizes) {
    std::vector<float> x = spread_floats(static_cast<size_t>(n), 47);
    for (int t : kThreadCounts) {
      ThreadsGuard tg(t);
      float got = -1.0f;
      sum_fast_cpu(Exec::current(), &got, x.data(), n);
      INFO("n = " << n << ", threads " << t);
      REQUIRE(std::fabs(got - sum_f64(x.data(), n)) <= tol * sum_abs(x.data(), n));
    }
  }
  const int64_t rows = 3, cols = 100003;
  std::vector<float> x = spread_floats(rows * cols, 53);
  for (int t : kThreadCounts) {
    ThreadsGuard tg(t);
    std::vector<float> got(rows);
    sum_rows_fast_cpu(Exec::current(), got.data(), x.data(), rows, cols);
    for (int64_t r = 0; r < rows; ++r)
      REQUIRE(std::fabs(got[r] - sum_f64(&x[r * cols], cols)) <= tol * sum_abs(&x[r * cols], cols));
    // the same data as 3 x 100003 x 1 and 1 x 3 x 100003 over the middle dim
    std::vector<float> cols_out(cols);
    sum_mid_fast_cpu(Exec::current(), cols_out.data(), x.data(), 1, rows, cols);
    for (int64_t j = 0; j < cols; ++j) {
      double ref = 0, mag = 0;
      for (int64_t r = 0; r < rows; ++r) ref += x[r * cols + j], mag += std::fabs(x[r * cols + j]);
      REQUIRE(std::fabs(cols_out[j] - ref) <= tol * mag);
    }
    std::vector<float> tall(1);
    sum_mid_fast_cpu(Exec::current(), tall.data(), x.data(), 1, rows * cols, 1);
    REQUIRE(std::fabs(tall[0] - sum_f64(x.data(), rows * cols)) <= tol * sum_abs(x.data(), rows * cols));
  }
}

TEST_CASE("fast sums: report whether the bits moved (informational)", "[reduce][fast]") {
  // Fast mode promises nothing about bits; this reports what this machine did. It asserts
  // only the tolerance.
  const int64_t n = int64_t(1) << 22;
  std::vector<float> x = spread_floats(static_cast<size_t>(n), 59);
  const double ref = sum_f64(x.data(), n), mag = sum_abs(x.data(), n);
  std::set<uint32_t> across_runs, across_threads;
  {
    ThreadsGuard tg(2);
    for (int rep = 0; rep < 20; ++rep) {
      float got;
      sum_fast_cpu(Exec::current(), &got, x.data(), n);
      REQUIRE(std::fabs(got - ref) <= 1e-5 * mag);
      across_runs.insert(bits(got));
    }
  }
  for (int t : kThreadCounts) {
    ThreadsGuard tg(t);
    float got;
    sum_fast_cpu(Exec::current(), &got, x.data(), n);
    REQUIRE(std::fabs(got - ref) <= 1e-5 * mag);
    across_threads.insert(bits(got));
  }
  std::set<uint32_t> det;
  for (int t : kThreadCounts) {
    ThreadsGuard tg(t);
    float got;
    sum_cpu(Exec::current(), &got, x.data(), n);
    det.insert(bits(got));
  }
  REQUIRE(det.size() == 1);
  WARN("fast sum of 2^22 floats: " << across_runs.size() << " distinct results in 20 runs on 2 threads, "
       << across_threads.size() << " distinct across 1/2/3/8 threads (deterministic: always 1)");
}

// ---- the ops (core/ops/reduce.cpp) ----

TEST_CASE("sum/mean ops: last dim contiguous order, other dims batch order", "[reduce][deterministic]") {
  const int64_t R = 129, C = 4097;
  std::vector<float> v = spread_floats(R * C, 61);
  Tensor x = Tensor::from_vector(v, {R, C});
  // whole tensor
  REQUIRE(bits(static_cast<float>(sum(x).item())) == bits(canonical_sum(v.data(), R * C)));
  // last dim: each row
  std::vector<float> rows = sum(x, 1).to_vector<float>();
  std::vector<float> rows_neg = sum(x, -1, true).to_vector<float>();
  REQUIRE(sum(x, -1, true).shape() == Shape{R, 1});
  for (int64_t r = 0; r < R; ++r) REQUIRE(bits(rows[r]) == bits(canonical_sum(&v[r * C], C)));
  REQUIRE_BITWISE_EQUAL(rows, rows_neg);
  // first dim: batch order
  std::vector<float> cols = sum(x, 0).to_vector<float>();
  REQUIRE_BITWISE_EQUAL(cols, canonical_cols(v.data(), R, C));
  // mean = sum / n in float
  std::vector<float> m = mean(x, 0).to_vector<float>();
  for (int64_t j = 0; j < C; ++j) REQUIRE(bits(m[j]) == bits(cols[j] / static_cast<float>(R)));
  REQUIRE(bits(static_cast<float>(mean(x).item())) ==
          bits(canonical_sum(v.data(), R * C) / static_cast<float>(R * C)));
  // a middle dim of a 3-d tensor
  Tensor y = x.reshape({3, 43, C});
  REQUIRE(sum(y, 1).shape() == Shape{3, C});
  std::vector<float> mid = sum(y, 1).to_vector<float>();
  for (int o = 0; o < 3; ++o) {
    std::vector<float> w = canonical_cols(&v[o * 43 * C], 43, C);
    REQUIRE(std::equal(w.begin(), w.end(), mid.begin() + o * C,
                       [](float a, float b) { return bits(a) == bits(b); }));
  }
}

TEST_CASE("sum/mean/max ops: 0-d, empty, strided and float64 inputs", "[reduce][deterministic]") {
  Tensor s = Tensor::scalar(-2.5);
  REQUIRE(sum(s).item() == -2.5);
  REQUIRE(sum(s, 0).dim() == 0);
  REQUIRE(sum(s, -1, true).item() == -2.5);
  REQUIRE(max(s, 0).item() == -2.5);
  REQUIRE(argmax(s, 0).item() == 0);

  Tensor e = Tensor::zeros({0, 3});
  REQUIRE(sum(e).item() == 0.0);
  REQUIRE(std::isnan(mean(e).item()));
  REQUIRE(sum(e, 0).to_vector<float>() == std::vector<float>{0, 0, 0});
  REQUIRE(std::isnan(mean(e, 0).to_vector<float>()[1]));
  REQUIRE(sum(e, 1).shape() == Shape{0});
  REQUIRE(max(e, 1).shape() == Shape{0});

  // a transposed view is made contiguous first
  Tensor a = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  REQUIRE(sum(a.t(), 1).to_vector<float>() == std::vector<float>{5, 7, 9});
  REQUIRE(argmax(a.t(), 0).to_vector<int64_t>() == std::vector<int64_t>{2, 2});
  REQUIRE(max(a, 1, true).to_vector<float>() == std::vector<float>{3, 6});
  REQUIRE(max(a, 1, true).shape() == Shape{2, 1});

  std::vector<double> dv = lockstep_test::random_doubles(5000, 67);
  Tensor d = Tensor::from_vector(dv, {5000});
  REQUIRE(d.dtype() == DType::f64);
  REQUIRE(sum(d).item() == sum_cpu_ref(dv.data(), 5000));
}

TEST_CASE("sum ops in fast mode stay within tolerance", "[reduce][fast]") {
  std::vector<float> v = spread_floats(3 * 100003, 71);
  Tensor x = Tensor::from_vector(v, {3, 100003});
  ModeGuard mg(Mode::fast);
  REQUIRE(std::fabs(sum(x).item() - sum_f64(v.data(), v.size())) <= 1e-5 * sum_abs(v.data(), v.size()));
  std::vector<float> rows = sum(x, 1).to_vector<float>();
  for (int r = 0; r < 3; ++r)
    REQUIRE(std::fabs(rows[r] - sum_f64(&v[r * 100003], 100003)) <= 1e-5 * sum_abs(&v[r * 100003], 100003));
  std::vector<float> cols = mean(x, 0).to_vector<float>();
  for (int64_t j = 0; j < 100003; j += 1000) {
    const double ref = (double(v[j]) + v[100003 + j] + v[2 * 100003 + j]) / 3;
    REQUIRE(std::fabs(cols[j] - ref) <= 1e-5 * (std::fabs(v[j]) + std::fabs(v[100003 + j]) + std::fabs(v[2 * 100003 + j])));
  }
}
