#include "harness.h"

#include <unistd.h>

#include <cmath>
#include <cstdarg>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "core/autograd.h"
#include "base/parallel.h"
#include "data/mnist.h"
#include "nn/nn.h"

namespace lockstep_cli::lab {

using namespace lockstep;

namespace {

// Sizes: quick keeps every scenario to a second or two on two busy cores.
struct Sizes {
  int64_t train, validation, test, steps;
};
Sizes sizes(const LabOptions& o) { return o.quick ? Sizes{2048, 512, 512, 40} : Sizes{10000, 2000, 2000, 150}; }

}  // namespace

void materialise(const data::Dataset& ds, int64_t first, int64_t n, Tensor* x, Tensor* y) {
  *x = Tensor::empty({n, 784});
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) labels[i] = ds.read_into(first + i, x->data<float>() + i * 784);
  *y = Tensor::from_vector(labels, {n});
}

const LabData& lab_data(const LabOptions& o) {
  static LabData d;
  static bool loaded = false;
  if (loaded) return d;
  const std::string dir = o.data_dir.empty() ? data::kFashionMnistDir : o.data_dir;
  if (!data::mnist_available(dir))
    throw std::runtime_error("[lab] Fashion-MNIST not found in " + dir +
                             ": expected the four IDX files (scripts/setup.sh installs dataset-fashion-mnist), "
                             "or pass --data DIR");
  const Sizes s = sizes(o);
  auto train = data::load_mnist(dir, data::MnistSplit::train, data::kFashionMnistNormalize);
  auto test = data::load_mnist(dir, data::MnistSplit::test, data::kFashionMnistNormalize);
  if (train->size() < s.train + s.validation || test->size() < s.test)
    throw std::runtime_error("[lab] " + dir + ": expected at least " + std::to_string(s.train + s.validation) +
                             " training and " + std::to_string(s.test) + " test images");
  // Training subset: the first images; validation: the ones right after.
  std::vector<int64_t> tr(static_cast<size_t>(s.train)), va(static_cast<size_t>(s.validation));
  for (int64_t i = 0; i < s.train; ++i) tr[i] = i;
  for (int64_t i = 0; i < s.validation; ++i) va[i] = s.train + i;
  d.train = std::make_shared<data::Subset>(train, tr);
  d.validation = std::make_shared<data::Subset>(train, va);
  materialise(*test, 0, s.test, &d.test_x, &d.test_y);
  materialise(*train, s.train, s.validation, &d.val_x, &d.val_y);
  loaded = true;
  return d;
}

int64_t lab_steps(const LabOptions& o) { return sizes(o).steps; }

TrainSpec default_spec(const LabOptions& o) {
  TrainSpec s;
  s.threads = o.threads;
  return s;
}

Session::Session(const TrainSpec& sp, const LabOptions& o) : spec(sp) {
  ThreadsGuard tg(spec.threads);
  tools::TrainConfig cfg;
  cfg.seed = spec.seed, cfg.init_seed = spec.init_seed;
  cfg.hidden = {128, 64}, cfg.batchnorm = spec.model.batchnorm, cfg.dropout = spec.model.dropout;
  cfg.optimizer = "adamw", cfg.lr = spec.lr, cfg.weight_decay = spec.weight_decay, cfg.schedule = "constant";
  cfg.mode = spec.mode, cfg.device = spec.device, cfg.threads = spec.threads;
  cfg.batch_size = kBatch, cfg.drop_last = true, cfg.workers = spec.workers, cfg.augment = spec.augment;
  cfg.epochs = 1;  // step() runs on through the epochs; only run() stops at the planned ones
  const auto train = spec.train_set ? spec.train_set : lab_data(o).train;
  trainer = std::make_unique<tools::Trainer>(cfg, nullptr, tools::TrainData{train, nullptr});
  model = trainer->model_ptr();
  if (spec.loader_bugs.any()) {
    broken_loader = std::make_unique<BrokenLoader>(train, trainer->loader().options(), spec.loader_bugs);
    trainer->set_batch_source({[this] { return broken_loader->next(); },
                               [this](int64_t e) { broken_loader->begin_epoch(e); }});
  }
  if (spec.model.global_rng_dropout) {
    // The model's own forward, each Dropout layer replaced by the broken one.
    global_dropout = std::make_unique<GlobalRngDropout>(spec.model.dropout);
    trainer->set_forward_backward([this](const data::Batch& b, std::vector<std::pair<std::string, Tensor>>*) {
      Tensor h = b.images.reshape({b.images.size(0), 784}).to(spec.device);
      for (size_t i = 0; i < model->size(); ++i) {
        nn::Module& layer = *(*model)[i];
        h = dynamic_cast<nn::Dropout*>(&layer) ? global_dropout->forward(h) : layer.forward(h);
      }
      Tensor loss = cross_entropy(h, b.labels.to(spec.device));
      loss.backward();
      return loss;
    });
  }
}

double Session::step() {
  ModeGuard mg(spec.mode);
  ThreadsGuard tg(spec.threads);
  losses.push_back(trainer->step());
  return losses.back();
}

std::vector<float> flat_weights(const nn::Module& m) {
  std::vector<float> out;
  const nn::StateDict sd = m.state_dict();  // items() refers into it: keep it alive
  for (auto& [name, t] : sd.items()) {
    if (t.dtype() != DType::f32) continue;  // num_batches_tracked: an integer count
    auto v = t.contiguous().to_vector<float>();
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

Device device_of(const nn::Module& m) {
  const std::vector<Tensor> ps = m.parameters();
  return ps.empty() ? Device::cpu : ps.front().device();
}

std::vector<float> logits_of(nn::Module& m, const Tensor& x, int64_t batch) {
  NoGradGuard ng;
  const Device dev = device_of(m);
  std::vector<float> out;
  const int64_t n = x.size(0);
  for (int64_t i = 0; i < n; i += batch) {
    const int64_t b = std::min(batch, n - i);
    Tensor xb = Tensor::from_vector(std::vector<float>(x.data<float>() + i * 784, x.data<float>() + (i + b) * 784),
                                    {b, 784});
    auto v = m.forward(xb.to(dev)).contiguous().to_vector<float>();
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

double accuracy(nn::Module& m, const Tensor& x, const Tensor& y) {
  const bool was_training = m.is_training();
  m.eval();
  std::vector<float> l = logits_of(m, x, 256);
  m.train(was_training);
  auto labels = y.to_vector<int64_t>();
  int64_t correct = 0;
  for (size_t r = 0; r < labels.size(); ++r) {
    size_t best = 0;
    for (size_t c = 1; c < 10; ++c)
      if (l[r * 10 + c] > l[r * 10 + best]) best = c;
    correct += static_cast<int64_t>(best) == labels[r];
  }
  return labels.empty() ? 0.0 : static_cast<double>(correct) / static_cast<double>(labels.size());
}

double eval_loss(nn::Module& m, const Tensor& x, const Tensor& y) {
  NoGradGuard ng;
  const bool was_training = m.is_training();
  m.eval();
  const Device dev = device_of(m);
  double loss = cross_entropy(m.forward(x.to(dev)), y.to(dev)).item();
  m.train(was_training);
  return loss;
}

std::vector<float> final_values(Session& s, const LabOptions& o) {
  ModeGuard mg(s.spec.mode);
  ThreadsGuard tg(s.spec.threads);
  s.model->eval();
  std::vector<float> v = concat(flat_weights(*s.model), logits_of(*s.model, lab_data(o).test_x, 256));
  s.model->train();
  return v;
}

namespace {
template <typename T>
PairResult compare_impl(const std::vector<T>& a, const std::vector<T>& b) {
  PairResult r;
  if (a.size() != b.size()) return r.max_abs_delta = INFINITY, r;
  r.identical = a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) != std::isnan(b[i])) return r.max_abs_delta = INFINITY, r;
    if (!std::isnan(a[i])) r.max_abs_delta = std::max(r.max_abs_delta, std::fabs(double(a[i]) - double(b[i])));
  }
  return r;
}
}  // namespace

PairResult compare(const std::vector<float>& a, const std::vector<float>& b) { return compare_impl(a, b); }
PairResult compare(const std::vector<double>& a, const std::vector<double>& b) { return compare_impl(a, b); }

std::vector<float> concat(std::vector<float> a, const std::vector<float>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::vector<Series> four_curves(const std::vector<double>& p1, const std::vector<double>& p2,
                                const std::vector<double>& f1, const std::vector<double>& f2) {
  return {{"problem, run 1", true, p1}, {"problem, run 2", true, p2}, {"fix, run 1", false, f1}, {"fix, run 2", false, f2}};
}

std::string make_scratch_dir(const std::string& tag) {
  std::string tmpl = (std::filesystem::temp_directory_path() / ("lockstep_lab_" + tag + "_XXXXXX")).string();
  if (!mkdtemp(tmpl.data())) throw std::runtime_error("[lab] cannot create a temporary directory " + tmpl);
  return tmpl;
}

void remove_dir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

std::string strf(const char* fmt, ...) {
  va_list ap, ap2;
  va_start(ap, fmt);
  va_copy(ap2, ap);
  const int n = std::vsnprintf(nullptr, 0, fmt, ap);  // the length first, so nothing is cut
  va_end(ap);
  std::string out(n > 0 ? static_cast<size_t>(n) : 0, '\0');
  if (n > 0) std::vsnprintf(out.data(), out.size() + 1, fmt, ap2);
  va_end(ap2);
  return out;
}

}  // namespace lockstep_cli::lab
