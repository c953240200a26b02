// Sequential: children named "0", "1", ... applied in order (state-dict keys "0.weight").
#pragma once
#include <memory>
#include <vector>

#include "core/autograd.h"
#include "nn/module.h"

namespace lockstep::nn {

class Sequential : public Module {
 public:
  Sequential() : Module("Sequential") {}
  explicit Sequential(const std::vector<ModulePtr>& layers) : Module("Sequential") {
    for (auto& l : layers) push_back(l);
  }
  template <typename... Ms>
  explicit Sequential(std::shared_ptr<Ms>... layers) : Module("Sequential") {
    (push_back(std::move(layers)), ...);
  }

  void push_back(ModulePtr layer) {
    const std::string key = std::to_string(layers_.size());
    labels_.push_back(intern_label(key + ":" + layer->type_name()));
    layers_.push_back(register_module(key, std::move(layer)));
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = x;
    for (size_t i = 0; i < layers_.size(); ++i) {
      OpScope scope(labels_[i]);
      h = layers_[i]->forward(h);
    }
    return h;
  }
  size_t size() const { return layers_.size(); }
  const ModulePtr& operator[](size_t i) const { return layers_.at(i); }
  // Layer i's op label, "<key>:<type>" ("0:Linear"), for OpScope (core/autograd.h).
  const char* label(size_t i) const { return labels_.at(i); }

 private:
  std::vector<ModulePtr> layers_;
  std::vector<const char*> labels_;  // interned: they outlive the module
};

}  // namespace lockstep::nn
