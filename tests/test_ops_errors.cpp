// Bad inputs to the elementwise, unary, reduction and softmax ops: each throws
// std::invalid_argument whose message names the op and says what was wrong.
#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "test_util.h"

using namespace lockstep;
using Catch::Contains;

namespace {

Tensor f32(const Shape& s) { return Tensor::zeros(s, DType::f32); }
Tensor f64(const Shape& s) { return Tensor::zeros(s, DType::f64); }
Tensor i64(const Shape& s) { return Tensor::zeros(s, DType::i64); }
Tensor u8(const Shape& s) { return Tensor::zeros(s, DType::u8); }

using BinaryFn = std::function<Tensor(const Tensor&, const Tensor&)>;

struct NamedBinary {
  const char* name;
  BinaryFn fn;
};

const std::vector<NamedBinary>& binary_ops() {
  static const std::vector<NamedBinary> ops = {
      {"add", [](const Tensor& a, const Tensor& b) { return add(a, b); }},
      {"sub", [](const Tensor& a, const Tensor& b) { return sub(a, b); }},
      {"mul", [](const Tensor& a, const Tensor& b) { return mul(a, b); }},
      {"div", [](const Tensor& a, const Tensor& b) { return div(a, b); }},
      {"maximum", [](const Tensor& a, const Tensor& b) { return maximum(a, b); }},
      {"minimum", [](const Tensor& a, const Tensor& b) { return minimum(a, b); }},
      {"axpy", [](const Tensor& a, const Tensor& b) { return axpy(2.0, a, b); }},
  };
  return ops;
}

std::string tag(const char* op) { return std::string("[") + op + "]"; }

}  // namespace

TEST_CASE("binary ops reject shapes that do not broadcast", "[elementwise]") {
  for (const auto& op : binary_ops()) {
    INFO(op.name);
    REQUIRE_THROWS_AS(op.fn(f32({3, 4}), f32({5})), std::invalid_argument);
    REQUIRE_THROWS_WITH(op.fn(f32({3, 4}), f32({5})), Contains(tag(op.name)) && Contains("3x4") &&
                                                          Contains("5 cannot broadcast"));
    REQUIRE_THROWS_WITH(op.fn(f32({2, 3, 4}), f32({3, 1, 3})), Contains(tag(op.name)) && Contains("cannot broadcast"));
  }
  REQUIRE_THROWS_WITH(f32({2}) + f32({3}), Contains("[add]"));
  REQUIRE_THROWS_WITH(f32({2}) * f32({3}), Contains("[mul]"));
}

TEST_CASE("binary ops reject non-float, mixed and undefined operands", "[elementwise]") {
  for (const auto& op : binary_ops()) {
    INFO(op.name);
    REQUIRE_THROWS_WITH(op.fn(i64({3}), i64({3})), Contains(tag(op.name)) && Contains("int64"));
    REQUIRE_THROWS_WITH(op.fn(f32({3}), u8({3})), Contains(tag(op.name)) && Contains("uint8"));
    REQUIRE_THROWS_WITH(op.fn(f32({3}), f64({3})), Contains(tag(op.name)) && Contains("dtypes differ") &&
                                                       Contains("float32") && Contains("float64"));
    REQUIRE_THROWS_AS(op.fn(Tensor(), f32({3})), std::invalid_argument);
    REQUIRE_THROWS_WITH(op.fn(f32({3}), Tensor()), Contains(tag(op.name)) && Contains("defined"));
  }
  REQUIRE_THROWS_WITH(add(i64({2}), 1.0), Contains("[add]") && Contains("int64"));
  REQUIRE_THROWS_WITH(mul(u8({2}), 1.0), Contains("[mul]") && Contains("uint8"));
  REQUIRE_THROWS_WITH(scale(i64({2}), 1.0), Contains("[scale]"));
  REQUIRE_THROWS_WITH(i64({2}) * 2.0, Contains("[mul]"));
  REQUIRE_THROWS_WITH(add(Tensor(), 1.0), Contains("[add]") && Contains("defined"));
}

TEST_CASE("comparisons and where reject bad operands", "[elementwise]") {
  REQUIRE_THROWS_WITH(gt(f32({2, 3}), f32({2})), Contains("[gt]") && Contains("2x3") && Contains("cannot broadcast"));
  REQUIRE_THROWS_WITH(lt(u8({2}), u8({2})), Contains("[lt]") && Contains("uint8"));
  REQUIRE_THROWS_WITH(ge(f32({2}), i64({2})), Contains("[ge]") && Contains("dtypes differ"));
  REQUIRE_THROWS_WITH(le(f64({2}), f32({2})), Contains("[le]") && Contains("dtypes differ"));
  REQUIRE_THROWS_WITH(eq(Tensor(), f32({2})), Contains("[eq]"));
  REQUIRE_THROWS_WITH(ne(f32({4}), f32({3})), Contains("[ne]"));

  REQUIRE_THROWS_WITH(where(f32({3}), f32({3}), f32({3})), Contains("[where]") && Contains("uint8 condition") &&
                                                            Contains("float32"));
  REQUIRE_THROWS_WITH(where(u8({3}), f32({3}), f64({3})), Contains("[where]") && Contains("dtypes differ"));
  REQUIRE_THROWS_WITH(where(u8({4}), f32({3}), f32({3})), Contains("[where]") && Contains("cannot broadcast"));
  REQUIRE_THROWS_WITH(where(u8({3}), f32({2, 3}), f32({3, 3})), Contains("[where]") && Contains("cannot broadcast"));
  REQUIRE_THROWS_WITH(where(u8({3}), Tensor(), f32({3})), Contains("[where]") && Contains("defined"));
}

TEST_CASE("unary ops reject non-float and undefined tensors", "[elementwise]") {
  using UnaryFn = Tensor (*)(const Tensor&);
  const std::pair<const char*, UnaryFn> ops[] = {
      {"neg", neg}, {"abs", abs},   {"sqrt", sqrt},       {"relu", relu}, {"exp", exp},
      {"log", log}, {"tanh", tanh}, {"sigmoid", sigmoid}, {"gelu", gelu}};
  for (const auto& op : ops) {
    INFO(op.first);
    REQUIRE_THROWS_AS(op.second(i64({2, 2})), std::invalid_argument);
    REQUIRE_THROWS_WITH(op.second(i64({2, 2})), Contains(tag(op.first)) && Contains("int64") && Contains("2x2"));
    REQUIRE_THROWS_WITH(op.second(u8({3})), Contains(tag(op.first)) && Contains("uint8"));
    REQUIRE_THROWS_WITH(op.second(Tensor()), Contains(tag(op.first)) && Contains("defined"));
  }
  REQUIRE_THROWS_WITH(-i64({1}), Contains("[neg]"));
}

TEST_CASE("reductions reject bad dtypes, dims and empty max", "[reduce]") {
  REQUIRE_THROWS_WITH(sum(i64({3})), Contains("[sum]") && Contains("int64"));
  REQUIRE_THROWS_WITH(mean(u8({3})), Contains("[mean]") && Contains("uint8"));
  REQUIRE_THROWS_WITH(sum(i64({3}), 0), Contains("[sum]"));
  REQUIRE_THROWS_WITH(mean(i64({3}), 0), Contains("[mean]"));
  REQUIRE_THROWS_WITH(max(i64({3}), 0), Contains("[max]") && Contains("int64"));
  REQUIRE_THROWS_WITH(argmax(u8({3}), 0), Contains("[argmax]") && Contains("uint8"));
  REQUIRE_THROWS_WITH(sum(Tensor()), Contains("[sum]") && Contains("defined"));
  REQUIRE_THROWS_WITH(max(Tensor(), 0), Contains("[max]"));

  REQUIRE_THROWS_WITH(sum(f32({2, 3}), 2), Contains("[sum]") && Contains("dim 2 is out of range") &&
                                               Contains("2-d") && Contains("2x3"));
  REQUIRE_THROWS_WITH(sum(f32({2, 3}), -3), Contains("[sum]") && Contains("dim -3"));
  REQUIRE_THROWS_WITH(mean(f32({2}), 1), Contains("[mean]") && Contains("out of range"));
  REQUIRE_THROWS_WITH(max(f32({2}), 1), Contains("[max]") && Contains("out of range"));
  REQUIRE_THROWS_WITH(argmax(f32({2}), -2), Contains("[argmax]") && Contains("out of range"));
  REQUIRE_THROWS_WITH(sum(Tensor::scalar(1.0), 1), Contains("[sum]") && Contains("0-d"));

  REQUIRE_THROWS_WITH(max(f32({3, 0}), 1), Contains("[max]") && Contains("size 0") && Contains("3x0"));
  REQUIRE_THROWS_WITH(argmax(f32({0, 2}), 0), Contains("[argmax]") && Contains("size 0"));
  REQUIRE_THROWS_WITH(max(f32({0}), -1), Contains("[max]") && Contains("size 0"));
}

TEST_CASE("softmax ops reject non-float and undefined tensors", "[softmax]") {
  REQUIRE_THROWS_WITH(softmax(i64({2, 3})), Contains("[softmax]") && Contains("int64") && Contains("2x3"));
  REQUIRE_THROWS_WITH(log_softmax(u8({4})), Contains("[log_softmax]") && Contains("uint8"));
  REQUIRE_THROWS_WITH(softmax(Tensor()), Contains("[softmax]") && Contains("defined"));
  REQUIRE_THROWS_WITH(log_softmax(Tensor()), Contains("[log_softmax]"));
}
