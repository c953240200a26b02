#include "core/autograd.h"

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>

namespace lockstep {
namespace {

thread_local bool t_grad_enabled = true;
thread_local OpObserver* t_observer = nullptr;
thread_local const char* t_label = "";
std::atomic<uint64_t> g_next_seq{1};

// True when g is the only holder of its tensor and of its whole storage, a dense buffer of
// exactly its elements: then it can be kept without a copy and nothing else sees it change.
bool sole_owner(const Tensor& g) {
  const auto& impl = g.impl();
  return impl && impl.use_count() == 1 && impl->storage && impl->storage.use_count() == 1 && impl->offset == 0 &&
         g.is_contiguous() && !impl->autograd.grad_fn &&
         impl->storage->nbytes() == static_cast<size_t>(g.numel()) * dtype_size(g.dtype());
}

}  // namespace

OpObserver* op_observer() { return t_observer; }
void set_op_observer(OpObserver* obs) { t_observer = obs; }
const char* op_label() { return t_label; }
OpScope::OpScope(const char* label) : saved_(t_label) { t_label = label ? label : ""; }
OpScope::~OpScope() { t_label = saved_; }

const char* intern_label(const std::string& s) {
  static std::mutex mu;
  static std::set<std::string> labels;  // nodes of a std::set never move
  std::lock_guard<std::mutex> lock(mu);
  return labels.insert(s).first->c_str();
}

bool grad_enabled() { return t_grad_enabled; }
void set_grad_enabled(bool on) { t_grad_enabled = on; }

bool should_record(std::initializer_list<const Tensor*> inputs) {
  if (!t_grad_enabled) return false;
  for (const Tensor* t : inputs)
    if (t->defined() && t->requires_grad()) return true;
  return false;
}

void record(Tensor& out, const char* name, std::vector<Tensor> inputs, BackwardFn backward) {
  auto node = std::make_shared<Node>();
  node->seq = g_next_seq.fetch_add(1);
  node->name = name;
  node->layer = t_label;
  node->inputs = std::move(inputs);
  node->backward = std::move(backward);
  if (t_observer) {
    std::vector<Tensor> outs{out};  // an alias: an observer's in-place change reaches `out`
    OpEvent e{name, node->layer, false, node->inputs, outs};
    t_observer->on_op(e);
  }
  auto& meta = out.impl()->autograd;
  meta.requires_grad = true;
  meta.grad_fn = std::move(node);
}

Tensor sum_to_shape(const Tensor& grad, const Shape& shape) {
  if (grad.shape() == shape) return grad;
  Tensor g = grad;
  while (g.dim() > static_cast<int64_t>(shape.size())) g = sum(g, 0, false);
  for (int64_t d = 0; d < g.dim(); ++d)
    if (shape[d] == 1 && g.size(d) != 1) g = sum(g, d, true);
  LS_CHECK_ARG(g.shape() == shape, "backward", "cannot reduce a gradient of shape ", shape_str(grad.shape()),
               " to ", shape_str(shape));
  return g;
}

// ---- Tensor's autograd methods ----

bool Tensor::requires_grad() const { return impl_ && impl_->autograd.requires_grad; }

Tensor& Tensor::set_requires_grad(bool on) {
  require_defined("set_requires_grad");
  LS_CHECK_ARG(is_leaf(), "set_requires_grad", "expected a leaf tensor; this one was made by ",
               impl_->autograd.grad_fn->name, " (use detach())");
  LS_CHECK_ARG(!on || is_floating(dtype()), "set_requires_grad", "only float tensors can require grad, got ",
               dtype_name(dtype()));
  impl_->autograd.requires_grad = on;
  return *this;
}

bool Tensor::is_leaf() const { return !impl_ || !impl_->autograd.grad_fn; }

Tensor Tensor::grad() const {
  require_defined("grad");
  return impl_->autograd.grad ? *impl_->autograd.grad : Tensor();
}

void Tensor::set_grad(const Tensor& g) {
  require_defined("set_grad");
  if (!g.defined()) {
    impl_->autograd.grad.reset();
    return;
  }
  LS_CHECK_ARG(g.shape() == shape() && g.dtype() == dtype() && g.device() == device(), "set_grad",
               "expected a gradient like ", str(), ", got ", g.str());
  impl_->autograd.grad = std::make_shared<Tensor>(g);
}

void Tensor::zero_grad() {
  require_defined("zero_grad");
  impl_->autograd.grad.reset();
}

const std::shared_ptr<Node>& Tensor::grad_fn() const {
  require_defined("grad_fn");
  return impl_->autograd.grad_fn;
}

Tensor Tensor::detach() const {
  require_defined("detach");
  auto impl = std::make_shared<TensorImpl>(*impl_);
  impl->autograd = AutogradMeta{};
  return Tensor(std::move(impl));
}

void Tensor::backward(const Tensor& grad_output) const {
  require_defined("backward");
  LS_CHECK_ARG(requires_grad(), "backward", "the tensor does not require grad and has no grad_fn");
  Tensor seed = grad_output;
  if (!seed.defined()) {
    LS_CHECK_ARG(numel() == 1, "backward", "grad_output can be omitted only for one-element tensors, got ",
                 shape_str(shape()));
    seed = Tensor::ones(shape(), dtype(), device());
  }
  LS_CHECK_ARG(seed.shape() == shape() && seed.dtype() == dtype(), "backward", "grad_output must be like ",
               str(), ", got ", seed.str());
  NoGradGuard no_grad;  // backward formulas are not recorded (no higher-order gradients)

  // The first gradient of a leaf becomes its .grad as it is when nothing else holds it (its
  // tensor, its storage: a fresh output of the backward formula, as Linear's weight gradient
  // is after a zero_grad that set .grad to none); otherwise a private copy, since backward
  // formulas may hand the same tensor to several inputs. The same values either way.
  auto accumulate_leaf = [](const Tensor& leaf, Tensor& g) {
    auto& meta = leaf.impl()->autograd;
    if (!meta.requires_grad) return;
    if (meta.grad)
      *meta.grad = add(*meta.grad, g);
    else if (sole_owner(g))
      meta.grad = std::make_shared<Tensor>(std::move(g));
    else
      meta.grad = std::make_shared<Tensor>(g.clone());
  };

  if (is_leaf()) {
    accumulate_leaf(*this, seed);
    return;
  }
  // Pending gradients keyed by creation number; processed from the newest node down.
  std::map<uint64_t, std::pair<Node*, Tensor>, std::greater<uint64_t>> pending;
  pending[impl_->autograd.grad_fn->seq] = {impl_->autograd.grad_fn.get(), seed};
  while (!pending.empty()) {
    auto it = pending.begin();
    Node* node = it->second.first;
    Tensor g = it->second.second;
    pending.erase(it);
    std::vector<Tensor> grads = node->backward(g);
    LS_CHECK_ARG(grads.size() == node->inputs.size(), node->name, "backward returned ", grads.size(),
                 " gradients for ", node->inputs.size(), " inputs");
    if (t_observer) {
      std::vector<Tensor> ins{g};
      ins.insert(ins.end(), node->inputs.begin(), node->inputs.end());
      OpEvent e{node->name, node->layer, true, ins, grads};
      t_observer->on_op(e);
    }
    for (size_t i = 0; i < grads.size(); ++i) {
      const Tensor& in = node->inputs[i];
      if (!grads[i].defined() || !in.defined() || !in.requires_grad()) continue;
      LS_CHECK_ARG(grads[i].shape() == in.shape(), node->name, "backward gave input ", i, " a gradient of shape ",
                   shape_str(grads[i].shape()), ", expected ", shape_str(in.shape()));
      if (in.is_leaf()) {
        accumulate_leaf(in, grads[i]);
        continue;
      }
      Node* prev = in.grad_fn().get();
      auto found = pending.find(prev->seq);
      if (found == pending.end())
        pending[prev->seq] = {prev, grads[i]};
      else
        found->second.second = add(found->second.second, grads[i]);
    }
  }
}

}  // namespace lockstep
