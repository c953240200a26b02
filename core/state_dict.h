// StateDict: an ordered name -> tensor map (PyTorch's OrderedDict state dict), and Stateful,
// the one interface through which checkpoints (serialize/) save and restore anything with
// state: modules, optimizers, LR schedulers, early stopping, data loaders.
//
// Contract of every Stateful:
//   state_dict()       a snapshot of the whole state, as named tensors (scalars are 0-d)
//   load_state_dict()  all or nothing: every key, shape, dtype and value is checked first,
//                      and on any problem std::invalid_argument names the key and nothing
//                      has changed
// so that serialize/ can save, check and restore objects without knowing their types.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace lockstep {

class StateDict {
 public:
  void insert(const std::string& name, const Tensor& t);  // throws on a duplicate name
  bool contains(const std::string& name) const;
  const Tensor& at(const std::string& name) const;        // throws naming the key
  const std::vector<std::pair<std::string, Tensor>>& items() const { return items_; }
  size_t size() const { return items_.size(); }
  std::vector<std::string> keys() const;

 private:
  std::vector<std::pair<std::string, Tensor>> items_;
};

class Stateful {
 public:
  virtual ~Stateful() = default;
  virtual StateDict state_dict() const = 0;
  virtual void load_state_dict(const StateDict& sd) = 0;
};

// A model: its weights in state_dict() -- PyTorch's names and nothing else, so a file loads
// into a PyTorch twin with strict=True -- and, kept apart from them, the random state of its
// layers (e.g. each Dropout's mask position), which PyTorch keeps in its global generator.
// rng_state_dict() keys are "<kind>.<module name>" ("dropout.2"); load_rng_state_dict() is
// all or nothing, like load_state_dict().
class StatefulModel : public Stateful {
 public:
  virtual StateDict rng_state_dict() const = 0;
  virtual void load_rng_state_dict(const StateDict& sd) = 0;
};

// SHA-256 of a state dict, the "weights hash" lockstep prints: for each entry in order, the
// key's bytes, a '\0', then the tensor as sha256_update (core/sha256.h) writes it. Equal
// hashes mean equal keys, order, dtypes, shapes and bits.
std::string state_dict_sha256(const StateDict& sd);

}  // namespace lockstep
