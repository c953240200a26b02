// Sequential: children named "0", "1", ... applied in order (state-dict keys "0.weight").
#pragma once
#include <memory>
#include <vector>

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
    layers_.push_back(register_module(std::to_string(layers_.size()), std::move(layer)));
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = x;
    for (auto& l : layers_) h = l->forward(h);
    return h;
  }
  size_t size() const { return layers_.size(); }
  const ModulePtr& operator[](size_t i) const { return layers_.at(i); }

 private:
  std::vector<ModulePtr> layers_;
};

}  // namespace lockstep::nn
