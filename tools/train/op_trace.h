// Op traces: every autograd op of every step, forward and backward, for finding the op where
// two runs that should agree first stopped agreeing (`lockstep train --trace-ops FILE`,
// `lockstep diff`, the lab's culprit lines).
//
// The OpTracer is a core OpObserver (core/autograd.h) installed on the training thread. Each
// recorded op gives one record: step, index in the step, direction, op name, layer label
// (OpScope: "0:Linear", "loss"), and for each input and output its dtype, shape and a 64-bit
// digest of dtype, shape and bytes (CPU copy). The digest chains bijections, one per 8-byte
// word (four interleaved lanes, then chained), so two tensors of the same dtype and shape
// that differ in one word always digest differently.
//
// File format, JSON Lines, flushed after each step:
//   {"lockstep_op_trace":1,"values":"run.ops.values"}          header ("values": null without)
//   {"step":1,"i":0,"dir":"fwd","op":"linear","layer":"0:Linear",
//    "in":[["float32",[128,784],"<16 hex>"],...,null],"out":[["float32",[128,256],"<16 hex>",0]]}
// An undefined tensor (no bias, no gradient) is null. With values, each output's 4th element
// is its byte offset in the values file (raw row-major bytes, relative to the trace's folder).
//
// The culprit (find_culprit): the first record whose output differs while all its inputs
// match. A difference whose first record has differing inputs entered between traced ops
// (the optimizer update, the data, a buffer update); the report says so.
#pragma once
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/autograd.h"

namespace lockstep::tools {

struct OpTensor {
  bool defined = false;
  DType dtype = DType::f32;
  Shape shape;
  uint64_t digest = 0;
  int64_t offset = -1;                                   // in the values file, -1: none
  std::shared_ptr<const std::vector<unsigned char>> bytes;  // in-memory values (OpTracer keep)
};

struct OpRecord {
  int64_t step = 0, index = 0;  // 1-based global step; 0-based op index in the step
  bool backward = false;
  std::string op, layer;
  std::vector<OpTensor> in, out;
};

// The digest of a tensor's dtype, shape and bytes (from a contiguous CPU copy).
uint64_t op_digest(const Tensor& t);

class OpTracer : public OpObserver {
 public:
  struct Options {
    std::string path;        // write the trace here (empty: keep records in memory only)
    bool values = false;     // store output values (file: "<path>.values"; memory: in the records)
    bool keep = false;       // keep records in memory (records())
    std::string perturb_op;  // hidden test aid: nudge the first output of the first such forward op by 1 ulp
    int64_t max_steps = 0;   // stop recording after this many steps (0: no limit; --trace-ops-steps)
  };
  explicit OpTracer(Options o);
  ~OpTracer() override;
  OpTracer(const OpTracer&) = delete;
  OpTracer& operator=(const OpTracer&) = delete;

  void on_op(OpEvent& e) override;
  // The ops seen since the last call belong to global step `step`: written (file) or kept.
  void end_step(int64_t step);
  const std::vector<OpRecord>& records() const { return kept_; }
  bool perturbed() const { return perturbed_; }

  // Installs the tracer as the calling thread's observer for a scope.
  class Install {
   public:
    explicit Install(OpTracer* t) : saved_(op_observer()) { set_op_observer(t); }
    ~Install() { set_op_observer(saved_); }
    Install(const Install&) = delete;
    Install& operator=(const Install&) = delete;

   private:
    OpObserver* saved_;
  };

 private:
  OpTensor describe(const Tensor& t, bool with_values);
  Options o_;
  std::FILE* f_ = nullptr;
  std::FILE* values_ = nullptr;
  int64_t values_at_ = 0;
  std::vector<OpRecord> pending_, kept_;
  std::vector<std::vector<unsigned char>> pending_values_;  // file mode: one per output with values
  std::unordered_map<const void*, std::pair<Tensor, uint64_t>> digests_;  // this step's, by memory
  int64_t steps_ = 0;
  bool perturbed_ = false;
};

// Reads a trace written by OpTracer; std::runtime_error "<file>:<line>: ..." on anything
// malformed. *values_path: the resolved values file ("" without values).
std::vector<OpRecord> read_op_trace(const std::string& path, std::string* values_path);
// True when the first line of the file is an op trace header.
bool is_op_trace(const std::string& path);

// What two op traces show.
struct CulpritReport {
  bool identical = false;  // same records, same digests
  bool found = false;      // a culprit op: output differs, inputs matched
  int64_t step = 0;
  std::string op, layer, direction;  // direction: "forward" or "backward"
  std::string summary;               // one line: "linear (forward) in layer 0:Linear at step 1"
  std::string text;                  // the full human-readable report, lines ending in '\n'
};

// Compares two traces; values_a/values_b are the values files ("" when absent), used only
// for records whose tensors carry an offset. Records carrying bytes (memory) use those.
CulpritReport find_culprit(const std::vector<OpRecord>& a, const std::vector<OpRecord>& b,
                           const std::string& values_a = "", const std::string& values_b = "");

}  // namespace lockstep::tools
