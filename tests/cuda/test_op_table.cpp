// The op table (tests/op_table.h) on CUDA: one test case per row, "cuda op-table: <row>".
// In deterministic mode every output and every input gradient of the float32 row on the
// device equals the CPU's bit for bit (the CPU bits are the same at every SIMD level and
// thread count: tests/test_op_table.cpp). main_cuda.cpp skips the binary without a device.
#include <catch2/catch.hpp>

#include "base/mode.h"
#include "op_table.h"

using namespace lockstep;
using namespace lockstep_test;

namespace {

void check_row_cuda(const OpRow& r) {
  ModeGuard mode(Mode::deterministic);
  const Ins in = r.make(DType::f32, false);
  const RowResult cpu = run_row(r, in, true);
  Ins dev;
  for (const Tensor& t : in) dev.push_back(t.defined() ? t.to(Device::cuda) : t);
  const RowResult gpu = run_row(r, dev, true);
  INFO("cuda against the cpu, bit for bit");
  require_same_bits(gpu, cpu);
}

struct RowCase : Catch::ITestInvoker {
  explicit RowCase(size_t i) : index(i) {}
  void invoke() const override { check_row_cuda(op_table()[index]); }
  size_t index;
};

// One Catch2 test case per row, as in the CPU suite.
const bool registered = [] {
  for (size_t i = 0; i < op_table().size(); ++i) {
    const std::string name = "cuda op-table: " + op_table()[i].name;
    Catch::AutoReg reg(new RowCase(i), CATCH_INTERNAL_LINEINFO, Catch::StringRef(),
                       Catch::NameAndTags{name, "[cuda][op-table][deterministic]"});
    (void)reg;
  }
  return true;
}();

}  // namespace

TEST_CASE("cuda op-table: every row is registered", "[cuda][op-table]") { REQUIRE(registered); }
