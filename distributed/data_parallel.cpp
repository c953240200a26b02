#include "distributed/data_parallel.h"

#include <cstring>

#include "core/autograd.h"
#include "base/error.h"
#include "nn/nn.h"

namespace lockstep::distributed {
namespace {

void set_dropout_offsets(nn::Module& m, int64_t first_row) {
  if (auto* d = dynamic_cast<nn::Dropout*>(&m)) d->set_row_offset(first_row);
  for (auto& child : m.children()) set_dropout_offsets(*child.second, first_row);
}

}  // namespace

DataParallel::DataParallel(Communicator& comm, nn::Module& model, std::shared_ptr<nn::BatchSync> sync)
    : comm_(comm), model_(model), sync_(std::move(sync)) {}

DataParallel::~DataParallel() {
  if (sync_) sync_->combine = nullptr;
}

void DataParallel::broadcast_state(int root) {
  const nn::StateDict sd = model_.state_dict();  // aliases of the model's tensors
  for (auto& [name, t] : sd.items()) {
    Tensor v = t;  // an alias: the broadcast writes into the model
    broadcast_tensor(comm_, v, root);
  }
}

std::pair<int64_t, int64_t> DataParallel::begin_step(int64_t global_rows) {
  const BatchTree tree(global_rows, comm_.size());
  return begin_step(tree, global_rows, tree.rows_of(comm_.rank()).first);
}

std::pair<int64_t, int64_t> DataParallel::begin_step(const BatchTree& tree, int64_t mean_rows, int64_t row_offset) {
  LS_CHECK_ARG(tree.world() == comm_.size() && mean_rows >= 1, "DataParallel", "expected a tree over ", comm_.size(),
               " ranks and mean_rows >= 1, got ", tree.world(), " and ", mean_rows);
  tree_.emplace(tree);
  mean_rows_ = mean_rows;
  const int64_t global_rows = tree.rows();
  const auto rows = tree_->rows_of(comm_.rank());
  if (sync_) {
    sync_->global_rows = global_rows;
    sync_->combine = [this](const Tensor& local) {
      Tensor total = local.contiguous().clone();
      all_reduce_batch(comm_, *tree_, total.data<float>(), total.numel());
      return total;
    };
  }
  set_dropout_offsets(model_, row_offset);
  return rows;
}

float DataParallel::backward_mean(const Tensor& local_loss_sum) {
  LS_CHECK_ARG(tree_.has_value(), "DataParallel", "backward_mean before begin_step");
  LS_CHECK_ARG(local_loss_sum.defined() && local_loss_sum.numel() == 1 && local_loss_sum.dtype() == DType::f32,
               "DataParallel", "expected a one-element float32 loss sum, got ",
               local_loss_sum.defined() ? local_loss_sum.str() : "undefined");
  float total = local_loss_sum.contiguous().data<float>()[0];
  all_reduce_batch(comm_, *tree_, &total, 1);
  const float n = static_cast<float>(mean_rows_);
  // Reduction::mean: loss = sum / N, and every row's weight in the backward is 1 / N.
  local_loss_sum.backward(Tensor::full(local_loss_sum.shape(), static_cast<double>(1.0f / n)));
  return total / n;
}

float DataParallel::idle_backward_mean() {
  LS_CHECK_ARG(tree_.has_value() && tree_->empty(comm_.rank()), "DataParallel",
               "idle_backward_mean on a rank that owns rows of the batch");
  float total = 0.0f;  // this rank's sum over no rows; the tree does not read it
  all_reduce_batch(comm_, *tree_, &total, 1);
  for (Tensor& p : model_.parameters()) p.set_grad(Tensor::zeros(p.shape(), DType::f32));
  return total / static_cast<float>(mean_rows_);
}

int64_t DataParallel::gradient_floats() const {
  int64_t n = 0;
  for (const Tensor& p : model_.parameters()) n += p.numel();
  return n;
}

void DataParallel::combine_gradients() { combine_gradients({}); }

void DataParallel::combine_gradients(const std::vector<Tensor>& extra) {
  LS_CHECK_ARG(tree_.has_value(), "DataParallel", "combine_gradients before begin_step");
  // One message: every parameter's gradient back to back, in registration order, then the
  // extra leaves'. Every rank ran the same graph, so the same gradients are defined everywhere.
  std::vector<Tensor> params = model_.parameters();
  params.insert(params.end(), extra.begin(), extra.end());
  std::vector<float> flat;
  flat.reserve(static_cast<size_t>(gradient_floats()));
  for (const Tensor& p : params) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    LS_CHECK_ARG(g.dtype() == DType::f32, "DataParallel", "gradients must be float32, got ", g.str());
    Tensor c = g.contiguous();
    flat.insert(flat.end(), c.data<float>(), c.data<float>() + c.numel());
  }
  all_reduce_batch(comm_, *tree_, flat.data(), static_cast<int64_t>(flat.size()));
  size_t at = 0;
  for (Tensor& p : params) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    Tensor combined = Tensor::empty(g.shape(), DType::f32);
    std::memcpy(combined.data<float>(), flat.data() + at, static_cast<size_t>(g.numel()) * sizeof(float));
    at += static_cast<size_t>(g.numel());
    p.set_grad(combined);
  }
}

void DataParallel::check_replicas() {
  check_same_on_all_ranks(comm_, nn::state_dict_sha256(model_.state_dict()), "the model's state-dict hash");
}

Tensor take_rows(const Tensor& t_in, int64_t begin, int64_t end) {
  LS_CHECK_ARG(t_in.defined() && t_in.dim() >= 1 && t_in.device() == Device::cpu, "take_rows",
               "expected a CPU tensor with rows, got ", t_in.defined() ? t_in.str() : "undefined");
  LS_CHECK_ARG(0 <= begin && begin <= end && end <= t_in.size(0), "take_rows", "rows [", begin, ", ", end,
               ") are outside ", t_in.size(0), " rows");
  Tensor t = t_in.contiguous();
  Shape shape = t.shape();
  shape[0] = end - begin;
  Tensor out = Tensor::empty(shape, t.dtype());
  const size_t row_bytes = t.size(0) == 0 ? 0 : t.nbytes() / static_cast<size_t>(t.size(0));
  if (out.nbytes() > 0)
    std::memcpy(out.raw_data(), static_cast<const char*>(t.raw_data()) + static_cast<size_t>(begin) * row_bytes,
                out.nbytes());
  return out;
}

}  // namespace lockstep::distributed
