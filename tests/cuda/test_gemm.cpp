// CUDA GEMM against the CPU: the tiled kernel (both block tiles) and the reference kernel
// give gemm_cpu's bits for every transpose / bias / accumulate / K order on awkward shapes;
// cuBLAS (fast mode) stays within the stated bound, TF32 within its looser one.
#include <catch2/catch.hpp>

#include <cmath>

#include "base/mode.h"
#include "cuda_test_util.h"
#include "kernels/gemm.h"

using namespace lockstep;
using namespace lockstep_cuda_test;

namespace {

struct Shape3 {
  int64_t M, N, K;
};

// Operands of one case on both devices; A and B stored as trans_a / trans_b say.
struct Case {
  GemmArgs g;
  std::vector<float> a, b, bias, c0;
  Tensor da, db, dbias, dc;
  Case(Shape3 s, bool ta, bool tb, bool with_bias, bool acc, KOrder order, uint32_t seed) {
    g.trans_a = ta, g.trans_b = tb, g.M = s.M, g.N = s.N, g.K = s.K;
    g.lda = ta ? s.M : s.K, g.ldb = tb ? s.K : s.N, g.ldc = s.N;
    g.accumulate = acc, g.order = order;
    a = lockstep_test::random_floats(static_cast<size_t>(s.M * s.K), seed);
    b = lockstep_test::random_floats(static_cast<size_t>(s.K * s.N), seed + 1);
    bias = lockstep_test::random_floats(static_cast<size_t>(s.N), seed + 2);
    c0 = lockstep_test::random_floats(static_cast<size_t>(s.M * s.N), seed + 3);
    da = dev(a), db = dev(b), dbias = dev(bias), dc = dev(c0);
    g.bias = with_bias ? bias.data() : nullptr;
  }
  std::vector<float> cpu(void (*fn)(const GemmArgs&)) {
    std::vector<float> c = c0;
    GemmArgs h = g;
    h.A = a.data(), h.B = b.data(), h.C = c.data();
    fn(h);
    return c;
  }
  std::vector<float> gpu(void (*fn)(const GemmArgs&)) {
    Tensor c = dev(c0);
    GemmArgs d = g;
    d.A = da.data<float>(), d.B = db.data<float>(), d.C = c.data<float>();
    d.bias = g.bias ? dbias.data<float>() : nullptr;
    fn(d);
    return host<float>(c, static_cast<int64_t>(c0.size()));
  }
};

// The kernels with the settings in force now (set_allow_tf32 reaches cuBLAS through the Exec).
void cpu_det(const GemmArgs& g) { gemm_cpu(Exec::current(), g); }
void cuda_det(const GemmArgs& g) { gemm_cuda(Exec::current(), g); }
void cuda_fast(const GemmArgs& g) { gemm_fast_cuda(Exec::current(), g); }
void tiled_large(const GemmArgs& g) { gemm_cuda_with(Exec::current(), GemmCudaTile::large, g); }
void tiled_small(const GemmArgs& g) { gemm_cuda_with(Exec::current(), GemmCudaTile::small, g); }
void cublas(const GemmArgs& g) { gemm_fast_cuda_with(Exec::current(), GemmCudaAlgo::cublas, g); }

const Shape3 kShapes[] = {{1, 1, 1},   {3, 7, 17},   {17, 129, 3},  {129, 33, 1000}, {1000, 17, 129},
                          {7, 1000, 65}, {130, 257, 300}, {64, 64, 8}, {128, 10, 33}, {5, 3, 0}};

// |got - ref| <= (rel + K * 2^-23) * sum_k |a_ik b_kj| + 2^-23 * |bias_j| + 2^-23 * |c0|, per output.
void require_within(Case& cs, const std::vector<float>& got, const std::vector<float>& ref, double rel) {
  const GemmArgs& g = cs.g;
  const double eps = std::ldexp(1.0, -23);
  for (int64_t i = 0; i < g.M; ++i)
    for (int64_t j = 0; j < g.N; ++j) {
      double mag = 0;
      for (int64_t k = 0; k < g.K; ++k) {
        const double av = g.trans_a ? cs.a[k * g.lda + i] : cs.a[i * g.lda + k];
        const double bv = g.trans_b ? cs.b[j * g.ldb + k] : cs.b[k * g.ldb + j];
        mag += std::fabs(av * bv);
      }
      double bound = (rel + (g.K + 2) * eps) * mag + 4 * eps * (std::fabs(cs.bias[j]) + std::fabs(cs.c0[i * g.N + j]));
      const size_t at = static_cast<size_t>(i * g.N + j);
      INFO("output (" << i << ", " << j << ") of " << g.M << "x" << g.N << "x" << g.K);
      REQUIRE(std::fabs(double(got[at]) - double(ref[at])) <= bound);
    }
}

}  // namespace

TEST_CASE("cuda gemm: tiled and reference kernels equal gemm_cpu bit for bit", "[cuda][gemm][deterministic]") {
  uint32_t seed = 1;
  for (const Shape3& s : kShapes)
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb)
        for (int variant = 0; variant < 4; ++variant)
          for (KOrder order : {KOrder::sequential, KOrder::batch_chunked}) {
            const bool with_bias = variant & 1, acc = variant & 2;
            Case cs(s, ta, tb, with_bias, acc, order, seed++);
            INFO(s.M << "x" << s.N << "x" << s.K << " ta " << ta << " tb " << tb << " bias " << with_bias
                     << " acc " << acc << " chunked " << (order == KOrder::batch_chunked));
            const std::vector<float> want = cs.cpu(cpu_det);
            REQUIRE_BITWISE_EQUAL(cs.cpu(gemm_cpu_ref), want);  // the CPU's own contract
            REQUIRE_BITWISE_EQUAL(cs.gpu(gemm_cuda_ref<float>), want);
            REQUIRE_BITWISE_EQUAL(cs.gpu(tiled_small), want);
            REQUIRE_BITWISE_EQUAL(cs.gpu(tiled_large), want);
            REQUIRE_BITWISE_EQUAL(cs.gpu(cuda_det), want);
          }
}

TEST_CASE("cuda gemm: a large batch-chunked product with many chunks", "[cuda][gemm][deterministic]") {
  // K = 4096: 128 chunk partials per output, the grad-weight shape of the MLP at batch 4096.
  Case cs({256, 784, 4096}, true, false, false, true, KOrder::batch_chunked, 99);
  const std::vector<float> want = cs.cpu(cpu_det);
  REQUIRE_BITWISE_EQUAL(cs.gpu(cuda_det), want);
  REQUIRE_BITWISE_EQUAL(cs.gpu(tiled_large), want);
}

TEST_CASE("cuda gemm: repeated runs give the same bits", "[cuda][gemm][deterministic]") {
  Case cs({513, 300, 777}, false, true, true, false, KOrder::sequential, 5);
  const std::vector<float> first = cs.gpu(cuda_det);
  for (int rep = 0; rep < 5; ++rep) REQUIRE_BITWISE_EQUAL(cs.gpu(cuda_det), first);
}

TEST_CASE("cuda gemm: cuBLAS within the K eps bound of the canonical result", "[cuda][gemm][fast]") {
  set_allow_tf32(false);
  uint32_t seed = 500;
  for (const Shape3& s : kShapes)
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb) {
        Case cs(s, ta, tb, true, ta == tb, KOrder::sequential, seed++);
        require_within(cs, cs.gpu(cublas), cs.cpu(cpu_det), 0.0);
      }
}

TEST_CASE("cuda gemm: TF32 opt-in within its 2^-10 relative product error", "[cuda][gemm][fast]") {
  set_allow_tf32(true);
  Case cs({257, 129, 1000}, false, true, true, false, KOrder::sequential, 77);
  const std::vector<float> got = cs.gpu(cublas);
  set_allow_tf32(false);
  require_within(cs, got, cs.cpu(cpu_det), std::ldexp(1.0, -10));
}

TEST_CASE("cuda gemm: the autotuner keeps one choice per shape", "[cuda][gemm][fast]") {
  gemm_cuda_autotune_reset();
  Case cs({300, 200, 500}, false, false, true, false, KOrder::sequential, 31);
  GemmArgs d = cs.g;
  d.A = cs.da.data<float>(), d.B = cs.db.data<float>(), d.C = cs.dc.data<float>(), d.bias = cs.dbias.data<float>();
  const GemmCudaAlgo first = gemm_cuda_autotune_choice(Exec::current(), d);
  for (int rep = 0; rep < 3; ++rep) REQUIRE(gemm_cuda_autotune_choice(Exec::current(), d) == first);
  WARN("autotuner picked " << gemm_cuda_algo_name(first) << " for 300x200x500");
  require_within(cs, cs.gpu(cuda_fast), cs.cpu(cpu_det), 0.0);
}

TEST_CASE("cuda gemm: matmul and linear ops on the device equal the CPU", "[cuda][gemm][deterministic]") {
  auto xv = lockstep_test::random_floats(37 * 50, 3), wv = lockstep_test::random_floats(21 * 50, 4),
       bv = lockstep_test::random_floats(21, 5);
  Tensor x = Tensor::from_vector(xv, {37, 50}), w = Tensor::from_vector(wv, {21, 50}), b = Tensor::from_vector(bv, {21});
  x.set_requires_grad(), w.set_requires_grad(), b.set_requires_grad();
  Tensor xd = x.detach().to(Device::cuda), wd = w.detach().to(Device::cuda), bd = b.detach().to(Device::cuda);
  xd.set_requires_grad(), wd.set_requires_grad(), bd.set_requires_grad();
  Tensor y = linear(x, w, b), yd = linear(xd, wd, bd);
  REQUIRE(equal_bits(y, yd));
  sum(mul(y, y)).backward();
  sum(mul(yd, yd)).backward();
  REQUIRE(equal_bits(x.grad(), xd.grad()));
  REQUIRE(equal_bits(w.grad(), wd.grad()));
  REQUIRE(equal_bits(b.grad(), bd.grad()));
}

TEST_CASE("cuda gemm: float64 equals gemm_cpu's float64 bit for bit", "[cuda][gemm][deterministic]") {
  const Exec ex = Exec::current();
  uint32_t seed = 900;
  for (const Shape3& s : {Shape3{3, 7, 17}, Shape3{129, 33, 1000}, Shape3{130, 257, 300}, Shape3{5, 3, 0}})
    for (int t = 0; t < 4; ++t)
      for (KOrder order : {KOrder::sequential, KOrder::batch_chunked}) {
        const bool ta = t & 1, tb = t & 2;
        GemmArgsF64 g;
        g.trans_a = ta, g.trans_b = tb, g.M = s.M, g.N = s.N, g.K = s.K, g.order = order, g.accumulate = true;
        g.lda = ta ? s.M : s.K, g.ldb = tb ? s.K : s.N, g.ldc = s.N;
        const auto a = lockstep_test::random_doubles(static_cast<size_t>(s.M * s.K), seed++);
        const auto b = lockstep_test::random_doubles(static_cast<size_t>(s.K * s.N), seed++);
        const auto bias = lockstep_test::random_doubles(static_cast<size_t>(s.N), seed++);
        const auto c0 = lockstep_test::random_doubles(static_cast<size_t>(s.M * s.N), seed++);
        std::vector<double> want = c0;
        g.A = a.data(), g.B = b.data(), g.bias = bias.data(), g.C = want.data();
        gemm_cpu(ex, g);
        Tensor da = dev(a), db = dev(b), dbias = dev(bias), dc = dev(c0), dref = dev(c0);
        g.A = da.data<double>(), g.B = db.data<double>(), g.bias = dbias.data<double>(), g.C = dc.data<double>();
        gemm_cuda(ex, g);
        g.C = dref.data<double>();
        gemm_cuda_ref(g);
        INFO(s.M << "x" << s.N << "x" << s.K << " ta " << ta << " tb " << tb << " chunked "
                 << (order == KOrder::batch_chunked));
        REQUIRE_BITWISE_EQUAL(host<double>(dc, s.M * s.N), want);
        REQUIRE_BITWISE_EQUAL(host<double>(dref, s.M * s.N), want);
      }
}
