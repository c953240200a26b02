// Op-table rows of the transformer ops (included by tests/op_table.h; the columns are
// documented there): embedding and the indexing family, layer_norm / rms_norm, silu,
// batched matmul, permute, scaled-dot-product attention. The references are double loops
// written from kernels/index.h, layernorm.h and attention.h.
#pragma once
// Included by tests/op_table.h only (after its helpers), never on its own.

namespace lockstep_test {
namespace rows {

// int64 ids in [0, n) of the given shape, from a fixed seed (many repeats when n is small).
inline Tensor ids(const Shape& s, int64_t n, uint32_t seed) {
  return labels(lockstep::shape_numel(s), n, seed).reshape(s);
}

// ---- references ----

// x: outer x n x inner -> outer x m x inner, picking idx along the middle.
inline std::vector<double> ref_select(const std::vector<double>& x, const std::vector<double>& idx, int64_t outer,
                                      int64_t n, int64_t inner) {
  const int64_t m = static_cast<int64_t>(idx.size());
  std::vector<double> y(static_cast<size_t>(outer * m * inner));
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t c = 0; c < inner; ++c)
        y[(o * m + i) * inner + c] = x[(o * n + static_cast<int64_t>(idx[i])) * inner + c];
  return y;
}

// q, k, v: B x H x T x D (widened); scale 1/sqrt(D); causal with the bottom-right rule.
inline std::vector<double> ref_attention(const Tensor& qt, const Tensor& kt, const Tensor& vt, bool causal) {
  auto q = vals(qt), k = vals(kt), v = vals(vt);
  const int64_t BH = qt.size(0) * qt.size(1), Tq = qt.size(2), Tk = kt.size(2), D = qt.size(3);
  const double scale = double(static_cast<float>(1.0 / std::sqrt(double(D))));
  std::vector<double> out(q.size(), 0.0), s(static_cast<size_t>(Tk));
  for (int64_t bh = 0; bh < BH; ++bh)
    for (int64_t t = 0; t < Tq; ++t) {
      const int64_t L = causal ? std::min(Tk, std::max<int64_t>(0, Tk - Tq + t + 1)) : Tk;
      if (L == 0) continue;
      double m = -1e300, l = 0;
      for (int64_t j = 0; j < L; ++j) {
        double a = 0;
        for (int64_t d = 0; d < D; ++d) a += q[(bh * Tq + t) * D + d] * k[(bh * Tk + j) * D + d];
        s[j] = a * scale;
        m = std::max(m, s[j]);
      }
      for (int64_t j = 0; j < L; ++j) l += std::exp(s[j] - m);
      for (int64_t j = 0; j < L; ++j)
        for (int64_t d = 0; d < D; ++d)
          out[(bh * Tq + t) * D + d] += std::exp(s[j] - m) / l * v[(bh * Tk + j) * D + d];
    }
  return out;
}

// attention_qkv's reference: qkv [B, T, 3C] split into B x H x T x D q, k, v (exact copies),
// ref_attention, and the heads merged back to [B, T, C].
inline std::vector<double> ref_attention_qkv(const Tensor& qkv, int64_t H, bool causal) {
  const int64_t B = qkv.size(0), T = qkv.size(1), C = qkv.size(2) / 3, D = C / H;
  const Tensor heads = qkv.detach().reshape({B, T, 3, H, D}).permute({2, 0, 3, 1, 4}).contiguous();
  auto part = [&](int64_t w) {
    return index_select(heads, 0, Tensor::from_vector(std::vector<int64_t>{w}, {1})).reshape({B, H, T, D});
  };
  const std::vector<double> o = ref_attention(part(0), part(1), part(2), causal);  // B x H x T x D
  std::vector<double> out(o.size());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t d = 0; d < D; ++d) out[((b * T + t) * H + h) * D + d] = o[((b * H + h) * T + t) * D + d];
  return out;
}

// Rows of x (rows x C) normalised; rms: no mean, no bias.
inline std::vector<double> ref_norm(const Tensor& xt, const Tensor& wt, const Tensor& bt, double eps, bool rms) {
  auto x = vals(xt);
  const int64_t C = xt.size(-1), rows = xt.numel() / C;
  std::vector<double> w = wt.defined() ? vals(wt) : std::vector<double>(C, 1.0);
  std::vector<double> b = bt.defined() ? vals(bt) : std::vector<double>(C, 0.0);
  std::vector<double> y(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    const double* xr = &x[r * C];
    double mean = 0, var = 0;
    if (!rms) {
      for (int64_t j = 0; j < C; ++j) mean += xr[j];
      mean /= double(C);
    }
    for (int64_t j = 0; j < C; ++j) var += (xr[j] - mean) * (xr[j] - mean);
    const double rstd = 1.0 / std::sqrt(var / double(C) + eps);
    for (int64_t j = 0; j < C; ++j) y[r * C + j] = (xr[j] - mean) * rstd * w[j] + (rms ? 0.0 : b[j]);
  }
  return y;
}

// Batched a [.., M, K] x b [.., K, N] with broadcast batch dims (both given as full 3-d
// views: ea x M x K and eb x K x N, entries mapped by index % count).
inline std::vector<double> ref_bmm(const Tensor& a, const Tensor& b, int64_t entries, bool tb) {
  auto va = vals(a), vb = vals(b);
  const int64_t M = a.size(-2), K = a.size(-1), N = tb ? b.size(-2) : b.size(-1);
  const int64_t ea = a.numel() / (M * K), eb = b.numel() / (K * N);
  std::vector<double> c(static_cast<size_t>(entries * M * N));
  for (int64_t e = 0; e < entries; ++e)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double s = 0;
        const int64_t pa = (e % ea) * M * K, pb = (e % eb) * K * N;
        for (int64_t kk = 0; kk < K; ++kk) s += va[pa + i * K + kk] * vb[pb + (tb ? j * K + kk : kk * N + j)];
        c[(e * M + i) * N + j] = s;
      }
  return c;
}

// ---- rows ----

inline void index_rows(std::vector<OpRow>& t) {
  // 37 x 5 ids (185 positions: five chunks of 32 and a tail) into 11 rows of 19.
  t.push_back(OpRow{"embedding",
                    [](DType dt, bool small) {
                      return small ? Ins{rnd({4, 3}, 131, dt), ids({3, 2}, 4, 132)}
                                   : Ins{rnd({11, 19}, 131, dt), ids({37, 5}, 11, 132)};
                    },
                    [](const Ins& in, int64_t) { return Outs{lockstep::embedding(in[0], in[1])}; },
                    [](const Ins& in) {
                      return Ref{ref_select(vals(in[0]), vals(in[1]), 1, in[0].size(0), in[0].size(1))};
                    }}
                  .diff(1).batch(2, 1));
  // index_select on the middle dim: x 7 x 13 x 5, 40 ids.
  t.push_back(OpRow{"index_select dim 1",
                    [](DType dt, bool small) {
                      return small ? Ins{rnd({2, 3, 2}, 133, dt), ids({5}, 3, 134)}
                                   : Ins{rnd({7, 13, 5}, 133, dt), ids({40}, 13, 134)};
                    },
                    [](const Ins& in, int64_t) { return Outs{lockstep::index_select(in[0], 1, in[1])}; },
                    [](const Ins& in) {
                      return Ref{ref_select(vals(in[0]), vals(in[1]), in[0].size(0), in[0].size(1), in[0].size(2))};
                    }}
                  .diff(1).batch(1, 1));
  // index_add on dim 0: 75 source rows into 11 x 17.
  t.push_back(OpRow{"index_add dim 0",
                    [](DType dt, bool small) {
                      return small ? Ins{rnd({3, 2}, 135, dt), rnd({5, 2}, 136, dt), ids({5}, 3, 137)}
                                   : Ins{rnd({11, 17}, 135, dt), rnd({75, 17}, 136, dt), ids({75}, 11, 137)};
                    },
                    [](const Ins& in, int64_t) { return Outs{lockstep::index_add(in[0], 0, in[2], in[1])}; },
                    [](const Ins& in) {
                      auto y = vals(in[0]), s = vals(in[1]), id = vals(in[2]);
                      const int64_t C = in[0].size(1);
                      for (size_t i = 0; i < id.size(); ++i)
                        for (int64_t c = 0; c < C; ++c) y[static_cast<int64_t>(id[i]) * C + c] += s[i * C + c];
                      return Ref{y};
                    }}
                  .tol(1e-6, 1e-6).diff(2));
  // gather / scatter_add along dim 1: x 9 x 12 x 4, index 9 x 50 x 4.
  t.push_back(OpRow{"gather dim 1",
                    [](DType dt, bool small) {
                      return small ? Ins{rnd({2, 3, 2}, 138, dt), ids({2, 4, 2}, 3, 139)}
                                   : Ins{rnd({9, 12, 4}, 138, dt), ids({9, 50, 4}, 12, 139)};
                    },
                    [](const Ins& in, int64_t) { return Outs{lockstep::gather(in[0], 1, in[1])}; },
                    [](const Ins& in) {
                      auto x = vals(in[0]), id = vals(in[1]);
                      const int64_t n = in[0].size(1), m = in[1].size(1), C = in[0].size(2);
                      std::vector<double> y(id.size());
                      for (size_t e = 0; e < id.size(); ++e) {
                        const int64_t o = static_cast<int64_t>(e) / (m * C), c = static_cast<int64_t>(e) % C;
                        y[e] = x[(o * n + static_cast<int64_t>(id[e])) * C + c];
                      }
                      return Ref{y};
                    }}
                  .diff(1).batch(3, 1));
  t.push_back(OpRow{"scatter_add dim 1",
                    [](DType dt, bool small) {
                      return small ? Ins{rnd({2, 3, 2}, 140, dt), rnd({2, 4, 2}, 141, dt), ids({2, 4, 2}, 3, 142)}
                                   : Ins{rnd({9, 12, 4}, 140, dt), rnd({9, 50, 4}, 141, dt), ids({9, 50, 4}, 12, 142)};
                    },
                    [](const Ins& in, int64_t) { return Outs{lockstep::scatter_add(in[0], 1, in[2], in[1])}; },
                    [](const Ins& in) {
                      auto y = vals(in[0]), s = vals(in[1]), id = vals(in[2]);
                      const int64_t n = in[0].size(1), m = in[1].size(1), C = in[0].size(2);
                      for (size_t e = 0; e < id.size(); ++e) {
                        const int64_t o = static_cast<int64_t>(e) / (m * C), c = static_cast<int64_t>(e) % C;
                        y[(o * n + static_cast<int64_t>(id[e])) * C + c] += s[e];
                      }
                      return Ref{y};
                    }}
                  .tol(1e-6, 1e-6).diff(2).batch(7, 1));
}

inline void norm_rows(std::vector<OpRow>& t) {
  struct Case {
    const char* name;
    int64_t rows, C;
    bool w, b, rms;
  };
  // 70 rows: two chunks of 32 and a tail (the odd tree level); 4099 columns: a row longer
  // than the contiguous order's 4096-element block.
  const Case cases[] = {
      {"layer_norm", 70, 67, true, true, false},
      {"layer_norm no affine", 35, 19, false, false, false},
      {"layer_norm wide", 33, 4099, true, true, false},
      {"rms_norm", 70, 67, true, false, true},
      {"rms_norm no weight", 35, 19, false, false, true},
  };
  for (const Case& c : cases)
    t.push_back(OpRow{c.name,
                      [c](DType dt, bool small) {
                        const int64_t R = small ? 3 : c.rows, C = small ? 4 : c.C;
                        return Ins{rnd({R, C}, 143, dt), c.w ? rnd({C}, 144, dt, 0.5, 1.5) : Tensor(),
                                   c.b ? rnd({C}, 145, dt) : Tensor()};
                      },
                      [c](const Ins& in, int64_t) {
                        return Outs{c.rms ? lockstep::rms_norm(in[0], in[1], 1e-5)
                                          : lockstep::layer_norm(in[0], in[1], in[2], 1e-5)};
                      },
                      [c](const Ins& in) { return Ref{ref_norm(in[0], in[1], in[2], double(1e-5f), c.rms)}; }}
                    .tol(2e-6, 2e-6).diff(3).batch(1, 1).grad_tol(1e-5, 1e-7));
  // the same over a 3-d input (rows = the leading dims)
  t.push_back(OpRow{"layer_norm 3-d",
                    [](DType dt, bool small) {
                      const Shape s = small ? Shape{2, 2, 3} : Shape{9, 7, 33};
                      return Ins{rnd(s, 146, dt), rnd({s[2]}, 147, dt), rnd({s[2]}, 148, dt)};
                    },
                    [](const Ins& in, int64_t) { return Outs{lockstep::layer_norm(in[0], in[1], in[2])}; },
                    [](const Ins& in) { return Ref{ref_norm(in[0], in[1], in[2], double(1e-5f), false)}; }}
                  .tol(2e-6, 2e-6).diff(3).batch(1, 1).grad_tol(1e-5, 1e-7));
  t.push_back(OpRow{"silu",
                    [](DType dt, bool small) {
                      return Ins{rnd(small ? Shape{3, 5} : Shape{517, 523}, 149, dt, -8, 8)};
                    },
                    [](const Ins& in, int64_t) { return Outs{lockstep::silu(in[0])}; },
                    [](const Ins& in) { return Ref{ref_map(in[0], [](double x) { return x / (1 + std::exp(-x)); })}; }}
                  .tol(3e-7, 1e-7).diff(1).batch(1, 1));
}

inline void bmm_rows(std::vector<OpRow>& t) {
  // a: 3 x 4 x 37 x 19 against b: 4 x 19 x 23 (b broadcast over a's first dim)
  t.push_back(OpRow{"matmul 4-d broadcast",
                    [](DType dt, bool small) {
                      return small ? Ins{rnd({2, 2, 3, 4}, 150, dt), rnd({2, 4, 3}, 151, dt)}
                                   : Ins{rnd({3, 4, 37, 19}, 150, dt), rnd({4, 19, 23}, 151, dt)};
                    },
                    [](const Ins& in, int64_t) { return Outs{lockstep::matmul(in[0], in[1])}; },
                    [](const Ins& in) { return Ref{ref_bmm(in[0], in[1], in[0].size(0) * in[0].size(1), false)}; }}
                  .tol(1e-6, 1e-5).diff(2).batch(1, 1));
  // [B, M, K] x [K, N]: one 2-D product of the rows
  t.push_back(OpRow{"matmul 3-d by 2-d",
                    [](DType dt, bool small) {
                      return small ? Ins{rnd({2, 3, 4}, 152, dt), rnd({4, 3}, 153, dt)}
                                   : Ins{rnd({35, 7, 19}, 152, dt), rnd({19, 23}, 153, dt)};
                    },
                    [](const Ins& in, int64_t) { return Outs{lockstep::matmul(in[0], in[1])}; },
                    [](const Ins& in) { return Ref{ref_bmm(in[0], in[1], in[0].size(0), false)}; }}
                  .tol(1e-6, 1e-5).diff(2).batch(1, 1));
  t.push_back(OpRow{"bmm trans_b",
                    [](DType dt, bool small) {
                      return small ? Ins{rnd({2, 3, 4}, 154, dt), rnd({2, 5, 4}, 155, dt)}
                                   : Ins{rnd({5, 37, 19}, 154, dt), rnd({5, 23, 19}, 155, dt)};
                    },
                    [](const Ins& in, int64_t) { return Outs{lockstep::matmul(in[0], in[1], false, true)}; },
                    [](const Ins& in) { return Ref{ref_bmm(in[0], in[1], in[0].size(0), true)}; }}
                  .tol(1e-6, 1e-5).diff(2).batch(3, 1));
  // permute then a copy: out = x.permute(2, 0, 1).contiguous()
  t.push_back(OpRow{"permute contiguous",
                    [](DType dt, bool small) { return Ins{rnd(small ? Shape{2, 3, 4} : Shape{5, 6, 7}, 156, dt)}; },
                    [](const Ins& in, int64_t) {
                      return Outs{lockstep::contiguous(lockstep::permute(in[0], {2, 0, 1}))};
                    },
                    [](const Ins& in) {
                      auto x = vals(in[0]);
                      const int64_t A = in[0].size(0), B = in[0].size(1), C = in[0].size(2);
                      std::vector<double> y(x.size());
                      for (int64_t c = 0; c < C; ++c)
                        for (int64_t a = 0; a < A; ++a)
                          for (int64_t b = 0; b < B; ++b) y[(c * A + a) * B + b] = x[(a * B + b) * C + c];
                      return Ref{y};
                    }}
                  .diff(1));
}

inline void attention_rows(std::vector<OpRow>& t) {
  struct Case {
    const char* name;
    int64_t B, H, Tq, Tk, D;
    bool causal;
  };
  const Case cases[] = {
      {"attention causal", 3, 2, 37, 37, 16, true},
      {"attention", 2, 3, 19, 23, 8, false},
      {"attention causal Tq < Tk", 2, 2, 5, 41, 33, true},
  };
  for (const Case& c : cases)
    t.push_back(OpRow{c.name,
                      [c](DType dt, bool small) {
                        const int64_t B = small ? 1 : c.B, H = small ? 2 : c.H, Tq = small ? 3 : c.Tq;
                        const int64_t Tk = small ? (c.Tq == c.Tk ? 3 : 4) : c.Tk, D = small ? 3 : c.D;
                        return Ins{rnd({B, H, Tq, D}, 157, dt, -2, 2), rnd({B, H, Tk, D}, 158, dt, -2, 2),
                                   rnd({B, H, Tk, D}, 159, dt)};
                      },
                      [c](const Ins& in, int64_t) {
                        return Outs{lockstep::scaled_dot_product_attention(in[0], in[1], in[2], c.causal)};
                      },
                      [c](const Ins& in) { return Ref{ref_attention(in[0], in[1], in[2], c.causal)}; }}
                    .tol(2e-6, 2e-6).diff(3).batch(7, 1).grad_tol(1e-5, 1e-7));
  // the packed form a GPT uses: qkv [B, T, 3C], 2 heads
  t.push_back(OpRow{"attention_qkv causal",
                    [](DType dt, bool small) {
                      const int64_t B = small ? 1 : 3, T = small ? 3 : 37, D = small ? 3 : 16;
                      return Ins{rnd({B, T, 3 * 2 * D}, 160, dt, -2, 2)};
                    },
                    [](const Ins& in, int64_t) { return Outs{lockstep::attention_qkv(in[0], 2, true)}; },
                    [](const Ins& in) { return Ref{ref_attention_qkv(in[0], 2, true)}; }}
                    .tol(2e-6, 2e-6).diff(1).batch(1, 1).grad_tol(1e-5, 1e-7));
}

inline void transformer_rows(std::vector<OpRow>& t) {
  index_rows(t);
  norm_rows(t);
  bmm_rows(t);
  attention_rows(t);
}

}  // namespace rows
}  // namespace lockstep_test
