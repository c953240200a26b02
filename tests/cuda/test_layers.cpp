// CUDA layer kernels against the CPU, bit for bit: activation backward, Dropout (the same
// Philox mask), BatchNorm1d forward/backward (training and eval, running statistics),
// cross-entropy (every reduction, label smoothing) and MSE, forward and backward.
#include <catch2/catch.hpp>

#include "base/mode.h"
#include "cuda_test_util.h"
#include "kernels/dropout.h"

using namespace lockstep;
using namespace lockstep_cuda_test;

namespace {

Tensor rand_tensor(const Shape& s, uint32_t seed, DType dt = DType::f32, float lo = -3.f, float hi = 3.f) {
  const int64_t n = shape_numel(s);
  if (dt == DType::f64) return Tensor::from_vector(lockstep_test::random_doubles(static_cast<size_t>(n), seed, lo, hi), s);
  return Tensor::from_vector(lockstep_test::random_floats(static_cast<size_t>(n), seed, lo, hi), s);
}

// A leaf copy of t on `device` that wants a gradient.
Tensor leaf(const Tensor& t, Device device) {
  Tensor l = t.to(device).clone().detach();
  l.set_requires_grad();
  return l;
}

// Runs f on CPU and GPU copies of x, backward from sum(y * w) with fixed weights w, and
// requires the outputs and the input gradients to be bitwise equal.
template <typename F>
void same_forward_backward(const Tensor& x, F f) {
  Tensor xc = leaf(x, Device::cpu), xg = leaf(x, Device::cuda);
  Tensor yc = f(xc), yg = f(xg);
  REQUIRE(equal_bits(yc, yg));
  Tensor w = rand_tensor(yc.shape(), 1234, yc.dtype());
  sum(mul(yc, w)).backward();
  sum(mul(yg, w.to(Device::cuda))).backward();
  REQUIRE(equal_bits(xc.grad(), xg.grad()));
}

}  // namespace

TEST_CASE("cuda layers: activation forward and backward equal the CPU", "[cuda][activation][deterministic]") {
  for (DType dt : {DType::f32, DType::f64})
    for (int64_t n : {1, 7, 129, 1000, 65537}) {
      Tensor x = rand_tensor({n}, static_cast<uint32_t>(n), dt, -6.f, 6.f);
      INFO("n " << n << " " << dtype_name(dt));
      same_forward_backward(x, [](const Tensor& t) { return relu(t); });
      same_forward_backward(x, [](const Tensor& t) { return tanh(t); });
      same_forward_backward(x, [](const Tensor& t) { return sigmoid(t); });
      same_forward_backward(x, [](const Tensor& t) { return gelu(t); });
    }
}

TEST_CASE("cuda layers: dropout masks and values equal the CPU", "[cuda][dropout][deterministic]") {
  for (DType dt : {DType::f32, DType::f64})
    for (double p : {0.0, 0.1, 0.5, 1.0})
      for (int64_t n : {1, 3, 5, 1000, 100003}) {
        Tensor x = rand_tensor({n}, static_cast<uint32_t>(n) + 1, dt);
        INFO("n " << n << " p " << p << " " << dtype_name(dt));
        same_forward_backward(x, [p](const Tensor& t) { return dropout(t, p, true, 42, 7, 3); });
      }
  // the raw masks, at a step far from 0
  const int64_t n = 4099;
  auto xv = lockstep_test::random_floats(n, 8);
  std::vector<float> y(n);
  std::vector<uint8_t> mask(n);
  dropout_forward_cpu(Exec::current(), y.data(), mask.data(), xv.data(), n, 0.3f, 99, 5, (1 << 20) + 3);
  Tensor dx = dev(xv), dy = dev_empty<float>(n), dm = dev_empty<uint8_t>(n);
  dropout_forward_cuda(Exec::current(), dy.data<float>(), dm.data<uint8_t>(), dx.data<float>(), n, 0.3f, 99, 5,
                       (1 << 20) + 3);
  REQUIRE(host<uint8_t>(dm, n) == mask);
  REQUIRE_BITWISE_EQUAL(host<float>(dy, n), y);
}

TEST_CASE("cuda layers: batch norm forward, backward and running stats equal the CPU",
          "[cuda][batchnorm][deterministic]") {
  for (DType dt : {DType::f32, DType::f64})
    for (int64_t N : {2, 3, 33, 129, 1000})
      for (int64_t C : {1, 7, 17, 256}) {
        INFO("N " << N << " C " << C << " " << dtype_name(dt));
        Tensor x = rand_tensor({N, C}, static_cast<uint32_t>(N * 31 + C), dt, -2.f, 5.f);
        Tensor gamma = rand_tensor({C}, 3, dt, 0.5f, 1.5f), beta = rand_tensor({C}, 4, dt);
        Tensor rm_c = rand_tensor({C}, 5, dt), rv_c = rand_tensor({C}, 6, dt, 0.5f, 2.f);
        Tensor rm_g = rm_c.to(Device::cuda), rv_g = rv_c.to(Device::cuda);
        Tensor gc = leaf(gamma, Device::cpu), gg = leaf(gamma, Device::cuda);
        Tensor bc = leaf(beta, Device::cpu), bg = leaf(beta, Device::cuda);
        for (bool training : {true, false}) {
          Tensor xc = leaf(x, Device::cpu), xg = leaf(x, Device::cuda);
          Tensor yc = batch_norm(xc, rm_c, rv_c, gc, bc, training, 0.1, 1e-5);
          Tensor yg = batch_norm(xg, rm_g, rv_g, gg, bg, training, 0.1, 1e-5);
          REQUIRE(equal_bits(yc, yg));
          REQUIRE(equal_bits(rm_c, rm_g));
          REQUIRE(equal_bits(rv_c, rv_g));
          Tensor w = rand_tensor({N, C}, 77, dt);
          sum(mul(yc, w)).backward();
          sum(mul(yg, w.to(Device::cuda))).backward();
          REQUIRE(equal_bits(xc.grad(), xg.grad()));
          REQUIRE(equal_bits(gc.grad(), gg.grad()));
          REQUIRE(equal_bits(bc.grad(), bg.grad()));
          gc.zero_grad(), gg.zero_grad(), bc.zero_grad(), bg.zero_grad();
        }
      }
}

TEST_CASE("cuda layers: cross-entropy and MSE equal the CPU", "[cuda][loss][deterministic]") {
  for (DType dt : {DType::f32, DType::f64})
    for (int64_t N : {1, 3, 33, 129, 1000})
      for (int64_t C : {1, 10, 1000}) {
        std::vector<int64_t> t(static_cast<size_t>(N));
        for (int64_t i = 0; i < N; ++i) t[i] = (i * 7 + 3) % C;
        Tensor target = Tensor::from_vector(t, {N}), target_g = target.to(Device::cuda);
        Tensor logits = rand_tensor({N, C}, static_cast<uint32_t>(N + C), dt, -8.f, 8.f);
        for (Reduction red : {Reduction::none, Reduction::mean, Reduction::sum})
          for (double eps : {0.0, 0.1}) {
            INFO("N " << N << " C " << C << " reduction " << static_cast<int>(red) << " eps " << eps);
            Tensor lc = leaf(logits, Device::cpu), lg = leaf(logits, Device::cuda);
            Tensor oc = cross_entropy(lc, target, red, eps), og = cross_entropy(lg, target_g, red, eps);
            REQUIRE(equal_bits(oc, og));
            Tensor w = rand_tensor(oc.shape(), 5, dt);
            sum(mul(oc, w)).backward();
            sum(mul(og, w.to(Device::cuda))).backward();
            REQUIRE(equal_bits(lc.grad(), lg.grad()));
          }
        Tensor y = rand_tensor({N, C}, 9, dt);
        for (Reduction red : {Reduction::none, Reduction::mean, Reduction::sum})
          same_forward_backward(logits, [&](const Tensor& x) { return mse_loss(x, y.to(x.device()), red); });
      }
}

TEST_CASE("cuda layers: a bad target on the device is reported, not read out of bounds", "[cuda][loss]") {
  Tensor logits = Tensor::zeros({2, 3}, DType::f32, Device::cuda);
  Tensor target = Tensor::from_vector(std::vector<int64_t>{0, 3}, {2}).to(Device::cuda);
  REQUIRE_THROWS_WITH(cross_entropy(logits, target), Catch::Contains("target[1] = 3 is out of range"));
}

TEST_CASE("cuda layers: fast-mode atomic statistics stay within 1e-4 of the CPU", "[cuda][batchnorm][loss][fast]") {
  const int64_t N = 1000, C = 33;
  Tensor x = rand_tensor({N, C}, 3, DType::f32, -2.f, 5.f);
  Tensor gamma = rand_tensor({C}, 4, DType::f32, 0.5f, 1.5f), beta = rand_tensor({C}, 5);
  std::vector<int64_t> t(N);
  for (int64_t i = 0; i < N; ++i) t[i] = i % C;
  Tensor target = Tensor::from_vector(t, {N});
  // The CPU's deterministic results.
  Tensor xc = leaf(x, Device::cpu);
  Tensor yc = batch_norm(xc, Tensor(), Tensor(), gamma, beta, true, 0.1, 1e-5);
  Tensor lc = cross_entropy(yc, target);
  lc.backward();
  // The GPU in fast mode.
  ModeGuard fast(Mode::fast);
  Tensor xg = leaf(x, Device::cuda);
  Tensor yg = batch_norm(xg, Tensor(), Tensor(), gamma.to(Device::cuda), beta.to(Device::cuda), true, 0.1, 1e-5);
  Tensor lg = cross_entropy(yg, target.to(Device::cuda));
  lg.backward();
  REQUIRE_ALLCLOSE(yg.to_vector<float>(), yc.to_vector<float>(), 1e-4, 1e-4);
  REQUIRE_ALLCLOSE(lg.to_vector<float>(), lc.to_vector<float>(), 1e-5, 0.0);
  REQUIRE_ALLCLOSE(xg.grad().to_vector<float>(), xc.grad().to_vector<float>(), 1e-3, 1e-6);
}
