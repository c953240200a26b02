// CPU dropout (kernels/dropout.h). Threads split the Philox blocks: block b serves the four
// positions 4b .. 4b+3, i.e. elements 4b .. 4b+3 (step << 40 is a multiple of 4), so each
// block is generated once and its words taken in order; the result equals dropout_keep()
// element by element.
#include "kernels/dropout.h"

#include <algorithm>
#include <cassert>
#include <type_traits>

#include "base/parallel.h"
#include "lockstep/config.h"

namespace lockstep {
namespace {

constexpr int64_t kGrainBlocks = 2048;  // Philox blocks (4 elements each) per task
constexpr int64_t kGrainCopy = 65536;

inline float scale_of(float p, float) { return 1.0f / (1.0f - p); }
inline double scale_of(float p, double) { return 1.0 / (1.0 - static_cast<double>(p)); }

template <typename T>
void forward_impl(const Exec& ex, T* y, uint8_t* mask, const T* x, int64_t n, float p, uint64_t seed, uint64_t stream,
                  uint64_t step, uint64_t offset) {
  assert(p >= 0.0f && p <= 1.0f);
  assert(offset + n <= (uint64_t(1) << kDropoutStepShift) && step < (uint64_t(1) << (64 - kDropoutStepShift)));
  if (p == 0.0f || p == 1.0f) {
    // no draws: keep everything (bits copied) or drop everything (x * 0)
    const bool keep = p == 0.0f;
    parallel_for(n, kGrainCopy, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) y[i] = keep ? x[i] : x[i] * T(0);
      if (mask) std::fill(mask + b, mask + e, static_cast<uint8_t>(keep));
    });
    return;
  }
  const T scale = scale_of(p, T());
  // Positions pos0 .. pos0 + n - 1; `lead` of them share their first block with positions
  // before pos0 (offset not a multiple of 4), so block b covers elements 4b - lead .. 4b - lead + 3.
  const uint64_t pos0 = (step << kDropoutStepShift) + offset;
  const uint64_t first_block = pos0 >> 2;
  const int64_t lead = static_cast<int64_t>(pos0 & 3);
  // The AVX2 path makes whole aligned blocks (lead == 0: block b is elements 4b .. 4b+3).
  const bool simd = ex.avx2() && std::is_same<T, float>::value && lead == 0;
  parallel_for((n + lead + 3) / 4, kGrainBlocks, [&](int64_t b0, int64_t b1) {
#if LOCKSTEP_HAVE_AVX2
    if (simd) {  // whole blocks in AVX2; a last partial block (n % 4 != 0) below
      const int64_t full_end = std::min(b1, n / 4);
      if constexpr (std::is_same<T, float>::value)
        dropout_forward_blocks_avx2(y, mask, x, b0, full_end, p, seed, stream, first_block);
      b0 = std::max(b0, full_end);
    }
#endif
    (void)simd;
    for (int64_t blk = b0; blk < b1; ++blk) {
      const Philox4x32 w = philox_block(seed, stream, first_block + static_cast<uint64_t>(blk));
      for (int64_t k = 0; k < 4; ++k) {
        const int64_t i = 4 * blk + k - lead;
        if (i < 0 || i >= n) continue;
        const bool keep = uint32_to_uniform01f(w.w[k]) >= p;
        y[i] = x[i] * (keep ? scale : T(0));
        if (mask) mask[i] = static_cast<uint8_t>(keep);
      }
    }
  });
}

template <typename T>
void backward_impl(const Exec& ex, T* dx, const T* dy, const uint8_t* mask, int64_t n, float p) {
  assert(p >= 0.0f && p <= 1.0f);
  const bool identity = p == 0.0f;
  const T scale = p < 1.0f ? scale_of(p, T()) : T(0);
  if (identity) {
    parallel_for(n, kGrainCopy, [&](int64_t b, int64_t e) { std::copy(dy + b, dy + e, dx + b); });
    return;
  }
  const bool simd = ex.avx2() && std::is_same<T, float>::value;
  parallel_for(n, kGrainCopy, [&](int64_t b, int64_t e) {
#if LOCKSTEP_HAVE_AVX2
    if constexpr (std::is_same<T, float>::value)
      if (simd) return dropout_backward_run_avx2(dx + b, dy + b, mask + b, e - b, scale);
#endif
    (void)simd;
    for (int64_t i = b; i < e; ++i) dx[i] = dy[i] * (mask[i] ? scale : T(0));
  });
}

}  // namespace

template <typename T>
void dropout_forward_cpu(const Exec& ex, T* y, uint8_t* mask, const T* x, int64_t n, float p, uint64_t seed,
                         uint64_t stream, uint64_t step, uint64_t offset) {
  forward_impl(ex, y, mask, x, n, p, seed, stream, step, offset);
}
template <typename T>
void dropout_backward_cpu(const Exec& ex, T* dx, const T* dy, const uint8_t* mask, int64_t n, float p) {
  backward_impl(ex, dx, dy, mask, n, p);
}

#define LS_DROPOUT(T)                                                                                     \
  template void dropout_forward_cpu<T>(const Exec&, T*, uint8_t*, const T*, int64_t, float, uint64_t, \
                                       uint64_t, uint64_t, uint64_t);                                   \
  template void dropout_backward_cpu<T>(const Exec&, T*, const T*, const uint8_t*, int64_t, float);
LS_DROPOUT(float)
LS_DROPOUT(double)
#undef LS_DROPOUT

}  // namespace lockstep
