#include "core/state_dict.h"

#include <stdexcept>

#include "base/error.h"
#include "core/sha256.h"

namespace lockstep {

void StateDict::insert(const std::string& name, const Tensor& t) {
  LS_CHECK_ARG(!contains(name), "state_dict", "duplicate key '", name, "'");
  items_.emplace_back(name, t);
}

bool StateDict::contains(const std::string& name) const {
  for (auto& kv : items_)
    if (kv.first == name) return true;
  return false;
}

const Tensor& StateDict::at(const std::string& name) const {
  for (auto& kv : items_)
    if (kv.first == name) return kv.second;
  throw std::invalid_argument("[state_dict] no key '" + name + "'");
}

std::vector<std::string> StateDict::keys() const {
  std::vector<std::string> k;
  for (auto& kv : items_) k.push_back(kv.first);
  return k;
}

std::string state_dict_sha256(const StateDict& sd) {
  Sha256 h;
  for (const auto& [name, t] : sd.items()) {
    h.update(name.data(), name.size() + 1);  // with the terminating '\0'
    sha256_update(h, t);
  }
  return h.hex_digest();
}

}  // namespace lockstep
