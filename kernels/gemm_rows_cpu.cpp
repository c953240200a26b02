// The few-row path of the deterministic float GEMM (kernels/gemm_rows.h): the driver and
// the portable chains. Threads take groups of kStripsMax strips (64 columns) for all rows.
#include "kernels/gemm_rows.h"

#include <algorithm>
#include <cmath>

#include "base/parallel.h"
#include "lockstep/config.h"

namespace lockstep {
namespace gemm_rows {
namespace {

// About 1 us of work per task at these sizes: the hand-off to a pool worker costs ~1 us
// (as kRowsMinFmasPerTask in gemm_cpu.cpp).
constexpr int64_t kRowsMinFmasPerTask = 1 << 20;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace

bool applies(const GemmArgs& g) {
  return g.order == KOrder::sequential && g.M >= 1 && g.M <= kRowsMax && g.N >= 1 && g.K >= 1 &&
         (!g.trans_b || g.b_packed);
}

void chains_scalar(const float* a, int64_t a_step, const float* const* b, int64_t b_step, int64_t K, int ns,
                   float* acc) {
  std::fill(acc, acc + ns * kCols, 0.0f);
  for (int64_t k = 0; k < K; ++k)
    for (int s = 0; s < ns; ++s)
      for (int c = 0; c < kCols; ++c)
        acc[s * kCols + c] = std::fma(a[k * a_step], b[s][k * b_step + c], acc[s * kCols + c]);
}

void gemm_rows_cpu(const Exec& ex, const GemmArgs& g) {
  // Strips of 16 columns: packed (edge strip zero-padded) or read in place; in place, the
  // last N % 16 columns are no strip and are summed one chain each below.
  const bool packed = g.b_packed != nullptr;
  const int64_t n_strips = packed ? ceil_div(g.N, kCols) : g.N / kCols;
  const int64_t tail0 = n_strips * kCols;  // first column no strip covers (N when packed)
  const int64_t n_groups = ceil_div(n_strips, kStripsMax) + (tail0 < g.N ? 1 : 0);
  const int64_t a_row = g.trans_a ? 1 : g.lda, a_step = g.trans_a ? g.lda : 1;
  const int64_t b_step = packed ? kCols : g.ldb;
  const bool simd = ex.avx2();
  // Epilogue of one output, in the canonical order.
  auto finish = [&](int64_t i, int64_t j, float acc) {
    float out = acc;
    if (g.bias) out = out + g.bias[j];
    float* c = g.C + i * g.ldc + j;
    if (g.accumulate) out = *c + out;
    *c = out;
  };
  const int64_t grain = std::max<int64_t>(1, kRowsMinFmasPerTask / (g.M * kStripsMax * kCols * g.K));
  parallel_for(n_groups, grain, [&](int64_t q0, int64_t q1) {
    alignas(32) float acc[kStripsMax * kCols];
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t s0 = q * kStripsMax;
      if (s0 >= n_strips) {
        // The in-place tail: one scalar chain per column (the same fma chain).
        for (int64_t i = 0; i < g.M; ++i)
          for (int64_t j = tail0; j < g.N; ++j) {
            const float* a = g.A + i * a_row;
            float sum = 0.0f;
            for (int64_t k = 0; k < g.K; ++k) sum = std::fma(a[k * a_step], g.B[k * g.ldb + j], sum);
            finish(i, j, sum);
          }
        continue;
      }
      const int ns = static_cast<int>(std::min<int64_t>(kStripsMax, n_strips - s0));
      const float* b[kStripsMax];
      for (int s = 0; s < ns; ++s) b[s] = packed ? g.b_packed + (s0 + s) * g.K * kCols : g.B + (s0 + s) * kCols;
      for (int64_t i = 0; i < g.M; ++i) {
        const float* a = g.A + i * a_row;
#if LOCKSTEP_HAVE_AVX2
        if (simd)
          chains_avx2(a, a_step, b, b_step, g.K, ns, acc);
        else
#endif
          chains_scalar(a, a_step, b, b_step, g.K, ns, acc);
        const int64_t j0 = s0 * kCols, w = std::min<int64_t>(ns * kCols, g.N - j0);
        for (int64_t c = 0; c < w; ++c) finish(i, j0 + c, acc[c]);
      }
    }
  });
  (void)simd;
}

}  // namespace gemm_rows
}  // namespace lockstep
