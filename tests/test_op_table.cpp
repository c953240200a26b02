// The op table (tests/op_table.h) on the CPU: one test case per row, "op-table: <row>",
// tagged [op-table][deterministic]. Each row, in deterministic mode:
//   1. float32 against the row's double-precision reference, within the row's tolerance;
//   2. every SIMD level available x 1, 2, 3 threads: outputs and gradients bitwise equal
//      to scalar / 1 thread;
//   3. batch invariance (rows with batch masks): a slice of the batch run alone gives the
//      bits of the same rows of the whole batch (one row at each end and a span of 33);
//   4. backward (rows with n_diff > 0) against central finite differences in float64.
// The cases are registered from the table at start-up, so a new row is a new ctest entry.
#include <catch2/catch.hpp>

#include <set>

#include "base/mode.h"
#include "base/parallel.h"
#include "base/simd.h"
#include "gradcheck.h"
#include "op_table.h"

using namespace lockstep;
using namespace lockstep_test;

namespace {

// The float inputs widened to float64, the others unchanged: what ref() reads.
Ins widen(const Ins& in) {
  Ins out;
  for (const Tensor& t : in) out.push_back(t.defined() && is_floating(t.dtype()) ? t.to(DType::f64) : t);
  return out;
}

void check_reference(const OpRow& r, const Ins& in, const RowResult& got) {
  const Ref want = r.ref(widen(in));
  REQUIRE(!want.empty());
  REQUIRE(want.size() <= got.outs.size());
  for (size_t j = 0; j < want.size(); ++j) {
    INFO("check 1, float32 against the double reference: output " << j << " " << got.outs[j].str());
    const std::vector<double> v = vals(got.outs[j]);
    REQUIRE_ALLCLOSE(v, want[j], r.rtol, r.atol);
  }
}

void check_levels_and_threads(const OpRow& r, const Ins& in, const RowResult& base) {
  for (SimdLevel l : simd_levels_available())
    for (int threads : {1, 2, 3}) {
      SimdLevelGuard simd(l);
      ThreadsGuard th(threads);
      INFO("check 2, against scalar / 1 thread: " << simd_level_name(simd_level()) << ", " << threads << " threads");
      require_same_bits(run_row(r, in, true), base);
    }
}

void check_batch_invariance(const OpRow& r, const Ins& in, const RowResult& base) {
  int64_t n = -1;
  for (size_t k = 0; k < in.size(); ++k)
    if (r.batch_in >> k & 1u) {
      if (n < 0) n = in[k].size(0);
      REQUIRE(in[k].size(0) == n);  // the row's masks name inputs with one batch size
    }
  REQUIRE(n > 1);
  const int64_t mid = n / 3, span = std::min<int64_t>(33, n - mid);
  ThreadsGuard th(3);  // at the highest SIMD level (the default)
  for (auto [b, e] : {std::pair<int64_t, int64_t>{0, 1}, {n - 1, n}, {mid, mid + span}}) {
    Ins sub = in;
    for (size_t k = 0; k < in.size(); ++k)
      if (r.batch_in >> k & 1u) sub[k] = take_rows(in[k], b, e);
    const RowResult got = run_row(r, sub, false, b);
    for (size_t j = 0; j < base.outs.size(); ++j)
      if (r.batch_out >> j & 1u) {
        const std::string d = bits_diff(got.outs[j], take_rows(base.outs[j], b, e));
        INFO("check 3, rows [" << b << ", " << e << ") alone against the batch of " << n << ": output " << j << ": "
                               << d);
        REQUIRE(d.empty());
      }
  }
}

void check_gradients(const OpRow& r) {
  Ins in = r.make(DType::f64, true);
  Tensor w;
  {
    NoGradGuard ng;
    w = objective_weights(r.run(in, 0)[0]);
  }
  std::vector<size_t> index;
  std::vector<Tensor> leaves;
  for (int k = 0; k < r.n_diff; ++k)
    if (in[k].defined()) {
      in[k].set_requires_grad(true);
      index.push_back(static_cast<size_t>(k));
      leaves.push_back(in[k]);
    }
  INFO("check 4, float64 gradients against central finite differences");
  gradcheck(
      [&](const std::vector<Tensor>& v) {
        Ins args = in;
        for (size_t i = 0; i < v.size(); ++i) args[index[i]] = v[i];
        return sum(mul(r.run(args, 0)[0], w));
      },
      leaves, 1e-6, r.grad_rtol, r.grad_atol);
}

void check_row(const OpRow& r) {
  ModeGuard mode(Mode::deterministic);
  const Ins in = r.make(DType::f32, false);
  RowResult base;
  {
    SimdLevelGuard simd(SimdLevel::scalar);
    ThreadsGuard th(1);
    base = run_row(r, in, true);
  }
  check_reference(r, in, base);
  check_levels_and_threads(r, in, base);
  if (r.batch_out != 0) check_batch_invariance(r, in, base);
  if (r.n_diff > 0) check_gradients(r);
}

struct RowCase : Catch::ITestInvoker {
  explicit RowCase(size_t i) : index(i) {}
  void invoke() const override { check_row(op_table()[index]); }
  size_t index;
};

// One Catch2 test case (and so one ctest entry) per row.
const bool registered = [] {
  for (size_t i = 0; i < op_table().size(); ++i) {
    const std::string name = "op-table: " + op_table()[i].name;
    Catch::AutoReg reg(new RowCase(i), CATCH_INTERNAL_LINEINFO, Catch::StringRef(),
                       Catch::NameAndTags{name, "[op-table][deterministic]"});
    (void)reg;
  }
  return true;
}();

}  // namespace

TEST_CASE("op-table: the rows are well formed", "[op-table][deterministic]") {
  REQUIRE(registered);
  std::set<std::string> names;
  for (const OpRow& r : op_table()) {
    INFO(r.name);
    REQUIRE(names.insert(r.name).second);
    REQUIRE(r.name.find_first_of(";[]") == std::string::npos);  // ctest names (tests/CMakeLists.txt)
    REQUIRE((r.make && r.run && r.ref));
    REQUIRE(((r.batch_in == 0) == (r.batch_out == 0)));
  }
}
