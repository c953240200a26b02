// Fast-mode CPU conv2d (kernels/conv2d.h): what a library does, cuDNN's algorithm choice
// included. None of this promises bits.
//
//   canonical    the deterministic conv2d_forward_cpu.
//   im2col_gemm  im2col of up to kFastChunk samples side by side (K x nc*P), one product
//                with the library GEMM (gemm_fast_cpu_with eigen), scattered back to NCHW.
//   direct       per output plane: y = sum over taps (i, j), then channels c, of
//                w * shifted x, with mul + add (no fma), padding skipped; a different
//                order and rounding from the canonical one.
//   winograd     F(2x2, 3x3) (Lavin and Gray): per 2x2 output tile, V = B^T d B of the
//                4x4 input patch, M = sum over c of U (x) V with U = G g G^T, y = A^T M A.
//                Fewer products, more additions; its error is measured by the lab
//                scenario winograd-numerics and bounded in tests/kernels/test_conv2d.cpp.
//
// Autotuner: the key is the shape, num_threads() and ex.simd; the first call with a key runs
// every applicable algorithm twice into y, keeps the fastest second run, and remembers it.
// Backward in fast mode: one autotuned GEMM (gemm_fast_cpu) per chunk of kFastChunk samples,
// grad-weight accumulated chunk after chunk (no tree), grad-bias one running sum per channel.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <tuple>
#include <type_traits>
#include <vector>

#include "base/parallel.h"
#include "kernels/conv2d.h"
#include "kernels/gemm.h"

namespace lockstep {
namespace {

constexpr int64_t kFastChunk = 64;

// The library GEMM (im2col_gemm's product) for float; double has none and runs the
// deterministic one.
template <typename T>
void lib_gemm(const Exec& ex, const GemmArgsT<T>& g) {
  if constexpr (std::is_same_v<T, float>)
    gemm_fast_cpu_with(ex, GemmAlgo::eigen, g);
  else
    gemm_cpu(ex, g);
}

// The backward's products: fast mode's autotuned GEMM (gemm.h: Eigen, split-K or canonical,
// whichever was timed fastest for the shape and thread count).
template <typename T>
void tuned_gemm(const Exec& ex, const GemmArgsT<T>& g) {
  gemm_fast_cpu(ex, g);
}

template <typename T>
void forward_im2col_gemm(const Exec& ex, const Conv2dDims& d, T* y, const T* x, const T* w, const T* bias) {
  const int64_t K = d.k(), P = d.p(), Og = d.og();
  std::vector<T> col, out;
  for (int64_t n0 = 0; n0 < d.N; n0 += kFastChunk) {
    const int64_t nc = std::min(kFastChunk, d.N - n0), L = nc * P;
    col.resize(static_cast<size_t>(K * L));
    out.resize(static_cast<size_t>(Og * L));
    for (int64_t g = 0; g < d.groups; ++g) {
      parallel_for(nc, 1, [&](int64_t b, int64_t e) {
        for (int64_t s = b; s < e; ++s) conv2d_im2col(d, x + (n0 + s) * d.C * d.H * d.W, g, col.data() + s * P, L);
      });
      GemmArgsT<T> a;
      a.M = Og, a.N = L, a.K = K;
      a.A = w + g * Og * K, a.lda = K;
      a.B = col.data(), a.ldb = L;
      a.C = out.data(), a.ldc = L;
      lib_gemm(ex, a);
      for (int64_t s = 0; s < nc; ++s)
        for (int64_t o = 0; o < Og; ++o) {
          T* dst = y + ((n0 + s) * d.O + g * Og + o) * P;
          const T* src = out.data() + o * L + s * P;
          const T b = bias ? bias[g * Og + o] : T(0);
          for (int64_t p = 0; p < P; ++p) dst[p] = src[p] + b;
        }
    }
  }
}

template <typename T>
void forward_direct(const Conv2dDims& d, T* y, const T* x, const T* w, const T* bias) {
  const int64_t Cg = d.cg(), Og = d.og(), P = d.p();
  parallel_for(d.N * d.O, 4, [&](int64_t b, int64_t e) {
    for (int64_t no = b; no < e; ++no) {
      const int64_t n = no / d.O, o = no % d.O, g = o / Og;
      T* plane = y + no * P;
      std::fill(plane, plane + P, bias ? bias[o] : T(0));
      for (int64_t i = 0; i < d.KH; ++i)
        for (int64_t j = 0; j < d.KW; ++j)
          for (int64_t c = 0; c < Cg; ++c) {
            const T wv = w[((o * Cg + c) * d.KH + i) * d.KW + j];
            const T* xp = x + (n * d.C + g * Cg + c) * d.H * d.W;
            const int64_t off_w = j * d.dil_w - d.pad_w;
            for (int64_t oh = 0; oh < d.OH; ++oh) {
              const int64_t ih = oh * d.stride_h - d.pad_h + i * d.dil_h;
              if (ih < 0 || ih >= d.H) continue;
              const T* src = xp + ih * d.W + off_w;
              T* dst = plane + oh * d.OW;
              for (int64_t ow = 0; ow < d.OW; ++ow) {
                const int64_t iw = ow * d.stride_w + off_w;
                if (iw >= 0 && iw < d.W) dst[ow] = dst[ow] + wv * src[ow * d.stride_w];
              }
            }
          }
    }
  });
}

// Winograd F(2x2, 3x3), stride 1, dilation 1, any padding.
template <typename T>
void forward_winograd(const Conv2dDims& d, T* y, const T* x, const T* w, const T* bias) {
  const int64_t Cg = d.cg(), Og = d.og(), G = d.groups;
  const int64_t th_n = (d.OH + 1) / 2, tw_n = (d.OW + 1) / 2, T_n = th_n * tw_n;
  // U[g][xi][o][c] = (G w G^T)[xi] for the 16 positions xi of the 4x4 transform.
  std::vector<T> U(static_cast<size_t>(G * 16 * Og * Cg));
  for (int64_t o = 0; o < d.O; ++o)
    for (int64_t c = 0; c < Cg; ++c) {
      const T* k = w + (o * Cg + c) * 9;
      T t[4][3];  // G k
      for (int col = 0; col < 3; ++col) {
        const T a = k[col], b = k[3 + col], e = k[6 + col];
        t[0][col] = a;
        t[1][col] = (a + b + e) * T(0.5);
        t[2][col] = (a - b + e) * T(0.5);
        t[3][col] = e;
      }
      const int64_t g = o / Og, ol = o % Og;
      for (int r = 0; r < 4; ++r) {
        const T a = t[r][0], b = t[r][1], e = t[r][2];
        const T u[4] = {a, (a + b + e) * T(0.5), (a - b + e) * T(0.5), e};
        for (int s = 0; s < 4; ++s) U[((g * 16 + r * 4 + s) * Og + ol) * Cg + c] = u[s];
      }
    }
  parallel_for(d.N, 1, [&](int64_t b, int64_t e) {
    std::vector<T> V(static_cast<size_t>(16 * Cg * T_n)), M(static_cast<size_t>(16 * Og * T_n));
    for (int64_t n = b; n < e; ++n)
      for (int64_t g = 0; g < G; ++g) {
        // V[xi][c][t] = (B^T patch B)[xi]
        for (int64_t c = 0; c < Cg; ++c) {
          const T* xp = x + (n * d.C + g * Cg + c) * d.H * d.W;
          for (int64_t t = 0; t < T_n; ++t) {
            const int64_t h0 = (t / tw_n) * 2 - d.pad_h, w0 = (t % tw_n) * 2 - d.pad_w;
            T p[4][4];
            for (int r = 0; r < 4; ++r)
              for (int s = 0; s < 4; ++s) {
                const int64_t ih = h0 + r, iw = w0 + s;
                p[r][s] = (ih >= 0 && ih < d.H && iw >= 0 && iw < d.W) ? xp[ih * d.W + iw] : T(0);
              }
            T q[4][4];  // B^T p
            for (int s = 0; s < 4; ++s) {
              q[0][s] = p[0][s] - p[2][s];
              q[1][s] = p[1][s] + p[2][s];
              q[2][s] = p[2][s] - p[1][s];
              q[3][s] = p[1][s] - p[3][s];
            }
            for (int r = 0; r < 4; ++r) {
              const T v[4] = {q[r][0] - q[r][2], q[r][1] + q[r][2], q[r][2] - q[r][1], q[r][1] - q[r][3]};
              for (int s = 0; s < 4; ++s) V[((r * 4 + s) * Cg + c) * T_n + t] = v[s];
            }
          }
        }
        // M[xi][o][t] = sum over c of U[xi][o][c] V[xi][c][t]
        std::fill(M.begin(), M.end(), T(0));
        for (int xi = 0; xi < 16; ++xi)
          for (int64_t o = 0; o < Og; ++o) {
            T* m = M.data() + (xi * Og + o) * T_n;
            for (int64_t c = 0; c < Cg; ++c) {
              const T u = U[((g * 16 + xi) * Og + o) * Cg + c];
              const T* v = V.data() + (xi * Cg + c) * T_n;
              for (int64_t t = 0; t < T_n; ++t) m[t] = m[t] + u * v[t];
            }
          }
        // y tile = A^T M A
        for (int64_t o = 0; o < Og; ++o) {
          T* plane = y + (n * d.O + g * Og + o) * d.p();
          const T bv = bias ? bias[g * Og + o] : T(0);
          for (int64_t t = 0; t < T_n; ++t) {
            T m[4][4];
            for (int xi = 0; xi < 16; ++xi) m[xi / 4][xi % 4] = M[(xi * Og + o) * T_n + t];
            T a[2][4];  // A^T m
            for (int s = 0; s < 4; ++s) {
              a[0][s] = m[0][s] + m[1][s] + m[2][s];
              a[1][s] = m[1][s] - m[2][s] - m[3][s];
            }
            const int64_t oh0 = (t / tw_n) * 2, ow0 = (t % tw_n) * 2;
            for (int r = 0; r < 2; ++r) {
              const T out[2] = {a[r][0] + a[r][1] + a[r][2], a[r][1] - a[r][2] - a[r][3]};
              for (int s = 0; s < 2; ++s)
                if (oh0 + r < d.OH && ow0 + s < d.OW) plane[(oh0 + r) * d.OW + ow0 + s] = out[s] + bv;
            }
          }
        }
      }
  });
}

template <typename T>
void run_algo(const Exec& ex, Conv2dAlgo algo, const Conv2dDims& d, T* y, const T* x, const T* w, const T* bias) {
  switch (algo) {
    case Conv2dAlgo::im2col_gemm: return forward_im2col_gemm(ex, d, y, x, w, bias);
    case Conv2dAlgo::direct: return forward_direct(d, y, x, w, bias);
    case Conv2dAlgo::winograd: return forward_winograd(d, y, x, w, bias);
    default: return conv2d_forward_cpu(ex, d, y, x, w, bias);
  }
}

using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                       int64_t, int64_t, int, int>;
std::mutex g_tune_mu;
std::map<Key, Conv2dAlgo> g_choice;

Key key_of(const Exec& ex, const Conv2dDims& d) {
  return Key{d.N, d.C, d.H, d.W, d.O, d.KH, d.KW, d.stride_h * 1000 + d.stride_w, d.pad_h * 1000 + d.pad_w,
             d.dil_h * 1000 + d.dil_w, d.groups, 0, num_threads(), static_cast<int>(ex.simd)};
}

Conv2dAlgo autotune(const Exec& ex, const Conv2dDims& d, float* y, const float* x, const float* w,
                    const float* bias) {
  std::lock_guard<std::mutex> lock(g_tune_mu);
  const Key key = key_of(ex, d);
  auto it = g_choice.find(key);
  if (it != g_choice.end()) return it->second;
  Conv2dAlgo best = Conv2dAlgo::canonical;
  double best_s = 1e300;
  for (Conv2dAlgo a : {Conv2dAlgo::canonical, Conv2dAlgo::im2col_gemm, Conv2dAlgo::direct, Conv2dAlgo::winograd}) {
    if (!conv2d_algo_applies(a, d)) continue;
    double t = 0;
    for (int rep = 0; rep < 2; ++rep) {  // the first run warms caches and buffers
      auto t0 = std::chrono::steady_clock::now();
      run_algo(ex, a, d, y, x, w, bias);
      t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    if (t < best_s) best_s = t, best = a;
  }
  g_choice[key] = best;
  return best;
}

}  // namespace

bool conv2d_algo_applies(Conv2dAlgo algo, const Conv2dDims& d) {
  if (algo == Conv2dAlgo::winograd)
    return d.KH == 3 && d.KW == 3 && d.stride_h == 1 && d.stride_w == 1 && d.dil_h == 1 && d.dil_w == 1;
  return true;
}

void conv2d_autotune_reset() {
  std::lock_guard<std::mutex> lock(g_tune_mu);
  g_choice.clear();
}

template <typename T>
Conv2dAlgo conv2d_forward_fast_cpu(const Exec& ex, Conv2dAlgo algo, const Conv2dDims& d, T* y, const T* x,
                                   const T* w, const T* bias) {
  if constexpr (!std::is_same_v<T, float>) {
    conv2d_forward_cpu(ex, d, y, x, w, bias);
    return Conv2dAlgo::canonical;
  } else {
    if (algo == Conv2dAlgo::autotune) algo = autotune(ex, d, y, x, w, bias);
    if (!conv2d_algo_applies(algo, d)) algo = Conv2dAlgo::im2col_gemm;
    run_algo(ex, algo, d, y, x, w, bias);
    return algo;
  }
}

template <typename T>
void conv2d_backward_input_fast_cpu(const Exec& ex, const Conv2dDims& d, T* dx, const T* dy, const T* w) {
  const int64_t K = d.k(), P = d.p(), Og = d.og(), Cg = d.cg(), HW = d.H * d.W;
  std::vector<T> dyg, dcol;
  std::fill(dx, dx + d.N * d.C * HW, T(0));
  for (int64_t n0 = 0; n0 < d.N; n0 += kFastChunk) {
    const int64_t nc = std::min(kFastChunk, d.N - n0), L = nc * P;
    dyg.resize(static_cast<size_t>(Og * L));
    dcol.resize(static_cast<size_t>(K * L));
    for (int64_t g = 0; g < d.groups; ++g) {
      for (int64_t s = 0; s < nc; ++s)
        for (int64_t o = 0; o < Og; ++o)
          std::memcpy(dyg.data() + o * L + s * P, dy + ((n0 + s) * d.O + g * Og + o) * P, sizeof(T) * P);
      GemmArgsT<T> a;
      a.trans_a = true;
      a.M = K, a.N = L, a.K = Og;
      a.A = w + g * Og * K, a.lda = K;
      a.B = dyg.data(), a.ldb = L;
      a.C = dcol.data(), a.ldc = L;
      tuned_gemm(ex, a);
      parallel_for(nc, 1, [&](int64_t b, int64_t e) {
        for (int64_t s = b; s < e; ++s)
          conv2d_col2im_add(d, dcol.data() + s * P, L, dx + ((n0 + s) * d.C + g * Cg) * HW);
      });
    }
  }
}

template <typename T>
void conv2d_backward_weight_fast_cpu(const Exec& ex, const Conv2dDims& d, T* dw, T* db, const T* dy,
                                     const T* x) {
  const int64_t K = d.k(), P = d.p(), Og = d.og();
  std::vector<T> dyg, col;
  for (int64_t n0 = 0; n0 < d.N; n0 += kFastChunk) {
    const int64_t nc = std::min(kFastChunk, d.N - n0), L = nc * P;
    dyg.resize(static_cast<size_t>(Og * L));
    col.resize(static_cast<size_t>(K * L));
    for (int64_t g = 0; g < d.groups; ++g) {
      parallel_for(nc, 1, [&](int64_t b, int64_t e) {
        for (int64_t s = b; s < e; ++s) {
          conv2d_im2col(d, x + (n0 + s) * d.C * d.H * d.W, g, col.data() + s * P, L);
          for (int64_t o = 0; o < Og; ++o)
            std::memcpy(dyg.data() + o * L + s * P, dy + ((n0 + s) * d.O + g * Og + o) * P, sizeof(T) * P);
        }
      });
      GemmArgsT<T> a;
      a.trans_b = true;
      a.M = Og, a.N = K, a.K = L;
      a.A = dyg.data(), a.lda = L;
      a.B = col.data(), a.ldb = L;
      a.C = dw + g * Og * K, a.ldc = K;
      a.accumulate = n0 > 0;
      tuned_gemm(ex, a);
    }
  }
  if (db)
    for (int64_t o = 0; o < d.O; ++o) {
      T acc = T(0);
      for (int64_t n = 0; n < d.N; ++n)
        for (int64_t p = 0; p < P; ++p) acc += dy[(n * d.O + o) * P + p];
      db[o] = acc;
    }
}

#define LS_CONV2D_FAST_INST(T)                                                                                 \
  template Conv2dAlgo conv2d_forward_fast_cpu<T>(const Exec&, Conv2dAlgo, const Conv2dDims&, T*, const T*,     \
                                                 const T*, const T*);                                          \
  template void conv2d_backward_input_fast_cpu<T>(const Exec&, const Conv2dDims&, T*, const T*, const T*);     \
  template void conv2d_backward_weight_fast_cpu<T>(const Exec&, const Conv2dDims&, T*, T*, const T*, const T*);
LS_CONV2D_FAST_INST(float)
LS_CONV2D_FAST_INST(double)
#undef LS_CONV2D_FAST_INST

}  // namespace lockstep
