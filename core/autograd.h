// Tape-based reverse-mode autodiff.
//
// Each differentiable op, when grad mode is on and an input requires grad, records a Node:
// its inputs and a function from the output's gradient to the inputs' gradients. Nodes get
// a global creation number. backward() visits nodes in *decreasing* creation number, so a
// tensor used several times receives its gradient contributions in reverse creation order,
// always the same order: gradients are bitwise reproducible. Leaf gradients accumulate
// across backward passes until zero_grad(), as in PyTorch.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace lockstep {

// Gradients of the inputs (an undefined Tensor where an input needs none), given the
// gradient of the output.
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

struct Node {
  uint64_t seq = 0;            // creation order
  const char* name = "";       // the op, for error messages
  const char* layer = "";      // the OpScope label current when the op ran ("" outside any)
  std::vector<Tensor> inputs;  // the op's tensor inputs, in order
  BackwardFn backward;
};

bool grad_enabled();           // per thread; on by default
void set_grad_enabled(bool on);

// Turns recording off for a scope (inference, optimizer updates, backward formulas).
class NoGradGuard {
 public:
  NoGradGuard() : saved_(grad_enabled()) { set_grad_enabled(false); }
  ~NoGradGuard() { set_grad_enabled(saved_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool saved_;
};

// True when grad mode is on and any defined input requires grad.
bool should_record(std::initializer_list<const Tensor*> inputs);

// Makes `out` the result of a node with the given inputs and backward function.
void record(Tensor& out, const char* name, std::vector<Tensor> inputs, BackwardFn backward);

// ---- op observation (tools/train/op_trace.h) ----
// One recorded op, forward (when record() runs) or backward (after the node's backward
// formula ran). Forward: inputs are the op's tensor inputs (undefined where absent, e.g. no
// bias), outputs the one result. Backward: inputs are the output's gradient followed by the
// forward inputs, outputs the gradients the formula returned (undefined where none).
// An observer may change the outputs' values in place (a planted difference).
struct OpEvent {
  const char* op;
  const char* layer;
  bool backward;
  const std::vector<Tensor>& inputs;
  std::vector<Tensor>& outputs;
};

class OpObserver {
 public:
  virtual ~OpObserver() = default;
  virtual void on_op(OpEvent& e) = 0;
};

// The calling thread's observer (null: none, the default). With none set the cost is one
// thread-local pointer test per recorded op. The caller keeps the observer alive while set.
OpObserver* op_observer();
void set_op_observer(OpObserver* obs);

// The label of the ops run in a scope ("0:Linear", "loss"); scopes nest, the innermost wins.
// `label` must outlive every node recorded in the scope: pass a string literal or
// intern_label()'s result.
const char* op_label();
class OpScope {
 public:
  explicit OpScope(const char* label);
  ~OpScope();
  OpScope(const OpScope&) = delete;
  OpScope& operator=(const OpScope&) = delete;

 private:
  const char* saved_;
};
// A pointer to a copy of s that lives as long as the process (one copy per distinct s).
const char* intern_label(const std::string& s);

// Sums a broadcast gradient back to `shape` (NumPy broadcasting rules): leading dims are
// summed away, dims of size 1 are summed with keepdim. Reductions use the op rules of
// core/ops.h (batch order for every dim but the last).
Tensor sum_to_shape(const Tensor& grad, const Shape& shape);

}  // namespace lockstep
