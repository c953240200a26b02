// The step trace of `lockstep train --trace FILE`: JSON Lines, one object per optimizer step,
// flushed as it is written (a crashed run leaves every finished step readable):
//
//   {"step":1,"epoch":0,"batch":0,"batch_size":128,"loss":2.44165707,"loss_bits":"401c4310",
//    "lr":0.001,"tensors":{"batch.indices":"<sha256>", ..., "param.8.bias":"<sha256>"},
//    "values":"run.jsonl.values/step-000000000001.safetensors"}
//
// step is 1-based and global (a resumed run continues the count); loss is the float32 loss
// printed with %.9g, loss_bits its 8 hex digits; lr is the lr the step used (%.17g).
// "tensors" maps names to sha256_hex (core/sha256.h: dtype, shape and bytes) in the fixed
// order in which things happen in a step, which is the order `lockstep diff` checks them:
//   batch.indices, batch.labels, batch.images      the batch (indices into the dataset)
//   output.0 ... output.<L-1>                      each layer's output, forward order
//   loss                                           the 0-d loss tensor
//   grad.<key>                                     parameter gradients, reverse state-dict
//                                                  order (the order backward makes them)
//   param.<key>                                    the state dict after the update
//                                                  (parameters and BatchNorm buffers)
// "values" (only with --trace-values) names a safetensors file, relative to the trace's
// directory, holding those same tensors by those names.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "train/trainer.h"

namespace lockstep::tools {

// The tensors of one step in trace order (see above).
std::vector<std::pair<std::string, Tensor>> trace_tensors(const StepRecord& r);

// "%.9g" of a float and its bits as 8 lowercase hex digits.
std::string float_text(float v);
std::string float_bits_hex(float v);

class TraceWriter {
 public:
  // Creates (truncates) `path`; with values, also the directory "<path>.values".
  TraceWriter(const std::string& path, bool values);
  ~TraceWriter();
  TraceWriter(const TraceWriter&) = delete;
  TraceWriter& operator=(const TraceWriter&) = delete;
  void write(const StepRecord& r);  // one line, flushed

 private:
  std::string path_, values_dir_, values_rel_;
  std::FILE* f_ = nullptr;
};

struct TraceStep {
  int64_t line = 0;  // 1-based line in the file
  int64_t step = 0, epoch = 0, batch = 0;
  double loss = 0, lr = 0;
  std::string loss_bits;
  std::vector<std::pair<std::string, std::string>> tensors;  // name, sha256, in file order
  std::string values_path;  // resolved path, empty without values
};

// Reads a whole trace; std::runtime_error "<file>:<line>: ..." on anything malformed.
std::vector<TraceStep> read_trace(const std::string& path);

}  // namespace lockstep::tools
