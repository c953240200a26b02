// Deterministic CPU conv2d (kernels/conv2d.h): im2col, the deterministic GEMM (gemm.h's
// sequential order per output, so its scalar, AVX2 and AVX-512 paths give the same bits)
// and an ordered col2im; grad-weight per chunk of kBatchChunk samples, then tree_sum.
// float at a SIMD level with a micro-kernel (AVX2, AVX-512, NEON): the forward, grad-input and
// the grad-weight chunk sums run conv2d_packed_cpu.cpp instead (im2col gathered straight into
// the micro-kernels' packed strips; the same chains, so the same bits). The loops below
// stay for float64 and the scalar level, and are what the packed path is tested against.
//
// Forward: im2col of about kRowsPerGemm output pixels' worth of samples side by side, one
// GEMM out = col^T W^T (output channels as the GEMM's columns: few edge tiles), then a
// transpose to NCHW. Grad-input, per sample: dcol = W^T dy, then col2im in tap order.
// Grad-weight: per chunk of kBatchChunk samples, dw^T = col dy^T, then tree_sum of the chunks.
// Threads: groups of samples (grad-weight: chunks) split across threads when there are at
// least as many as threads, each GEMM then on one thread; otherwise the GEMMs split their
// output tiles. Every sum is computed by one thread in the canonical order.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "base/parallel.h"
#include "kernels/conv2d.h"
#include "kernels/conv2d_packed.h"
#include "kernels/gemm.h"
#include "kernels/reduce_order.h"

namespace lockstep {
namespace {

// Input column iw = ow * s - pad + j * dil is inside [0, W) for ow in [lo, hi).
void valid_range(int64_t OW, int64_t W, int64_t s, int64_t off, int64_t& lo, int64_t& hi) {
  // smallest ow with ow * s + off >= 0, and smallest with ow * s + off >= W
  lo = off >= 0 ? 0 : (-off + s - 1) / s;
  hi = W - off <= 0 ? 0 : (W - off + s - 1) / s;
  lo = std::min(lo, OW);
  hi = std::max(lo, std::min(hi, OW));
}

// A per-thread scratch buffer of at least n elements, kept between calls: fresh buffers
// of a few MB each call cost page faults and zeroing (measured: ~15% of a training step of
// the CNN's second convolution). slot: one buffer per use within a call.
template <typename T>
T* scratch(int slot, int64_t n) {
  thread_local std::vector<T> bufs[2];
  std::vector<T>& b = bufs[slot];
  if (static_cast<int64_t>(b.size()) < n) b.resize(static_cast<size_t>(n));
  return b.data();
}

}  // namespace

template <typename T>
void conv2d_col2im_add(const Conv2dDims& d, const T* col, int64_t ldc, T* dx_group) {
  const int64_t Cg = d.cg();
  for (int64_t c = 0; c < Cg; ++c) {
    T* plane = dx_group + c * d.H * d.W;
    for (int64_t i = 0; i < d.KH; ++i)
      for (int64_t j = 0; j < d.KW; ++j) {
        const T* row = col + ((c * d.KH + i) * d.KW + j) * ldc;
        int64_t lo, hi;
        const int64_t off_w = j * d.dil_w - d.pad_w;
        valid_range(d.OW, d.W, d.stride_w, off_w, lo, hi);
        for (int64_t oh = 0; oh < d.OH; ++oh) {
          const int64_t ih = oh * d.stride_h - d.pad_h + i * d.dil_h;
          if (ih < 0 || ih >= d.H) continue;
          T* dst = plane + ih * d.W + off_w;
          const T* src = row + oh * d.OW;
          if (d.stride_w == 1)
            for (int64_t ow = lo; ow < hi; ++ow) dst[ow] = dst[ow] + src[ow];
          else
            for (int64_t ow = lo; ow < hi; ++ow) dst[ow * d.stride_w] = dst[ow * d.stride_w] + src[ow];
        }
      }
  }
}

namespace {

// parts[0 .. width) = tree_sum over the n partials parts[q * width ...] (reduce_order.h),
// element by element; parts is clobbered.
template <typename T>
void tree_combine(T* parts, int64_t n, int64_t width) {
  while (n > 1) {
    const int64_t half = n / 2;
    for (int64_t q = 0; q < half; ++q) {
      T* a = parts + q * width;
      const T* l = parts + 2 * q * width;
      const T* r = parts + (2 * q + 1) * width;
      for (int64_t e = 0; e < width; ++e) a[e] = l[e] + r[e];
    }
    if (n & 1) std::memmove(parts + half * width, parts + (n - 1) * width, sizeof(T) * width);
    n = half + (n & 1);
  }
}

}  // namespace

namespace {

// im2col when stride is 1 and OW == W (the "same" convolutions of the CNN recipe): a tap's
// valid output rows read one contiguous span of the plane, shifted by the tap's offset. One
// copy per tap instead of one per output row (the row copies' calls were most of im2col at
// 14 x 14), then the columns in the padding (which the span read from the neighbouring
// row, or not at all) are set to 0. The same values as the general loop.
template <typename T>
void im2col_same_stride1(const Conv2dDims& d, const T* xs, int64_t g, T* col, int64_t ldc) {
  const int64_t Cg = d.cg(), W = d.W, HW = d.H * d.W;
  for (int64_t c = 0; c < Cg; ++c) {
    const T* plane = xs + (g * Cg + c) * HW;
    for (int64_t i = 0; i < d.KH; ++i)
      for (int64_t j = 0; j < d.KW; ++j) {
        T* row = col + ((c * d.KH + i) * d.KW + j) * ldc;
        const int64_t off_h = i * d.dil_h - d.pad_h, off_w = j * d.dil_w - d.pad_w;
        int64_t lo, hi, oh_lo, oh_hi;
        valid_range(d.OW, W, 1, off_w, lo, hi);
        valid_range(d.OH, d.H, 1, off_h, oh_lo, oh_hi);
        // row[t] = plane[t + shift] for t in [t0, t1), clipped to the plane: [a, b).
        const int64_t shift = off_h * W + off_w, t0 = oh_lo * W, t1 = oh_hi * W;
        const int64_t a = std::min(t1, std::max(t0, -shift)), b = std::max(a, std::min(t1, HW - shift));
        std::fill(row, row + a, T(0));
        if (b > a) std::memcpy(row + a, plane + a + shift, sizeof(T) * (b - a));
        std::fill(row + b, row + d.OH * W, T(0));
        for (int64_t oh = oh_lo; oh < oh_hi; ++oh) {
          T* r = row + oh * W;
          for (int64_t ow = 0; ow < lo; ++ow) r[ow] = T(0);
          for (int64_t ow = hi; ow < W; ++ow) r[ow] = T(0);
        }
      }
  }
}

}  // namespace

template <typename T>
void conv2d_im2col(const Conv2dDims& d, const T* xs, int64_t g, T* col, int64_t ldc) {
  if (d.stride_h == 1 && d.stride_w == 1 && d.OW == d.W) return im2col_same_stride1(d, xs, g, col, ldc);
  const int64_t Cg = d.cg();
  for (int64_t c = 0; c < Cg; ++c) {
    const T* plane = xs + (g * Cg + c) * d.H * d.W;
    for (int64_t i = 0; i < d.KH; ++i)
      for (int64_t j = 0; j < d.KW; ++j) {
        T* row = col + ((c * d.KH + i) * d.KW + j) * ldc;
        int64_t lo, hi;
        const int64_t off_w = j * d.dil_w - d.pad_w;
        valid_range(d.OW, d.W, d.stride_w, off_w, lo, hi);
        for (int64_t oh = 0; oh < d.OH; ++oh) {
          T* r = row + oh * d.OW;
          const int64_t ih = oh * d.stride_h - d.pad_h + i * d.dil_h;
          if (ih < 0 || ih >= d.H) {
            std::fill(r, r + d.OW, T(0));
            continue;
          }
          const T* src = plane + ih * d.W + off_w;
          std::fill(r, r + lo, T(0));
          if (d.stride_w == 1)
            std::memcpy(r + lo, src + lo, sizeof(T) * (hi - lo));
          else
            for (int64_t ow = lo; ow < hi; ++ow) r[ow] = src[ow * d.stride_w];
          std::fill(r + hi, r + d.OW, T(0));
        }
      }
  }
}

// Samples per forward GEMM: about kRowsPerGemm output pixels, so that the im2col block
// (K x rows) is still in L2 when the GEMM packs it (measured with perf on the CNN's 32->64
// layer: batching 4096 pixels per GEMM spent 22% packing from L3, one sample 13%).
constexpr int64_t kRowsPerGemm = 512;

// Runs fn(first sample, samples) over N samples in groups of `per`: the groups split across
// threads when there are at least as many as threads (the GEMMs inside then run on one
// thread), otherwise they run in turn and each GEMM splits its tiles. Same bits either way.
template <typename Fn>
void for_sample_groups(int64_t N, int64_t per, Fn&& fn) {
  const int64_t groups = (N + per - 1) / per;
  auto run = [&](int64_t b, int64_t e) {
    for (int64_t q = b; q < e; ++q) fn(q * per, std::min(per, N - q * per));
  };
  if (groups > 1 && groups >= num_threads())
    parallel_for(groups, 1, run);
  else
    run(0, groups);
}

template <typename T>
void conv2d_forward_cpu(const Exec& ex, const Conv2dDims& d, T* y, const T* x, const T* w, const T* bias) {
  if constexpr (std::is_same_v<T, float>)
    if (conv2d_packed_applies(ex)) return conv2d_forward_packed(ex, d, y, x, w, bias);
  const int64_t K = d.k(), P = d.p(), Og = d.og();
  const int64_t per = std::max<int64_t>(1, std::min<int64_t>(d.N, kRowsPerGemm / std::max<int64_t>(1, P)));
  for_sample_groups(d.N, per, [&](int64_t n0, int64_t nc) {
    const int64_t L = nc * P;
    T* col = scratch<T>(0, K * L);
    T* out = scratch<T>(1, L * Og);
    for (int64_t g = 0; g < d.groups; ++g) {
      for (int64_t s = 0; s < nc; ++s) conv2d_im2col(d, x + (n0 + s) * d.C * d.H * d.W, g, col + s * P, L);
      // out (L x Og) = col^T W_g^T: a row per output pixel, a column per output channel
      // (few edge tiles); each entry the sequential k sum of gemm.h.
      GemmArgsT<T> a;
      a.trans_a = true, a.trans_b = true;
      a.M = L, a.N = Og, a.K = K;
      a.A = col, a.lda = L;
      a.B = w + g * Og * K, a.ldb = K;
      a.C = out, a.ldc = Og;
      gemm_cpu(ex, a);
      // To NCHW, then the bias (y = acc + b, as the GEMM's epilogue would add it).
      for (int64_t s = 0; s < nc; ++s)
        for (int64_t o = 0; o < Og; ++o) {
          T* dst = y + ((n0 + s) * d.O + g * Og + o) * P;
          const T* src = out + s * P * Og + o;
          const T bv = bias ? bias[g * Og + o] : T(0);
          if (bias)
            for (int64_t p = 0; p < P; ++p) dst[p] = src[p * Og] + bv;
          else
            for (int64_t p = 0; p < P; ++p) dst[p] = src[p * Og];
        }
    }
  });
}

template <typename T>
void conv2d_backward_input_cpu(const Exec& ex, const Conv2dDims& d, T* dx, const T* dy, const T* w) {
  if constexpr (std::is_same_v<T, float>)
    if (conv2d_packed_applies(ex)) return conv2d_backward_input_packed(ex, d, dx, dy, w);
  const int64_t K = d.k(), P = d.p(), Og = d.og(), Cg = d.cg(), HW = d.H * d.W;
  for_sample_groups(d.N, 1, [&](int64_t n, int64_t) {
    T* dcol = scratch<T>(0, K * P);
    T* dxs = dx + n * d.C * HW;
    std::fill(dxs, dxs + d.C * HW, T(0));
    for (int64_t g = 0; g < d.groups; ++g) {
      // dcol (K x P) = W_g^T (K x Og) dy_g (Og x P), each entry a sum over o in order.
      GemmArgsT<T> a;
      a.trans_a = true;
      a.M = K, a.N = P, a.K = Og;
      a.A = w + g * Og * K, a.lda = K;
      a.B = dy + (n * d.O + g * Og) * P, a.ldb = P;
      a.C = dcol, a.ldc = P;
      gemm_cpu(ex, a);
      conv2d_col2im_add(d, dcol, P, dxs + g * Cg * HW);
    }
  });
}

namespace {

// part[o] = the chunk's dy[n, o, p] summed from +0 over (n, p) in increasing order, for
// nc samples at dy. kLanes channels advance side by side, each its own chain in that order:
// one chain at a time waited on the add's latency (perf: ~5% of a layer-0 step).
template <typename T>
void chunk_bias_sums(const T* dy, int64_t nc, int64_t O, int64_t P, T* part) {
  constexpr int64_t kLanes = 8;
  for (int64_t o0 = 0; o0 < O; o0 += kLanes) {
    const int64_t lanes = std::min(kLanes, O - o0);
    T acc[kLanes] = {};
    for (int64_t s = 0; s < nc; ++s) {
      const T* r = dy + (s * O + o0) * P;
      for (int64_t p = 0; p < P; ++p)
        for (int64_t u = 0; u < lanes; ++u) acc[u] = acc[u] + r[u * P + p];
    }
    for (int64_t u = 0; u < lanes; ++u) part[o0 + u] = acc[u];
  }
}

}  // namespace

template <typename T>
void conv2d_backward_weight_cpu(const Exec& ex, const Conv2dDims& d, T* dw, T* db, const T* dy, const T* x) {
  const int64_t K = d.k(), P = d.p(), Og = d.og(), O = d.O;
  const int64_t chunks = (d.N + kBatchChunk - 1) / kBatchChunk;
  // Chunk q's partial of dw, transposed per group (K x Og at parts[q * O * K + g * K * Og]),
  // and of db at bparts[q * O].
  std::vector<T> parts(static_cast<size_t>(chunks * O * K)), bparts(db ? static_cast<size_t>(chunks * O) : 0);
  if constexpr (std::is_same_v<T, float>)
    if (conv2d_packed_applies(ex)) conv2d_weight_parts_packed(ex, d, parts.data(), dy, x);
  const bool packed = std::is_same_v<T, float> && conv2d_packed_applies(ex);
  auto one_chunk = [&](int64_t q) {
    const int64_t n0 = q * kBatchChunk, nc = std::min(kBatchChunk, d.N - n0), L = nc * P;
    T* col = packed ? nullptr : scratch<T>(0, K * L);
    T* dyg = packed ? nullptr : scratch<T>(1, Og * L);
    for (int64_t g = 0; g < d.groups && !packed; ++g) {
      // Rows (n, oh, ow) of the chunk side by side: col K x L, dy_g Og x L.
      for (int64_t s = 0; s < nc; ++s) {
        conv2d_im2col(d, x + (n0 + s) * d.C * d.H * d.W, g, col + s * P, L);
        for (int64_t o = 0; o < Og; ++o)
          std::memcpy(dyg + o * L + s * P, dy + ((n0 + s) * O + g * Og + o) * P, sizeof(T) * P);
      }
      // dw_g^T (K x Og) = col dy_g^T: the chunk's rows in order, one fma each.
      GemmArgsT<T> a;
      a.trans_b = true;
      a.M = K, a.N = Og, a.K = L;
      a.A = col, a.lda = L;
      a.B = dyg, a.ldb = L;
      a.C = parts.data() + q * O * K + g * K * Og, a.ldc = Og;
      gemm_cpu(ex, a);
    }
    if (db) chunk_bias_sums(dy + n0 * O * P, nc, O, P, bparts.data() + q * O);
  };
  if (chunks > 1)
    parallel_for(chunks, 1, [&](int64_t b, int64_t e) {
      for (int64_t q = b; q < e; ++q) one_chunk(q);
    });
  else
    one_chunk(0);
  tree_combine(parts.data(), chunks, O * K);
  for (int64_t g = 0; g < d.groups; ++g)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t o = 0; o < Og; ++o) dw[(g * Og + o) * K + k] = parts[g * K * Og + k * Og + o];
  if (db) {
    tree_combine(bparts.data(), chunks, O);
    std::memcpy(db, bparts.data(), sizeof(T) * O);
  }
}

// ---- references: the canonical orders as plain loops ----

namespace {
// x value at tap (c, i, j) of output (n, o's group g, oh, ow), 0 in the padding.
float tap(const Conv2dDims& d, const float* x, int64_t n, int64_t g, int64_t c, int64_t i, int64_t j, int64_t oh,
          int64_t ow) {
  const int64_t ih = oh * d.stride_h - d.pad_h + i * d.dil_h, iw = ow * d.stride_w - d.pad_w + j * d.dil_w;
  if (ih < 0 || ih >= d.H || iw < 0 || iw >= d.W) return 0.0f;
  return x[((n * d.C + g * d.cg() + c) * d.H + ih) * d.W + iw];
}
}  // namespace

void conv2d_forward_ref(const Conv2dDims& d, float* y, const float* x, const float* w, const float* bias) {
  for (int64_t n = 0; n < d.N; ++n)
    for (int64_t o = 0; o < d.O; ++o)
      for (int64_t oh = 0; oh < d.OH; ++oh)
        for (int64_t ow = 0; ow < d.OW; ++ow) {
          const int64_t g = o / d.og();
          float acc = 0.0f;
          for (int64_t c = 0; c < d.cg(); ++c)
            for (int64_t i = 0; i < d.KH; ++i)
              for (int64_t j = 0; j < d.KW; ++j)
                acc = std::fma(w[((o * d.cg() + c) * d.KH + i) * d.KW + j], tap(d, x, n, g, c, i, j, oh, ow), acc);
          if (bias) acc = acc + bias[o];
          y[((n * d.O + o) * d.OH + oh) * d.OW + ow] = acc;
        }
}

void conv2d_backward_input_ref(const Conv2dDims& d, float* dx, const float* dy, const float* w) {
  const int64_t Cg = d.cg(), Og = d.og();
  for (int64_t n = 0; n < d.N; ++n)
    for (int64_t ch = 0; ch < d.C; ++ch)
      for (int64_t h = 0; h < d.H; ++h)
        for (int64_t wi = 0; wi < d.W; ++wi) {
          const int64_t g = ch / Cg, c = ch % Cg;
          float acc = 0.0f;
          for (int64_t i = 0; i < d.KH; ++i)
            for (int64_t j = 0; j < d.KW; ++j) {
              const int64_t th = h + d.pad_h - i * d.dil_h, tw = wi + d.pad_w - j * d.dil_w;
              if (th < 0 || tw < 0 || th % d.stride_h || tw % d.stride_w) continue;
              const int64_t oh = th / d.stride_h, ow = tw / d.stride_w;
              if (oh >= d.OH || ow >= d.OW) continue;
              float t = 0.0f;
              for (int64_t o = g * Og; o < (g + 1) * Og; ++o)
                t = std::fma(w[((o * Cg + c) * d.KH + i) * d.KW + j], dy[((n * d.O + o) * d.OH + oh) * d.OW + ow], t);
              acc = acc + t;
            }
          dx[((n * d.C + ch) * d.H + h) * d.W + wi] = acc;
        }
}

void conv2d_backward_weight_ref(const Conv2dDims& d, float* dw, float* db, const float* dy, const float* x) {
  const int64_t Cg = d.cg(), Og = d.og(), chunks = (d.N + kBatchChunk - 1) / kBatchChunk;
  std::vector<float> parts(static_cast<size_t>(chunks));
  for (int64_t o = 0; o < d.O; ++o) {
    const int64_t g = o / Og;
    for (int64_t c = 0; c < Cg; ++c)
      for (int64_t i = 0; i < d.KH; ++i)
        for (int64_t j = 0; j < d.KW; ++j) {
          for (int64_t q = 0; q < chunks; ++q) {
            float acc = 0.0f;
            for (int64_t n = q * kBatchChunk; n < std::min(d.N, (q + 1) * kBatchChunk); ++n)
              for (int64_t oh = 0; oh < d.OH; ++oh)
                for (int64_t ow = 0; ow < d.OW; ++ow)
                  acc = std::fma(dy[((n * d.O + o) * d.OH + oh) * d.OW + ow], tap(d, x, n, g, c, i, j, oh, ow), acc);
            parts[q] = acc;
          }
          dw[((o * Cg + c) * d.KH + i) * d.KW + j] = tree_sum_inplace(parts.data(), chunks);
        }
    if (db) {
      for (int64_t q = 0; q < chunks; ++q) {
        float acc = 0.0f;
        for (int64_t n = q * kBatchChunk; n < std::min(d.N, (q + 1) * kBatchChunk); ++n)
          for (int64_t p = 0; p < d.p(); ++p) acc = acc + dy[(n * d.O + o) * d.p() + p];
        parts[q] = acc;
      }
      db[o] = tree_sum_inplace(parts.data(), chunks);
    }
  }
}

#define LS_CONV2D_INST(T)                                                                                   \
  template void conv2d_im2col<T>(const Conv2dDims&, const T*, int64_t, T*, int64_t);                        \
  template void conv2d_col2im_add<T>(const Conv2dDims&, const T*, int64_t, T*);                             \
  template void conv2d_forward_cpu<T>(const Exec&, const Conv2dDims&, T*, const T*, const T*, const T*);    \
  template void conv2d_backward_input_cpu<T>(const Exec&, const Conv2dDims&, T*, const T*, const T*);       \
  template void conv2d_backward_weight_cpu<T>(const Exec&, const Conv2dDims&, T*, T*, const T*, const T*);
LS_CONV2D_INST(float)
LS_CONV2D_INST(double)
#undef LS_CONV2D_INST

}  // namespace lockstep
