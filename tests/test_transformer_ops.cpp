// The transformer ops beyond their op-table rows (tests/op_table_transformer.h):
//   - embedding / index_add: the documented batch order bit for bit (index_sum_ref, the
//     dense tree over every chunk), for thread counts 1, 2, 3, and the data-parallel fact
//     (chunk-aligned halves combined by the tree give the whole batch's bits);
//   - out-of-range ids: clear errors naming the op, the id and the range;
//   - attention: a query row bit for bit against attention_row_ref; prefill of T tokens ==
//     T one-token steps over the KV cache; a row alone == the same row inside a batch of
//     rows of other lengths; thread counts and SIMD levels;
//   - layer_norm / rms_norm: a row alone == the row in a batch of 300;
//   - fast mode: embedding backward and split attention within their tolerances.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <utility>
#include <vector>

#include "base/mode.h"
#include "base/parallel.h"
#include "base/simd.h"
#include "core/autograd.h"
#include "core/kv_cache.h"
#include "core/tensor.h"
#include "kernels/attention.h"
#include "kernels/index.h"
#include "kernels/reduce.h"
#include "kernels/reduce_order.h"
#include "nn/embedding.h"
#include "test_util.h"

using namespace lockstep;
using lockstep_test::random_floats;

namespace {

Tensor rand_t(const Shape& s, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  return Tensor::from_vector(random_floats(static_cast<size_t>(shape_numel(s)), seed, lo, hi), s);
}

Tensor rand_ids(int64_t n, int64_t vocab, uint32_t seed) {
  auto u = random_floats(static_cast<size_t>(n), seed, 0.f, 1.f);
  std::vector<int64_t> v(u.size());
  for (size_t i = 0; i < u.size(); ++i) v[i] = std::min<int64_t>(vocab - 1, static_cast<int64_t>(u[i] * vocab));
  return Tensor::from_vector(v, {n});
}

std::string err_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

// The embedding weight gradient of ids under upstream gradient g (N x C).
Tensor embedding_grad(const Tensor& ids, const Tensor& g, int64_t V) {
  Tensor w = Tensor::zeros({V, g.size(1)});
  w.set_requires_grad(true);
  sum(mul(embedding(w, ids), g)).backward();
  return w.grad();
}

}  // namespace

TEST_CASE("embedding backward: the batch order bit for bit, any thread count", "[index][deterministic]") {
  ModeGuard mode(Mode::deterministic);
  const int64_t N = 203, V = 7, C = 5;  // six full chunks and a tail; every id many times
  const Tensor ids = rand_ids(N, V, 1), g = rand_t({N, C}, 2);
  const auto idv = ids.to_vector<int64_t>();
  const auto gv = g.to_vector<float>();
  // expected: per (v, c) the dense tree over the chunks of index_sum_ref
  std::vector<float> want(static_cast<size_t>(V * C));
  for (int64_t v = 0; v < V; ++v)
    for (int64_t c = 0; c < C; ++c) {
      std::vector<float> vs;
      std::vector<int64_t> pos;
      for (int64_t i = 0; i < N; ++i)
        if (idv[i] == v) vs.push_back(gv[i * C + c]), pos.push_back(i);
      want[v * C + c] = index_sum_ref(vs.data(), pos.data(), static_cast<int64_t>(vs.size()), N);
    }
  const Tensor expect = Tensor::from_vector(want, {V, C});
  for (int threads : {1, 2, 3}) {
    ThreadsGuard th(threads);
    INFO(threads << " threads");
    REQUIRE(equal_bits(embedding_grad(ids, g, V), expect));
  }
  // a sequential running sum per row is another order: the test can tell them apart
  std::vector<float> seq(static_cast<size_t>(V * C), 0.f);
  for (int64_t i = 0; i < N; ++i)
    for (int64_t c = 0; c < C; ++c) seq[idv[i] * C + c] += gv[i * C + c];
  CHECK_FALSE(equal_bits(Tensor::from_vector(seq, {V, C}), expect));
}

TEST_CASE("embedding backward: chunk-aligned halves combine to the whole batch's bits", "[index][deterministic]") {
  // Data-parallel workers hold whole tree nodes: rows [0, 128) and [128, 256) are the two
  // level-2 nodes of 8 chunks; their sums added (left + right) give the whole batch's sum.
  const int64_t N = 256, V = 5, C = 3;
  const Tensor ids = rand_ids(N, V, 3), g = rand_t({N, C}, 4);
  const Tensor whole = embedding_grad(ids, g, V);
  auto part = [&](int64_t b, int64_t e) {
    const auto ia = ids.to_vector<int64_t>();
    const auto ga = g.to_vector<float>();
    std::vector<int64_t> iv(ia.begin() + b, ia.begin() + e);
    std::vector<float> gv(ga.begin() + b * C, ga.begin() + e * C);
    return embedding_grad(Tensor::from_vector(iv, {e - b}), Tensor::from_vector(gv, {e - b, C}), V);
  };
  const Tensor sum2 = add(part(0, 128), part(128, 256));
  REQUIRE(equal_bits(sum2, whole));
}

TEST_CASE("index ops: out-of-range ids name the op, the id and the range", "[index]") {
  const Tensor w = rand_t({4, 3}, 5);
  std::string e = err_of([&] { embedding(w, Tensor::from_vector(std::vector<int64_t>{0, 4}, {2})); });
  CHECK(e.find("[embedding]") != std::string::npos);
  CHECK(e.find("id 4") != std::string::npos);
  CHECK(e.find("[0, 4)") != std::string::npos);
  e = err_of([&] { embedding(w, Tensor::from_vector(std::vector<int64_t>{-1}, {1})); });
  CHECK(e.find("id -1") != std::string::npos);
  e = err_of([&] { embedding(w, rand_t({2}, 6)); });
  CHECK(e.find("int64") != std::string::npos);
  e = err_of([&] { index_select(w, 1, Tensor::from_vector(std::vector<int64_t>{3}, {1})); });
  CHECK(e.find("[index_select]") != std::string::npos);
  e = err_of([&] { gather(w, 1, Tensor::from_vector(std::vector<int64_t>{0, 1, 2, 0, 1, 7, 0, 0}, {4, 2})); });
  CHECK(e.find("[gather]") != std::string::npos);
  CHECK(e.find("id 7") != std::string::npos);
  e = err_of([&] { index_add(w, 0, Tensor::from_vector(std::vector<int64_t>{9}, {1}), rand_t({1, 3}, 7)); });
  CHECK(e.find("[index_add]") != std::string::npos);
  e = err_of([&] { scatter_add(w, 0, Tensor::from_vector(std::vector<int64_t>{0, 1, 5}, {1, 3}), rand_t({1, 3}, 8)); });
  CHECK(e.find("[scatter_add]") != std::string::npos);
}

TEST_CASE("attention: a query row is the documented order bit for bit", "[attention][deterministic]") {
  // T = 29, D = 19: the one-at-a-time chains; T = 75, D = 43: also the kernels' register
  // blocks (32 keys per score block, 32 and 8 outputs per chain block) and their tails.
  for (const auto& [T, D] : {std::pair<int64_t, int64_t>{29, 19}, {75, 43}}) {
    const Tensor q = rand_t({1, 1, T, D}, 9, -2, 2), k = rand_t({1, 1, T, D}, 10, -2, 2), v = rand_t({1, 1, T, D}, 11);
    const float scale = static_cast<float>(1.0 / std::sqrt(double(D)));
    for (SimdLevel l : simd_levels_available()) {
      SimdLevelGuard simd(l);
      const Tensor out = scaled_dot_product_attention(q, k, v, true);
      const auto ov = out.to_vector<float>();
      for (int64_t t = 0; t < T; ++t) {
        std::vector<float> want(static_cast<size_t>(D));
        attention_row_ref(want.data(), q.data<float>() + t * D, k.data<float>(), v.data<float>(), t + 1, D, scale);
        INFO(simd_level_name(l) << ", row " << t);
        REQUIRE(std::memcmp(want.data(), ov.data() + t * D, sizeof(float) * D) == 0);
      }
    }
  }
}

// The backward kernel against the documented order written as plain loops, from the
// forward kernel's p: odd Tq, Tk and D reach the kernel's paired rows and keys, its 32- and
// 8-wide chain blocks and their tails; causal and not; every SIMD level and 1 or 3 threads.
TEST_CASE("attention: backward is the documented order bit for bit", "[attention][deterministic]") {
  const int64_t B = 1, H = 2;
  for (const auto& [T, D] : {std::pair<int64_t, int64_t>{21, 43}, {8, 19}, {37, 32}})
    for (bool causal : {true, false}) {
      const auto q = random_floats(B * H * T * D, 31, -2, 2), k = random_floats(B * H * T * D, 32, -2, 2);
      const auto v = random_floats(B * H * T * D, 33), g = random_floats(B * H * T * D, 34);
      const float scale = static_cast<float>(1.0 / std::sqrt(double(D)));
      std::vector<float> o(q.size()), p(static_cast<size_t>(B * H * T * T));
      attention_forward_cpu<float>(Exec{}, o.data(), p.data(), q.data(), k.data(), v.data(), nullptr, B, H, T, T, D,
                                   causal, scale);
      // The reference: dp, c, ds by query rows; dq over keys; dk, dv over the queries that
      // see the key, in increasing order.
      std::vector<float> wq(q.size()), wk(q.size()), wv(q.size()), ds(p.size());
      for (int64_t h = 0; h < B * H; ++h) {
        const float *qh = q.data() + h * T * D, *kh = k.data() + h * T * D, *vh = v.data() + h * T * D;
        const float *gh = g.data() + h * T * D, *ph = p.data() + h * T * T;
        float* dsh = ds.data() + h * T * T;
        for (int64_t i = 0; i < T; ++i) {
          const int64_t L = causal ? i + 1 : T;
          std::vector<float> dp(static_cast<size_t>(L)), pd(static_cast<size_t>(L));
          for (int64_t j = 0; j < L; ++j) {
            float a = 0.0f;
            for (int64_t d = 0; d < D; ++d) a = std::fma(gh[i * D + d], vh[j * D + d], a);
            dp[j] = a;
            pd[j] = ph[i * T + j] * a;
          }
          const float c = sum_cpu_ref(pd.data(), L);
          for (int64_t j = 0; j < L; ++j) dsh[i * T + j] = (ph[i * T + j] * (dp[j] - c)) * scale;
          for (int64_t d = 0; d < D; ++d) {
            float a = 0.0f;
            for (int64_t j = 0; j < L; ++j) a = std::fma(dsh[i * T + j], kh[j * D + d], a);
            wq[(h * T + i) * D + d] = a;
          }
        }
        for (int64_t j = 0; j < T; ++j)
          for (int64_t d = 0; d < D; ++d) {
            float a = 0.0f, b = 0.0f;
            for (int64_t i = causal ? j : 0; i < T; ++i) {
              a = std::fma(dsh[i * T + j], qh[i * D + d], a);
              b = std::fma(ph[i * T + j], gh[i * D + d], b);
            }
            wk[(h * T + j) * D + d] = a;
            wv[(h * T + j) * D + d] = b;
          }
      }
      for (SimdLevel l : simd_levels_available())
        for (int threads : {1, 3}) {
          SimdLevelGuard simd(l);
          ThreadsGuard tg(threads);
          std::vector<float> dq(q.size(), -1.f), dk(q.size(), -1.f), dv(q.size(), -1.f);
          attention_backward_cpu<float>(Exec::current(), dq.data(), dk.data(), dv.data(), g.data(), q.data(),
                                        k.data(), v.data(), p.data(), nullptr, B, H, T, T, D, causal, scale);
          INFO(simd_level_name(l) << ", threads " << threads << ", T " << T << ", D " << D << ", causal " << causal);
          REQUIRE_BITWISE_EQUAL(dq, wq);
          REQUIRE_BITWISE_EQUAL(dk, wk);
          REQUIRE_BITWISE_EQUAL(dv, wv);
        }
    }
}

TEST_CASE("attention: prefill of T tokens == T one-token steps over the KV cache", "[attention][deterministic]") {
  const int64_t B = 2, H = 3, T = 21, D = 8;
  const Tensor q = rand_t({B, H, T, D}, 12, -2, 2), k = rand_t({B, H, T, D}, 13, -2, 2), v = rand_t({B, H, T, D}, 14);
  const Tensor full = scaled_dot_product_attention(q, k, v, true);
  for (int threads : {1, 3}) {
    ThreadsGuard th(threads);
    KVCache cache(B, H, 32, D);
    std::vector<float> steps;
    auto slice = [&](const Tensor& x, int64_t t0, int64_t n) {  // x[:, :, t0:t0+n, :]
      auto xv = x.to_vector<float>();
      std::vector<float> o;
      for (int64_t bh = 0; bh < B * H; ++bh)
        o.insert(o.end(), xv.begin() + (bh * T + t0) * D, xv.begin() + (bh * T + t0 + n) * D);
      return Tensor::from_vector(o, {B, H, n, D});
    };
    // a prefill of 5, then one token at a time, then the rest at once
    std::vector<Tensor> outs;
    int64_t t = 0;
    for (int64_t n : {5, 1, 1, 1, 1, 1, 11}) {
      cache.append(slice(k, t, n), slice(v, t, n));
      outs.push_back(cache.attend(slice(q, t, n)));
      t += n;
    }
    REQUIRE(t == T);
    for (int64_t bh = 0; bh < B * H; ++bh) {
      int64_t t0 = 0;
      for (const Tensor& o : outs) {
        const int64_t n = o.size(2);
        const auto ov = o.to_vector<float>();
        const auto fv = full.to_vector<float>();
        INFO(threads << " threads, head " << bh << ", positions " << t0 << ".." << t0 + n);
        REQUIRE(std::memcmp(ov.data() + bh * n * D, fv.data() + (bh * T + t0) * D, sizeof(float) * n * D) == 0);
        t0 += n;
      }
    }
  }
}

TEST_CASE("attention: a row's bits do not depend on the other rows of the batch", "[attention][deterministic]") {
  // Row 0 of a batch of 4 whose rows hold 9, 17, 3 and 12 cached positions, one decoding
  // step each, against row 0 alone in a cache of its own (and with another capacity).
  const int64_t H = 2, D = 16;
  const std::vector<int64_t> lens = {9, 17, 3, 12};
  KVCache big(4, H, 24, D), alone(1, H, 40, D);
  for (int64_t b = 0; b < 4; ++b) {
    const Tensor kb = rand_t({1, H, lens[b], D}, 20 + b), vb = rand_t({1, H, lens[b], D}, 30 + b);
    big.append_row(b, kb, vb);
    if (b == 0) alone.append_row(0, kb, vb);
  }
  const Tensor q = rand_t({4, H, 1, D}, 40);
  const Tensor out = big.attend(q);
  const auto qv = q.to_vector<float>();
  const Tensor q0 = Tensor::from_vector(std::vector<float>(qv.begin(), qv.begin() + H * D), {1, H, 1, D});
  const Tensor o0 = alone.attend(q0);
  const auto ov = out.to_vector<float>(), o0v = o0.to_vector<float>();
  REQUIRE(std::memcmp(ov.data(), o0v.data(), sizeof(float) * H * D) == 0);
  // and through the plain op: q, k, v of row 0 alone
  CHECK(big.length(1) == 17);
}

TEST_CASE("attention_qkv: the split, attention and merge it replaces, bit for bit (out and dqkv)",
          "[attention][deterministic]") {
  const int64_t B = 2, T = 13, H = 3, D = 4, C = H * D;
  const Tensor g = rand_t({B, T, C}, 61);
  auto run = [&](bool packed) {
    Tensor qkv = rand_t({B, T, 3 * C}, 60, -2.f, 2.f);
    qkv.set_requires_grad(true);
    Tensor y;
    if (packed) {
      y = attention_qkv(qkv, H, true);
    } else {  // nn::CausalSelfAttention's former split: index_select, transpose, contiguous
      const Tensor r = qkv.reshape({B * T, 3, C});
      auto head = [&](int64_t which) {
        Tensor part = index_select(r, 1, Tensor::from_vector(std::vector<int64_t>{which}, {1}));
        return part.reshape({B, T, H, D}).transpose(1, 2).contiguous();
      };
      y = scaled_dot_product_attention(head(0), head(1), head(2), true).transpose(1, 2).contiguous();
      y = y.reshape({B, T, C});
    }
    sum(mul(y, g)).backward();
    return std::make_pair(y.to_vector<float>(), qkv.grad().to_vector<float>());
  };
  const auto a = run(true), b = run(false);
  REQUIRE_BITWISE_EQUAL(a.first, b.first);
  REQUIRE_BITWISE_EQUAL(a.second, b.second);
  const std::string e = err_of([&] { attention_qkv(rand_t({2, 3, 10}, 62), 2); });
  CHECK(e.find("[attention_qkv] expected qkv's last dim (10) a multiple of 3 * n_head") != std::string::npos);
}

TEST_CASE("layer_norm and rms_norm: a row alone == the row in a batch of 300", "[layer_norm][deterministic]") {
  const int64_t N = 300, C = 96;
  const Tensor x = rand_t({N, C}, 50, -3, 3), w = rand_t({C}, 51), b = rand_t({C}, 52);
  const Tensor y = layer_norm(x, w, b), z = rms_norm(x, w);
  const auto xv = x.to_vector<float>(), yv = y.to_vector<float>(), zv = z.to_vector<float>();
  for (int64_t r : {0, 137, 299}) {
    const Tensor xr = Tensor::from_vector(std::vector<float>(xv.begin() + r * C, xv.begin() + (r + 1) * C), {1, C});
    REQUIRE(std::memcmp(layer_norm(xr, w, b).data<float>(), yv.data() + r * C, sizeof(float) * C) == 0);
    REQUIRE(std::memcmp(rms_norm(xr, w).data<float>(), zv.data() + r * C, sizeof(float) * C) == 0);
  }
}

TEST_CASE("fast mode: embedding backward and split attention stay within tolerance", "[index][attention][fast]") {
  const int64_t N = 500, V = 9, C = 7;
  const Tensor ids = rand_ids(N, V, 60), g = rand_t({N, C}, 61);
  const Tensor det = embedding_grad(ids, g, V);
  Tensor fast;
  {
    ModeGuard m(Mode::fast);
    fast = embedding_grad(ids, g, V);
  }
  const auto dv = det.to_vector<float>(), fv = fast.to_vector<float>();
  for (size_t i = 0; i < dv.size(); ++i) REQUIRE(std::fabs(dv[i] - fv[i]) <= 1e-5f * (1 + std::fabs(dv[i])) * 10);
  if (!equal_bits(det, fast)) WARN("fast-mode embedding backward differs in its bits from deterministic mode");
  // attention: B * H = 2 gives 32 key splits of a 200-key row in fast mode
  const Tensor q = rand_t({1, 2, 4, 16}, 62, -2, 2), k = rand_t({1, 2, 200, 16}, 63, -2, 2),
               v = rand_t({1, 2, 200, 16}, 64);
  const Tensor a = scaled_dot_product_attention(q, k, v, true);
  Tensor b;
  {
    ModeGuard m(Mode::fast);
    b = scaled_dot_product_attention(q, k, v, true);
  }
  const auto av = a.to_vector<float>(), bv = b.to_vector<float>();
  for (size_t i = 0; i < av.size(); ++i) REQUIRE(std::fabs(av[i] - bv[i]) <= 1e-5f * (1 + std::fabs(av[i])));
  if (!equal_bits(a, b)) WARN("fast-mode (split) attention differs in its bits from deterministic mode");
}

namespace {

// A pre-LN transformer block over a batch of token ids (B x T), every new op in one graph:
// embedding -> layer_norm -> q, k, v (linear on [B, T, C]) -> heads (reshape, permute) ->
// causal attention -> merge heads -> projection + residual -> rms_norm -> silu MLP + gelu
// -> mean of the logits against fixed weights. Returns the loss and every gradient.
std::vector<Tensor> block_step(const Tensor& ids) {
  const int64_t V = 23, C = 24, H = 3, D = 8, B = ids.size(0), T = ids.size(1);
  std::vector<Tensor> p = {rand_t({V, C}, 70),     rand_t({C}, 71, 0.5, 1.5), rand_t({C}, 72),
                           rand_t({3 * C, C}, 73), rand_t({C, C}, 74),        rand_t({C}, 75, 0.5, 1.5),
                           rand_t({2 * C, C}, 76), rand_t({C, 2 * C}, 77)};
  for (auto& t : p) t.set_requires_grad(true);
  Tensor x = embedding(p[0], ids);                                      // B x T x C
  Tensor qkv = linear(layer_norm(x, p[1], p[2]), p[3], Tensor());       // B x T x 3C
  Tensor heads = permute(reshape(qkv, {B, T, 3, H, D}), {2, 0, 3, 1, 4}).contiguous();  // 3 x B x H x T x D
  Tensor q = reshape(index_select(heads, 0, Tensor::from_vector(std::vector<int64_t>{0}, {1})), {B, H, T, D});
  Tensor k = reshape(index_select(heads, 0, Tensor::from_vector(std::vector<int64_t>{1}, {1})), {B, H, T, D});
  Tensor v = reshape(index_select(heads, 0, Tensor::from_vector(std::vector<int64_t>{2}, {1})), {B, H, T, D});
  Tensor a = reshape(transpose(scaled_dot_product_attention(q, k, v, true), 1, 2).contiguous(), {B, T, C});
  x = add(x, linear(a, p[4], Tensor()));
  Tensor h = linear(rms_norm(x, p[5]), p[6], Tensor());
  x = add(x, linear(gelu(silu(h)), p[7], Tensor()));
  Tensor loss = sum(mul(x, rand_t({B, T, C}, 78)));
  loss.backward();
  std::vector<Tensor> out = {loss.detach(), x.detach()};
  for (auto& t : p) out.push_back(t.grad());
  return out;
}

}  // namespace

TEST_CASE("transformer block: loss and every gradient bitwise for 1/2/3 threads and every SIMD level",
          "[attention][deterministic]") {
  ModeGuard mode(Mode::deterministic);
  const Tensor ids = Tensor::from_vector(
      [] {
        std::vector<int64_t> v(5 * 13);
        for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int64_t>((i * 7 + i / 5) % 23);
        return v;
      }(),
      {5, 13});
  std::vector<Tensor> base;
  {
    SimdLevelGuard simd(SimdLevel::scalar);
    ThreadsGuard th(1);
    base = block_step(ids);
  }
  for (SimdLevel l : simd_levels_available())
    for (int threads : {1, 2, 3}) {
      SimdLevelGuard simd(l);
      ThreadsGuard th(threads);
      const auto got = block_step(ids);
      for (size_t i = 0; i < base.size(); ++i) {
        INFO(simd_level_name(l) << ", " << threads << " threads, result " << i);
        REQUIRE(equal_bits(got[i], base[i]));
      }
    }
  // batch invariance of the forward: sample 3 alone gives the same activations
  const auto idv = ids.to_vector<int64_t>();
  const Tensor one = Tensor::from_vector(std::vector<int64_t>(idv.begin() + 3 * 13, idv.begin() + 4 * 13), {1, 13});
  const auto xv = base[1].to_vector<float>();
  const auto x1 = block_step(one)[1].to_vector<float>();
  REQUIRE(std::memcmp(x1.data(), xv.data() + 3 * 13 * 24, sizeof(float) * 13 * 24) == 0);
}

TEST_CASE("transformer ops: bad shapes are clear errors naming the op", "[attention][layer_norm]") {
  const Tensor x = rand_t({4, 6}, 90);
  std::string e = err_of([&] { layer_norm(x, rand_t({5}, 91), Tensor()); });
  CHECK(e.find("[layer_norm] weight must be a float32 vector of 6") != std::string::npos);
  e = err_of([&] { rms_norm(x, rand_t({6}, 92), -1.0); });
  CHECK(e.find("[rms_norm] expected eps >= 0") != std::string::npos);
  const Tensor q = rand_t({1, 2, 3, 4}, 93);
  e = err_of([&] { scaled_dot_product_attention(q, rand_t({1, 2, 3, 5}, 94), rand_t({1, 2, 3, 5}, 95)); });
  CHECK(e.find("[scaled_dot_product_attention]") != std::string::npos);
  e = err_of([&] { scaled_dot_product_attention(q, rand_t({1, 3, 3, 4}, 96), rand_t({1, 3, 3, 4}, 97)); });
  CHECK(e.find("leading dims differ") != std::string::npos);
  e = err_of([&] { matmul(rand_t({2, 3, 4}, 98), rand_t({3, 5, 2}, 99)); });
  CHECK(e.find("[matmul]") != std::string::npos);
  e = err_of([&] { matmul(rand_t({2, 3, 4}, 98), rand_t({3, 4, 2}, 99)); });
  CHECK(e.find("do not broadcast") != std::string::npos);
  e = err_of([&] { permute(x, {0, 0}); });
  CHECK(e.find("[permute]") != std::string::npos);
  KVCache cache(1, 2, 4, 4);
  cache.append(rand_t({1, 2, 3, 4}, 100), rand_t({1, 2, 3, 4}, 101));
  e = err_of([&] { cache.append(rand_t({1, 2, 2, 4}, 102), rand_t({1, 2, 2, 4}, 103)); });
  CHECK(e.find("exceed the capacity 4") != std::string::npos);
  e = err_of([&] { cache.append(rand_t({1, 3, 1, 4}, 104), rand_t({1, 3, 1, 4}, 105)); });
  CHECK(e.find("[KVCache] k must be 1 x 2 x Tn x 4") != std::string::npos);
  e = err_of([&] { nn::Embedding(0, 3); });
  CHECK(e.find("[Embedding]") != std::string::npos);
}
