// Fast mode's float-atomic sums on the GPU, one test per place they are used: BatchNorm's
// forward statistics (S1, S2), its backward sums (B1 = dbeta, B2 = dgamma), the loss sum
// over the rows (cross-entropy, MSE) and bias gradients (linear's sum over the batch).
// Each fast result must lie within a bound derived from 1e-5 * (sum of |terms|) of the
// deterministic GPU result (the bound of the generic atomic sums, test_reduce.cpp); how
// often the bits change between five fast runs is reported with WARN, never asserted: the
// completion order of atomics is the hardware's to choose.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>

#include "base/mode.h"
#include "cuda_test_util.h"
#include "kernels/batchnorm.h"
#include "kernels/loss.h"

using namespace lockstep;
using namespace lockstep_cuda_test;

namespace {

constexpr double kSumTol = 1e-5;  // relative to the sum of the terms' magnitudes
constexpr int kRuns = 5;

// Runs f() kRuns times in fast mode and WARNs how many runs' bits differ from the first.
template <typename F>
void report_runs(const char* what, F f) {
  ModeGuard fast(Mode::fast);
  const std::vector<float> first = f();
  int differ = 0;
  double max_diff = 0;
  for (int r = 1; r < kRuns; ++r) {
    const std::vector<float> v = f();
    if (std::memcmp(v.data(), first.data(), v.size() * sizeof(float)) != 0) ++differ;
    for (size_t i = 0; i < v.size(); ++i) max_diff = std::max(max_diff, std::fabs(double(v[i]) - first[i]));
  }
  WARN("fast mode, " << what << ": " << differ << " of " << kRuns - 1
                     << " repeated runs differ in their bits from the first; max |diff| " << max_diff);
}

// |got[i] - ref[i]| <= tol[i] for every i; reports the first violation.
void require_within(const std::vector<float>& got, const std::vector<float>& ref, const std::vector<double>& tol) {
  REQUIRE(got.size() == ref.size());
  for (size_t i = 0; i < got.size(); ++i) {
    const double d = std::fabs(double(got[i]) - ref[i]);
    if (!(d <= tol[i])) {
      INFO("index " << i << ": fast " << got[i] << ", deterministic " << ref[i] << ", |diff| " << d << " > " << tol[i]);
      REQUIRE(d <= tol[i]);
    }
  }
}

struct BnInputs {
  int64_t N = 1000, C = 33;
  std::vector<float> x, gamma, beta, rm, rv, dy;
  BnInputs() {
    x = lockstep_test::random_floats(static_cast<size_t>(N * C), 11, -2.f, 5.f);
    gamma = lockstep_test::random_floats(static_cast<size_t>(C), 12, 0.5f, 1.5f);
    beta = lockstep_test::random_floats(static_cast<size_t>(C), 13);
    rm = lockstep_test::random_floats(static_cast<size_t>(C), 14);
    rv = lockstep_test::random_floats(static_cast<size_t>(C), 15, 0.5f, 2.f);
    dy = lockstep_test::random_floats(static_cast<size_t>(N * C), 16);
  }
};

struct BnForward {
  std::vector<float> y, mean, rstd, rm, rv;
};

// batchnorm_forward_cuda in training mode, in the current mode.
BnForward bn_forward(const BnInputs& in) {
  const int64_t N = in.N, C = in.C;
  Tensor x = dev(in.x), g = dev(in.gamma), b = dev(in.beta), rm = dev(in.rm), rv = dev(in.rv);
  Tensor y = dev_empty<float>(N * C), mean = dev_empty<float>(C), rstd = dev_empty<float>(C);
  batchnorm_forward_cuda(Exec::current(), ptr<float>(y), ptr<float>(mean), ptr<float>(rstd), ptr<float>(rm),
                         ptr<float>(rv), ptr<float>(x), ptr<float>(g), ptr<float>(b), N, C, true, 1e-5f, 0.1f);
  return {host<float>(y, N * C), host<float>(mean, C), host<float>(rstd, C), host<float>(rm, C), host<float>(rv, C)};
}

struct BnBackward {
  std::vector<float> dx, dgamma, dbeta;
};

// batchnorm_backward_cuda with the given statistics, in the current mode.
BnBackward bn_backward(const BnInputs& in, const std::vector<float>& mean_h, const std::vector<float>& rstd_h) {
  const int64_t N = in.N, C = in.C;
  Tensor x = dev(in.x), g = dev(in.gamma), dy = dev(in.dy), mean = dev(mean_h), rstd = dev(rstd_h);
  Tensor dx = dev_empty<float>(N * C), dg = dev_empty<float>(C), db = dev_empty<float>(C);
  batchnorm_backward_cuda(Exec::current(), ptr<float>(dx), ptr<float>(dg), ptr<float>(db), ptr<float>(dy),
                          ptr<float>(x), ptr<float>(mean), ptr<float>(rstd), ptr<float>(g), N, C, true);
  return {host<float>(dx, N * C), host<float>(dg, C), host<float>(db, C)};
}

}  // namespace

TEST_CASE("cuda fast atomics: BatchNorm forward statistics within the atomic-sum bound",
          "[cuda][batchnorm][fast]") {
  const BnInputs in;
  const int64_t N = in.N, C = in.C;
  const BnForward det = bn_forward(in);
  BnForward fast;
  {
    ModeGuard m(Mode::fast);
    fast = bn_forward(in);
  }
  // mean = S1 / N: |dmean| <= 1e-5 sum|x| / N (plus the division's half ulp).
  std::vector<double> tol_mean(C), tol_rstd(C), tol_y(static_cast<size_t>(N * C));
  for (int64_t j = 0; j < C; ++j) {
    double mag = 0;
    for (int64_t r = 0; r < N; ++r) mag += std::fabs(in.x[r * C + j]);
    tol_mean[j] = kSumTol * mag / N + 1e-7 * std::fabs(det.mean[j]);
    // S2's terms are non-negative, so its relative error is <= 1e-5; a shifted mean changes
    // S2 only to second order. rstd = (S2/N + eps)^-1/2 halves that relative error.
    tol_rstd[j] = (kSumTol + 1e-6) * std::fabs(det.rstd[j]);
  }
  require_within(fast.mean, det.mean, tol_mean);
  require_within(fast.rstd, det.rstd, tol_rstd);
  for (int64_t k = 0; k < N * C; ++k) {
    const int64_t j = k % C;
    const double xhat = (in.x[k] - det.mean[j]) * det.rstd[j];
    // y = (x - mean) rstd gamma + beta: the error of mean and of rstd, carried through.
    tol_y[k] = std::fabs(in.gamma[j]) * (tol_mean[j] * det.rstd[j] + std::fabs(xhat) * tol_rstd[j] / det.rstd[j]) +
               1e-6 * (1 + std::fabs(det.y[k]));
  }
  require_within(fast.y, det.y, tol_y);
  report_runs("BatchNorm forward (y)", [&] { return bn_forward(in).y; });
}

TEST_CASE("cuda fast atomics: BatchNorm backward sums within the atomic-sum bound", "[cuda][batchnorm][fast]") {
  const BnInputs in;
  const int64_t N = in.N, C = in.C;
  const BnForward st = bn_forward(in);  // deterministic statistics, shared by both runs
  const BnBackward det = bn_backward(in, st.mean, st.rstd);
  BnBackward fast;
  {
    ModeGuard m(Mode::fast);
    fast = bn_backward(in, st.mean, st.rstd);
  }
  std::vector<double> a1(C), a2(C), tol_db(C), tol_dg(C), tol_dx(static_cast<size_t>(N * C));
  for (int64_t j = 0; j < C; ++j) {
    for (int64_t r = 0; r < N; ++r) {
      const double xhat = (in.x[r * C + j] - st.mean[j]) * st.rstd[j];
      a1[j] += std::fabs(in.dy[r * C + j]);
      a2[j] += std::fabs(in.dy[r * C + j] * xhat);
    }
    tol_db[j] = kSumTol * a1[j];
    tol_dg[j] = kSumTol * a2[j];
  }
  require_within(fast.dbeta, det.dbeta, tol_db);
  require_within(fast.dgamma, det.dgamma, tol_dg);
  // dx = ((dy - B1/N) - xhat B2/N) s: the sums' errors over N, plus a few roundings.
  for (int64_t k = 0; k < N * C; ++k) {
    const int64_t j = k % C;
    const double xhat = std::fabs((in.x[k] - st.mean[j]) * st.rstd[j]);
    const double s = std::fabs(double(st.rstd[j]) * in.gamma[j]);
    tol_dx[k] = s * (kSumTol * (a1[j] + xhat * a2[j]) / N + 1e-6 * (std::fabs(in.dy[k]) + (a1[j] + xhat * a2[j]) / N));
  }
  require_within(fast.dx, det.dx, tol_dx);
  report_runs("BatchNorm backward (dgamma, dbeta)", [&] {
    BnBackward b = bn_backward(in, st.mean, st.rstd);
    b.dgamma.insert(b.dgamma.end(), b.dbeta.begin(), b.dbeta.end());
    return b.dgamma;
  });
}

TEST_CASE("cuda fast atomics: the loss sum over the rows within the atomic-sum bound", "[cuda][loss][fast]") {
  const int64_t N = 4099, C = 10, D = 37;
  const auto logits = lockstep_test::random_floats(static_cast<size_t>(N * C), 21, -8.f, 8.f);
  std::vector<int64_t> t(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) t[i] = (i * 7 + 3) % C;
  const auto xm = lockstep_test::random_floats(static_cast<size_t>(N * D), 22), ym = lockstep_test::random_floats(static_cast<size_t>(N * D), 23);
  Tensor dl = dev(logits), dt = dev(t), dxm = dev(xm), dym = dev(ym);
  auto ce = [&](Reduction red) {
    Tensor out = dev_empty<float>(red == Reduction::none ? N : 1);
    cross_entropy_forward_cuda(Exec::current(), ptr<float>(out), ptr<float>(dl), ptr<int64_t>(dt), N, C, 0.1f, red);
    return host<float>(out, red == Reduction::none ? N : 1);
  };
  auto mse = [&](Reduction red) {
    Tensor out = dev_empty<float>(red == Reduction::none ? N * D : 1);
    mse_forward_cuda(Exec::current(), ptr<float>(out), ptr<float>(dxm), ptr<float>(dym), N, D, red);
    return host<float>(out, red == Reduction::none ? N * D : 1);
  };
  // The per-row (per-element) values are the deterministic kernels' in both modes.
  double ce_mag = 0, mse_mag = 0;
  for (float v : ce(Reduction::none)) ce_mag += std::fabs(v);
  for (float v : mse(Reduction::none)) mse_mag += std::fabs(v);
  for (Reduction red : {Reduction::sum, Reduction::mean}) {
    INFO("reduction " << (red == Reduction::mean ? "mean" : "sum"));
    const std::vector<float> ce_det = ce(red), mse_det = mse(red);
    std::vector<float> ce_fast, mse_fast;
    {
      ModeGuard m(Mode::fast);
      ce_fast = ce(red), mse_fast = mse(red);
    }
    // The sum's bound, scaled by the mean's division, plus that division's rounding.
    const bool mean = red == Reduction::mean;
    const double ce_scale = mean ? 1.0 / N : 1.0, mse_scale = mean ? 1.0 / (N * D) : 1.0;
    require_within(ce_fast, ce_det, {kSumTol * ce_mag * ce_scale + 1e-6 * std::fabs(ce_det[0])});
    require_within(mse_fast, mse_det, {kSumTol * mse_mag * mse_scale + 1e-6 * std::fabs(mse_det[0])});
  }
  report_runs("cross-entropy mean", [&] { return ce(Reduction::mean); });
  report_runs("MSE mean", [&] { return mse(Reduction::mean); });
}

TEST_CASE("cuda fast atomics: bias gradients within the atomic-sum bound", "[cuda][reduce][fast]") {
  const int64_t B = 4096, In = 64, Out = 129;
  const auto xv = lockstep_test::random_floats(static_cast<size_t>(B * In), 31);
  const auto wv = lockstep_test::random_floats(static_cast<size_t>(Out * In), 32);
  const auto gv = lockstep_test::random_floats(static_cast<size_t>(B * Out), 33);
  const Tensor x = Tensor::from_vector(xv, {B, In}).to(Device::cuda), w = Tensor::from_vector(wv, {Out, In}).to(Device::cuda);
  const Tensor g = Tensor::from_vector(gv, {B, Out}).to(Device::cuda);
  // db = sum over the batch of dy, and dy = g exactly (the backward of sum(y * g)).
  auto bias_grad = [&] {
    Tensor b = Tensor::zeros({Out}, DType::f32, Device::cuda);
    b.set_requires_grad();
    sum(mul(linear(x, w, b), g)).backward();
    return b.grad().to_vector<float>();
  };
  const std::vector<float> det = bias_grad();
  std::vector<float> fast;
  {
    ModeGuard m(Mode::fast);
    fast = bias_grad();
  }
  std::vector<double> tol(static_cast<size_t>(Out));
  for (int64_t j = 0; j < Out; ++j)
    for (int64_t r = 0; r < B; ++r) tol[j] += kSumTol * std::fabs(gv[r * Out + j]);
  require_within(fast, det, tol);
  report_runs("linear bias gradient", bias_grad);
}
