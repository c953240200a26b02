// Training checkpoints: everything a run needs to continue bit for bit as if it had never
// stopped, in one safetensors file (serialize/safetensors.h), written atomically.
//
//   serialize::TrainingState st;
//   st.model = model.get(); st.optimizer = &opt; st.scheduler = sched.get(); st.loader = &loader;
//   st.step = step; st.epoch = epoch;
//   serialize::save_checkpoint("run/ckpt.safetensors", st);
//   ... in a new process, with freshly built objects of the same configuration:
//   serialize::load_checkpoint("run/ckpt.safetensors", st);  // st.step, st.epoch restored
//
// Every component is reached through core/state_dict.h (Stateful, StatefulModel), so this
// file knows no layer, optimizer or loader type. Tensors of the file (u64 values are stored
// bit for bit as int64):
//   model.<key>                 model->state_dict(): parameters and buffers, PyTorch names
//   optimizer.<key>             optimizer->state_dict()
//   scheduler.<key>             scheduler->state_dict()
//   early_stopping.<key>        early_stopping->state_dict()
//   rng.<kind>.<module name>    model->rng_state_dict(): rng.dropout.<name>, int64 [3]: seed,
//                               stream, step of each Dropout of the model
//   rng.generator.<name>        int64 [2]: seed, offset of each registered Generator
//   loader.<key>                loader->state_dict(): loader.state int64 [2] (epoch,
//                               next_batch), loader.config int64 [3] (seed, batch_size,
//                               num_batches; the loader refuses another config)
//   counters.step, counters.epoch   int64 0-d
// __metadata__: format "lockstep.checkpoint", format_version "1", lockstep_version, mode,
// step, epoch (as text, for tools), user.<key> for TrainingState::user, and the checksums.
//
// load_checkpoint checks everything before changing anything: the file (header, ranges,
// checksums: required here), the format, the mode, the sections present against the state's
// components, every model key/shape/dtype, the model's random-state keys, the generators and
// counters. The model's random state (which checks, e.g., each Dropout's stream), the
// optimizer, scheduler, early-stopping and loader state dicts are then loaded in that order
// (each checks itself and changes nothing on error); if a later one fails the earlier ones
// are put back. The model weights, generators and counters are set last, when nothing can
// fail any more. Every error names the file and the field (section.* and the component's
// own message naming its key, for errors found by a component).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/random.h"
#include "core/state_dict.h"
#include "serialize/safetensors.h"

namespace lockstep::serialize {

inline constexpr const char* kCheckpointFormat = "lockstep.checkpoint";
inline constexpr const char* kCheckpointFormatVersion = "1";

// What a checkpoint holds. Pointers are not owned; all but `model` may be null, and a
// checkpoint loads only into a state with the same components present. model is an
// nn::Module, optimizer an optim::Optimizer, scheduler an optim::LRScheduler,
// early_stopping an optim::EarlyStopping, loader a data::DataLoader (or anything else with
// the same state dicts).
struct TrainingState {
  StatefulModel* model = nullptr;
  Stateful* optimizer = nullptr;
  Stateful* scheduler = nullptr;
  Stateful* early_stopping = nullptr;
  Stateful* loader = nullptr;
  std::vector<std::pair<std::string, Generator*>> generators;  // by name
  int64_t step = 0;   // restored by load_checkpoint
  int64_t epoch = 0;  // restored by load_checkpoint
  Metadata user;      // free-form strings, saved as user.<key> and restored
  // A checkpoint written in another Mode (deterministic/fast) is refused unless this is set.
  bool allow_mode_change = false;
};

// What load_checkpoint read besides the state.
struct CheckpointInfo {
  std::string lockstep_version;  // of the library that wrote it
  std::string mode;              // "deterministic" or "fast"
  Metadata metadata;             // all metadata, checksums excluded
};

// Writes the checkpoint atomically to `path` (durable by default, see SaveOptions).
void save_checkpoint(const std::string& path, const TrainingState& state, const SaveOptions& options = {});
// Loads `path` into `state`; std::runtime_error naming the file and field on any problem,
// in which case nothing in `state` has changed.
CheckpointInfo load_checkpoint(const std::string& path, TrainingState& state);

// ---- rotation: <dir>/<stem>-<step, 12 digits>.safetensors ----
// Saves the checkpoint of state.step, then removes the oldest ones of the same stem so
// that `keep_last` remain (0: keep all). Returns the path written.
std::string save_checkpoint_rotating(const std::string& dir, const std::string& stem, const TrainingState& state,
                                     int keep_last, const SaveOptions& options = {});
// The checkpoints of `stem` in `dir`, oldest (lowest step) first; temporary files excluded.
std::vector<std::string> list_checkpoints(const std::string& dir, const std::string& stem);
std::optional<std::string> latest_checkpoint(const std::string& dir, const std::string& stem);

}  // namespace lockstep::serialize
