// Deterministic float conv2d with im2col packed straight into the GEMM micro-kernels'
// strips (kernels/conv2d_packed.h). The micro-kernels are gemm_internal.h's, called with the
// same TileArgs contract as gemm_cpu.cpp's driver; only the packing and the loops are here.
//
// Forward: out (pixels x Og) = col^T W_g^T. Output pixels (n, oh, ow) of the whole batch are
// the GEMM's rows, in blocks of kPixBlock; a block's A strips (kMR pixels x kc taps) are
// gathered from the padded input, W_g^T is packed once per call (kNR output channels per
// strip). The tiles' raw sums then go to NCHW with the bias.
// Grad-weight, per chunk of samples: dw_g^T (K x Og) = col dy_g^T, k = the chunk's pixels.
// For each k block: dy_g^T is packed (kNR channels per strip), then the taps in groups of
// kGroupA strips (kMR taps each) are gathered and run against it; partials wait between k
// blocks in a per-tile buffer, so every entry is one chain in increasing pixel order.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "base/parallel.h"
#include "kernels/conv2d_packed.h"
#include "kernels/gemm_internal.h"
#include "kernels/reduce_order.h"
#include "lockstep/config.h"
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace lockstep {
namespace {

using namespace gemm_detail;

constexpr int64_t kPixBlock = kMR * kGroupA * 5;  // forward: output pixels per block (150)
constexpr int64_t kMinFmas = int64_t{1} << 20;    // work per thread task (as gemm_cpu.cpp)
constexpr int64_t kMaxKc = 512;                   // longest k block (AVX-512's; AVX2 256)

int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// A per-thread 64-byte aligned scratch buffer of at least n floats, kept between calls
// (fresh buffers cost page faults on every step). slot: one buffer per use within a call.
float* scratch64(int slot, int64_t n) {
  thread_local std::vector<float> bufs[4];
  std::vector<float>& b = bufs[slot];
  if (static_cast<int64_t>(b.size()) < n + 16) b.resize(static_cast<size_t>(n + 16));
  const uintptr_t p = reinterpret_cast<uintptr_t>(b.data());
  return reinterpret_cast<float*>((p + 63) & ~uintptr_t{63});
}

struct Kernels {
  TileKernel tile = nullptr;  // one kMR x kNR tile per call
  bool group = false;         // AVX-512: gemm_group_avx512 for 2..kGroupA full tiles
  int64_t kc_max = 256;       // k block
};

Kernels kernels_for(const Exec& ex) {
  Kernels k;
#if LOCKSTEP_HAVE_AVX2
  if (ex.avx2()) k.tile = gemm_tile_avx2;
#endif
#if LOCKSTEP_HAVE_AVX512
  if (ex.avx512()) k.group = true, k.kc_max = kMaxKc;
#endif
#if LOCKSTEP_HAVE_NEON
  if (ex.neon()) k.tile = gemm_tile_neon;
#endif
  (void)ex;
  return k;
}

// The padded input's geometry and the offset tables: tap (c, i, j) of group 0 at toff[k],
// output pixel (oh, ow)'s window corner at poff[p], both from the start of a sample.
struct Geo {
  int64_t Hp, Wp, plane, sample;
  std::vector<int64_t> toff, poff;
  explicit Geo(const Conv2dDims& d)
      : Hp(d.H + 2 * d.pad_h), Wp(d.W + 2 * d.pad_w), plane(Hp * Wp), sample(d.C * plane) {
    for (int64_t c = 0; c < d.cg(); ++c)
      for (int64_t i = 0; i < d.KH; ++i)
        for (int64_t j = 0; j < d.KW; ++j) toff.push_back(c * plane + i * d.dil_h * Wp + j * d.dil_w);
    for (int64_t oh = 0; oh < d.OH; ++oh)
      for (int64_t ow = 0; ow < d.OW; ++ow) poff.push_back(oh * d.stride_h * Wp + ow * d.stride_w);
  }
};

// x with pad_h zero rows and pad_w zero columns around every plane (the calling thread's
// scratch slot 0), or x itself without padding. A tap's row ih = oh s - pad + i dil is
// row ih + pad here, always inside: OH's formula keeps every window in the padded plane.
const float* pad_input(const Conv2dDims& d, const Geo& g, const float* x) {
  if (d.pad_h == 0 && d.pad_w == 0) return x;
  float* xp = scratch64(0, d.N * g.sample);
  parallel_for(d.N * d.C, 16, [&](int64_t b, int64_t e) {
    for (int64_t q = b; q < e; ++q) {
      float* dst = xp + q * g.plane;
      const float* src = x + q * d.H * d.W;
      std::fill(dst, dst + d.pad_h * g.Wp, 0.0f);
      for (int64_t h = 0; h < d.H; ++h) {
        float* row = dst + (h + d.pad_h) * g.Wp;
        std::fill(row, row + d.pad_w, 0.0f);
        std::memcpy(row + d.pad_w, src + h * d.W, sizeof(float) * d.W);
        std::fill(row + d.pad_w + d.W, row + g.Wp, 0.0f);
      }
      std::fill(dst + (d.pad_h + d.H) * g.Wp, dst + g.plane, 0.0f);
    }
  });
  return xp;
}

// dst[j ds + i] = src[i ss + j] (+ add[j] when add) for i < m, j < 4: a 4-column slice of m
// rows written as 4 rows of m (a layout change: moves, and at most one add per element, so
// the bits do not depend on how it is done). SSE: 4 x 4 blocks transposed in registers.
void transpose4(const float* src, int64_t ss, float* dst, int64_t ds, int64_t m, const float* add) {
  int64_t i = 0;
#if defined(__SSE2__)
  const __m128 z = _mm_setzero_ps();
  const __m128 a0 = add ? _mm_set1_ps(add[0]) : z, a1 = add ? _mm_set1_ps(add[1]) : z;
  const __m128 a2 = add ? _mm_set1_ps(add[2]) : z, a3 = add ? _mm_set1_ps(add[3]) : z;
  for (; i + 4 <= m; i += 4) {
    __m128 r0 = _mm_loadu_ps(src + i * ss), r1 = _mm_loadu_ps(src + (i + 1) * ss);
    __m128 r2 = _mm_loadu_ps(src + (i + 2) * ss), r3 = _mm_loadu_ps(src + (i + 3) * ss);
    _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
    if (add) r0 = _mm_add_ps(r0, a0), r1 = _mm_add_ps(r1, a1), r2 = _mm_add_ps(r2, a2), r3 = _mm_add_ps(r3, a3);
    _mm_storeu_ps(dst + i, r0), _mm_storeu_ps(dst + ds + i, r1);
    _mm_storeu_ps(dst + 2 * ds + i, r2), _mm_storeu_ps(dst + 3 * ds + i, r3);
  }
#endif
  for (; i < m; ++i)
    for (int64_t j = 0; j < 4; ++j) dst[j * ds + i] = add ? src[i * ss + j] + add[j] : src[i * ss + j];
}

// The other way: dst[i ds + j] = src[j ss + i] for i < m, j < 4 (4 rows of m written as m
// rows of 4).
void transpose4_rows(const float* src, int64_t ss, float* dst, int64_t ds, int64_t m) {
  int64_t i = 0;
#if defined(__SSE2__)
  for (; i + 4 <= m; i += 4) {
    __m128 r0 = _mm_loadu_ps(src + i), r1 = _mm_loadu_ps(src + ss + i);
    __m128 r2 = _mm_loadu_ps(src + 2 * ss + i), r3 = _mm_loadu_ps(src + 3 * ss + i);
    _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
    _mm_storeu_ps(dst + i * ds, r0), _mm_storeu_ps(dst + (i + 1) * ds, r1);
    _mm_storeu_ps(dst + (i + 2) * ds, r2), _mm_storeu_ps(dst + (i + 3) * ds, r3);
  }
#endif
  for (; i < m; ++i)
    for (int64_t j = 0; j < 4; ++j) dst[i * ds + j] = src[j * ss + i];
}

// One pass of micro-kernel calls over n_jr B strips x n_ir A strips for one k block.
struct TileRun {
  const float* a;    // n_ir packed A strips (kc x kMR each), back to back
  int64_t n_ir;
  const float* b;    // packed B strip jr at b + jr * b_stride (kc x kNR)
  int64_t b_stride, n_jr, kc;
  bool first, last;  // the chain starts at +0 / the result goes to C (else raw to work)
  float* work;       // tile (jr, ir)'s partial at work + (jr * n_ir + ir) * kTile
  float* c;          // when last: C at row 0 of strip 0, column 0 of strip 0
  int64_t ldc, m, n;  // valid rows (from strip 0 on) and columns of C
};

void run_tiles(const Kernels& kn, const TileRun& r) {
  const int64_t ga = kn.group ? kGroupA : 1;
  for (int64_t jr = 0; jr < r.n_jr; ++jr) {
    const int64_t j = jr * kNR, nr = std::min<int64_t>(kNR, r.n - j);
    const float* bs = r.b + jr * r.b_stride;
    const float* next_b = jr + 1 < r.n_jr ? bs + r.b_stride : bs;
    for (int64_t ir0 = 0; ir0 < r.n_ir; ir0 += ga) {
      const int64_t n_tiles = std::min(ga, r.n_ir - ir0);
      TileArgs xs[kGroupA];
      int n_full = 0;
      for (int64_t u = 0; u < n_tiles; ++u) {
        const int64_t ir = ir0 + u, i = ir * kMR, mr = std::max<int64_t>(0, std::min<int64_t>(kMR, r.m - i));
        TileArgs& x = xs[u];
        x.a = r.a + ir * r.kc * kMR;
        x.b = bs;
        x.kc = r.kc;
        x.chunked = false;
        x.first = r.first;
        x.last = r.last;
        x.partial = r.work + (jr * r.n_ir + ir) * kTile;
        x.c = r.last ? r.c + i * r.ldc + j : nullptr;
        x.ldc = r.ldc;
        x.mr = static_cast<int>(mr);
        x.nr = static_cast<int>(nr);
        x.full = mr == kMR && nr == kNR;
        x.bias = nullptr;
        x.accumulate = false;
        x.prefetch = next_b;
        if (x.full && n_full == u) ++n_full;
      }
      int64_t u = 0;
#if LOCKSTEP_HAVE_AVX512
      if (kn.group && n_full >= 2) {
        gemm_group_avx512(xs, n_full);
        u = n_full;
      }
#endif
      for (; u < n_tiles; ++u) kn.tile(xs[u]);
    }
  }
}

// A strip of kMR output pixels for taps toff[0 .. kc): dst[k kMR + r] = xp[base[r] + toff[k]],
// +0 for a row with base[r] < 0 (past the block). Consecutive bases (stride 1, one output
// row) are one 6-float copy per tap.
void pack_pixel_strip(const float* xp, const int64_t* base, const int64_t* toff, int64_t kc, float* dst) {
  bool run = base[0] >= 0, valid = true;
  for (int r = 1; r < kMR; ++r) run = run && base[r] == base[0] + r, valid = valid && base[r] >= 0;
  if (run) {
    const float* s = xp + base[0];
    for (int64_t k = 0; k < kc; ++k) {
      const float* q = s + toff[k];
      float* o = dst + k * kMR;
      for (int r = 0; r < kMR; ++r) o[r] = q[r];
    }
  } else if (valid && base[0] >= 0) {
    for (int64_t k = 0; k < kc; ++k)
      for (int r = 0; r < kMR; ++r) dst[k * kMR + r] = xp[base[r] + toff[k]];
  } else {
    for (int64_t k = 0; k < kc; ++k)
      for (int r = 0; r < kMR; ++r) dst[k * kMR + r] = base[r] >= 0 ? xp[base[r] + toff[k]] : 0.0f;
  }
}

// A strip of kMR taps (offsets to[0 .. kMR), -1: past K, packed as +0) over the pixels whose
// window corners are pb[0 .. kc): dst[k kMR + r] = xp[pb[k] + to[r]].
void pack_tap_strip(const float* xp, const int64_t* pb, const int64_t* to, int64_t kc, float* dst) {
  bool full = true;
  for (int r = 0; r < kMR; ++r) full = full && to[r] >= 0;
  if (full) {
    for (int64_t k = 0; k < kc; ++k) {
      const float* s = xp + pb[k];
      float* o = dst + k * kMR;
      for (int r = 0; r < kMR; ++r) o[r] = s[to[r]];
    }
  } else {
    for (int64_t k = 0; k < kc; ++k)
      for (int r = 0; r < kMR; ++r) dst[k * kMR + r] = to[r] >= 0 ? xp[pb[k] + to[r]] : 0.0f;
  }
}

}  // namespace

bool conv2d_packed_applies(const Exec& ex) { return kernels_for(ex).tile != nullptr; }

void conv2d_forward_packed(const Exec& ex, const Conv2dDims& d, float* y, const float* x, const float* w,
                           const float* bias) {
  if (d.N == 0) return;
  const Kernels kn = kernels_for(ex);
  const Geo geo(d);
  const float* xp = pad_input(d, geo, x);
  const int64_t K = d.k(), P = d.p(), Og = d.og(), Cg = d.cg(), T = d.N * P;
  // Balanced k blocks: any split continues the same chain.
  const int64_t nk = cdiv(K, kn.kc_max), kc = cdiv(K, nk), nb = cdiv(Og, kNR);
  const int64_t blocks = cdiv(T, kPixBlock);
  const int64_t grain = std::max<int64_t>(1, kMinFmas / (kPixBlock * Og * K));
  float* bp = scratch64(1, nb * K * kNR);
  for (int64_t g = 0; g < d.groups; ++g) {
    // W_g^T in kNR-channel strips, k-major: bp[(s K + k) kNR + c] = w[g Og + s kNR + c, k], 0 past Og.
    for (int64_t s = 0; s < nb; ++s)
      for (int64_t k = 0; k < K; ++k)
        for (int64_t c = 0; c < kNR; ++c) {
          const int64_t o = s * kNR + c;
          bp[(s * K + k) * kNR + c] = o < Og ? w[(g * Og + o) * K + k] : 0.0f;
        }
    const int64_t gofs = g * Cg * geo.plane;
    parallel_for(blocks, grain, [&](int64_t b0, int64_t b1) {
      float* ap = scratch64(2, kPixBlock * kc);
      float* work = scratch64(3, (kPixBlock / kMR) * nb * kTile);
      int64_t base[kPixBlock];
      for (int64_t blk = b0; blk < b1; ++blk) {
        const int64_t t0 = blk * kPixBlock, mb = std::min(kPixBlock, T - t0), n_ir = cdiv(mb, kMR);
        // Window corners of the block's pixels; (n, p) advance without a division per pixel
        // (two divisions a pixel cost more than the 9-tap GEMM of the recipe's first layer).
        for (int64_t r = 0, n = t0 / P, p = t0 % P; r < n_ir * kMR; ++r) {
          base[r] = r < mb ? n * geo.sample + gofs + geo.poff[p] : -1;
          if (++p == P) p = 0, ++n;
        }
        for (int64_t pc = 0; pc < nk; ++pc) {
          const int64_t k0 = pc * kc, kcb = std::min(kc, K - k0);
          for (int64_t ir = 0; ir < n_ir; ++ir)
            pack_pixel_strip(xp, base + ir * kMR, geo.toff.data() + k0, kcb, ap + ir * kcb * kMR);
          TileRun tr;
          tr.a = ap, tr.n_ir = n_ir;
          tr.b = bp + k0 * kNR, tr.b_stride = K * kNR, tr.n_jr = nb, tr.kc = kcb;
          tr.first = pc == 0, tr.last = false;
          tr.work = work, tr.c = nullptr, tr.ldc = 0, tr.m = mb, tr.n = Og;
          run_tiles(kn, tr);
        }
        // Raw sums to NCHW: tile (jr, ir) row r is block row ir kMR + r, at work + (jr n_ir kMR + row) kNR.
        // Four channels at a time (transpose4), the rest one by one.
        const int64_t og4 = Og / 4 * 4;
        for (int64_t o = 0; o < og4; o += 4) {
          const float* col = work + (o / kNR) * n_ir * kTile + o % kNR;
          const float* bv = bias ? bias + g * Og + o : nullptr;
          int64_t n = t0 / P, p = t0 % P;
          for (int64_t r = 0; r < mb; ++n, p = 0) {
            const int64_t len = std::min(mb - r, P - p);
            transpose4(col + r * kNR, kNR, y + (n * d.O + g * Og + o) * P + p, P, len, bv);
            r += len;
          }
        }
        for (int64_t o = og4; o < Og; ++o) {
          const float* col = work + (o / kNR) * n_ir * kTile + o % kNR;
          const float bv = bias ? bias[g * Og + o] : 0.0f;
          int64_t n = t0 / P, p = t0 % P;
          for (int64_t r = 0; r < mb; ++n, p = 0) {
            float* dst = y + (n * d.O + g * Og + o) * P;
            const int64_t len = std::min(mb - r, P - p);
            if (bias)
              for (int64_t q = 0; q < len; ++q) dst[p + q] = col[(r + q) * kNR] + bv;
            else
              for (int64_t q = 0; q < len; ++q) dst[p + q] = col[(r + q) * kNR];
            r += len;
          }
        }
      }
    });
  }
}

void conv2d_backward_input_packed(const Exec& ex, const Conv2dDims& d, float* dx, const float* dy, const float* w) {
  if (d.N == 0) return;
  const Kernels kn = kernels_for(ex);
  const int64_t K = d.k(), P = d.p(), Og = d.og(), Cg = d.cg(), HW = d.H * d.W;
  const int64_t nk = cdiv(Og, kn.kc_max), kc = cdiv(Og, nk);  // k = output channels
  const int64_t n_ir = cdiv(K, kMR), nb = cdiv(P, kNR);
  // W_g^T per group in kMR-tap strips, k-major: A block pc of strip ir at
  // wp[g K' Og + pc K' kc + ir kcb kMR] (K' = n_ir kMR), +0 past K.
  const int64_t Kp = n_ir * kMR;
  float* wp = scratch64(1, d.groups * Kp * Og);
  for (int64_t g = 0; g < d.groups; ++g)
    for (int64_t pc = 0; pc < nk; ++pc) {
      const int64_t k0 = pc * kc, kcb = std::min(kc, Og - k0);
      float* dst = wp + g * Kp * Og + k0 * Kp;
      for (int64_t ir = 0; ir < n_ir; ++ir)
        for (int64_t o = 0; o < kcb; ++o)
          for (int r = 0; r < kMR; ++r) {
            const int64_t k = ir * kMR + r;
            dst[(ir * kcb + o) * kMR + r] = k < K ? w[(g * Og + k0 + o) * K + k] : 0.0f;
          }
    }
  const int64_t grain = std::max<int64_t>(1, kMinFmas / std::max<int64_t>(1, K * P * Og * d.groups));
  parallel_for(d.N, grain, [&](int64_t s0, int64_t s1) {
    float* dcol = scratch64(0, K * P);
    float* bp = scratch64(2, nb * kc * kNR);
    float* work = scratch64(3, std::max<int64_t>(1, n_ir * nb * kTile));
    for (int64_t n = s0; n < s1; ++n) {
      float* dxs = dx + n * d.C * HW;
      std::fill(dxs, dxs + d.C * HW, 0.0f);
      for (int64_t g = 0; g < d.groups; ++g) {
        // dcol (K x P) = W_g^T dy_g: each entry the sum over o in increasing order.
        for (int64_t pc = 0; pc < nk; ++pc) {
          const int64_t k0 = pc * kc, kcb = std::min(kc, Og - k0);
          // dy_g rows k0 .. k0 + kcb in kNR-pixel strips: bp[(s kcb + o) kNR + c], +0 past P.
          for (int64_t s = 0; s < nb; ++s) {
            const int64_t p0 = s * kNR, w16 = std::min<int64_t>(kNR, P - p0);
            for (int64_t o = 0; o < kcb; ++o) {
              const float* src = dy + (n * d.O + g * Og + k0 + o) * P + p0;
              float* dst = bp + (s * kcb + o) * kNR;
              if (w16 == kNR)
                std::memcpy(dst, src, sizeof(float) * kNR);
              else
                for (int64_t c = 0; c < kNR; ++c) dst[c] = c < w16 ? src[c] : 0.0f;
            }
          }
          TileRun tr;
          tr.a = wp + g * Kp * Og + k0 * Kp, tr.n_ir = n_ir;
          tr.b = bp, tr.b_stride = kcb * kNR, tr.n_jr = nb, tr.kc = kcb;
          tr.first = pc == 0, tr.last = pc == nk - 1;
          tr.work = work, tr.c = dcol, tr.ldc = P, tr.m = K, tr.n = P;
          run_tiles(kn, tr);
        }
        conv2d_col2im_add(d, dcol, P, dxs + g * Cg * HW);
      }
    }
  });
}

void conv2d_weight_parts_packed(const Exec& ex, const Conv2dDims& d, float* parts, const float* dy,
                                const float* x) {
  if (d.N == 0) return;
  const Kernels kn = kernels_for(ex);
  const Geo geo(d);
  const float* xp = pad_input(d, geo, x);
  const int64_t K = d.k(), P = d.p(), Og = d.og(), Cg = d.cg(), O = d.O;
  const int64_t chunks = cdiv(d.N, kBatchChunk), nb = cdiv(Og, kNR);
  const int64_t tap_strips = cdiv(K, kMR), tap_groups = cdiv(tap_strips, kGroupA);
  // Items (chunk, group, range of tap groups): more ranges only when there are fewer
  // (chunk, group) pairs than threads. Any split gives the same sums.
  const int64_t pairs = chunks * d.groups;
  const int64_t splits = pairs >= num_threads() ? 1 : std::min(tap_groups, cdiv(num_threads(), pairs));
  parallel_for(pairs * splits, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t item = i0; item < i1; ++item) {
      const int64_t q = item / (d.groups * splits), g = (item / splits) % d.groups, sp = item % splits;
      const int64_t s_lo = tap_groups * sp / splits * kGroupA;
      const int64_t s_hi = std::min(tap_strips, tap_groups * (sp + 1) / splits * kGroupA);
      const int64_t n0 = q * kBatchChunk, nc = std::min(kBatchChunk, d.N - n0), L = nc * P;
      const int64_t nk = cdiv(L, kn.kc_max), kc = cdiv(L, nk);
      float* bp = scratch64(1, nb * kc * kNR);
      float* ap = scratch64(2, kGroupA * kMR * kc);
      float* work = scratch64(3, std::max<int64_t>(1, s_hi - s_lo) * nb * kTile);
      float* out = parts + q * O * K + g * K * Og;
      int64_t pb[kMaxKc];
      for (int64_t pc = 0; pc < nk; ++pc) {
        const int64_t k0 = pc * kc, kcb = std::min(kc, L - k0);
        for (int64_t u = 0, n = n0 + k0 / P, p = k0 % P; u < kcb; ++u) {
          pb[u] = n * geo.sample + g * Cg * geo.plane + geo.poff[p];
          if (++p == P) p = 0, ++n;
        }
        // dy_g^T in kNR-channel strips over the block's pixels: bp[(s kcb + u) kNR + c];
        // four channels at a time (transpose4_rows) while four remain, then one by one.
        for (int64_t s = 0; s < nb; ++s)
          for (int64_t c = 0; c < kNR; ++c) {
            const int64_t o = s * kNR + c;
            float* dst = bp + s * kcb * kNR + c;
            if (c % 4 == 0 && o + 4 <= Og) {
              int64_t n = n0 + k0 / P, p = k0 % P;
              for (int64_t u = 0; u < kcb; ++n, p = 0) {
                const int64_t len = std::min(kcb - u, P - p);
                transpose4_rows(dy + (n * O + g * Og + o) * P + p, P, dst + u * kNR, kNR, len);
                u += len;
              }
              c += 3;
              continue;
            }
            if (o >= Og) {
              for (int64_t u = 0; u < kcb; ++u) dst[u * kNR] = 0.0f;
              continue;
            }
            int64_t n = n0 + k0 / P, p = k0 % P;
            for (int64_t u = 0; u < kcb; ++n, p = 0) {
              const float* src = dy + (n * O + g * Og + o) * P;
              const int64_t len = std::min(kcb - u, P - p);
              for (int64_t v = 0; v < len; ++v) dst[(u + v) * kNR] = src[p + v];
              u += len;
            }
          }
        for (int64_t s = s_lo; s < s_hi; s += kGroupA) {
          const int64_t ns = std::min<int64_t>(kGroupA, s_hi - s);
          for (int64_t v = 0; v < ns; ++v) {
            int64_t to[kMR];
            for (int r = 0; r < kMR; ++r) {
              const int64_t k = (s + v) * kMR + r;
              to[r] = k < K ? geo.toff[k] : -1;
            }
            pack_tap_strip(xp, pb, to, kcb, ap + v * kcb * kMR);
          }
          TileRun tr;
          tr.a = ap, tr.n_ir = ns;
          tr.b = bp, tr.b_stride = kcb * kNR, tr.n_jr = nb, tr.kc = kcb;
          tr.first = pc == 0, tr.last = pc == nk - 1;
          tr.work = work + (s - s_lo) * nb * kTile;
          tr.c = out + s * kMR * Og, tr.ldc = Og, tr.m = K - s * kMR, tr.n = Og;
          run_tiles(kn, tr);
        }
      }
    }
  });
}

}  // namespace lockstep
