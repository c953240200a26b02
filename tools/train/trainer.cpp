#include "train/trainer.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "core/autograd.h"
#include "core/random.h"
#include "core/sha256.h"
#include "data/mnist.h"
#include "data/transforms.h"
#include "nn/models.h"
#include "nn/models_cnn.h"
#include "nn/nn.h"
#include "optim/adam.h"
#include "optim/clip.h"
#include "optim/sgd.h"

namespace lockstep::tools {

namespace {

constexpr const char* kStem = "ckpt";

std::string fmt_double(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// A double's exact bits as 16 hex digits, for counters that must survive a resume exactly.
std::string double_bits(double v) {
  uint64_t u;
  std::memcpy(&u, &v, 8);
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(u));
  return buf;
}

double bits_double(const std::string& s, const std::string& what) {
  if (s.size() != 16 || s.find_first_not_of("0123456789abcdef") != std::string::npos)
    throw std::runtime_error("[train] checkpoint metadata " + what + ": expected 16 hex digits, got '" + s + "'");
  uint64_t u = std::stoull(s, nullptr, 16);
  double v;
  std::memcpy(&v, &u, 8);
  return v;
}

int64_t parse_i64(const std::string& s, const std::string& what) {
  size_t pos = 0;
  int64_t v = 0;
  try {
    v = std::stoll(s, &pos);
  } catch (const std::exception&) {
    pos = 0;
  }
  if (pos == 0 || pos != s.size())
    throw std::runtime_error("[train] checkpoint metadata " + what + ": expected an integer, got '" + s + "'");
  return v;
}

std::string join(const std::vector<int64_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s;
}

// The first n examples of `base` (all when n == 0), whose indices are file indices.
std::shared_ptr<const data::Dataset> first_n(std::shared_ptr<const data::Dataset> base, int64_t n,
                                             const char* flag) {
  if (n == 0 || n == base->size()) return base;
  if (n > base->size())
    throw std::invalid_argument(str_cat("[train] ", flag, " ", n, ": the file has only ", base->size(), " images"));
  std::vector<int64_t> idx(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) idx[static_cast<size_t>(i)] = i;
  return std::make_shared<data::Subset>(base, idx);
}

// Creates dir and its missing parents (like mkdir -p); throws naming --save on failure.
void make_dirs(const std::string& dir) {
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    const std::string part = dir.substr(0, pos);
    struct stat st {};
    if (::stat(part.c_str(), &st) == 0) {
      if (!S_ISDIR(st.st_mode)) throw std::runtime_error(str_cat("[train] --save ", dir, ": ", part, " is not a directory"));
      continue;
    }
    if (::mkdir(part.c_str(), 0777) != 0 && errno != EEXIST)
      throw std::runtime_error(str_cat("[train] --save ", dir, ": cannot create ", part, ": ", std::strerror(errno)));
  }
  // Checked now, not at the first checkpoint after the training it was meant to keep.
  if (::access(dir.c_str(), W_OK | X_OK) != 0)
    throw std::runtime_error(str_cat("[train] --save ", dir, ": cannot write there: ", std::strerror(errno)));
}

}  // namespace

void validate(const TrainConfig& c) {
  auto need = [](bool ok, const char* flag, const std::string& expected, const std::string& got) {
    if (!ok) throw std::invalid_argument(str_cat("[train] ", flag, ": expected ", expected, ", got ", got));
  };
  need(c.epochs >= 1, "--epochs", "an integer >= 1", std::to_string(c.epochs));
  need(c.max_steps >= 0, "--max-steps", "an integer >= 0 (0: no limit)", std::to_string(c.max_steps));
  need(c.threads >= 0 && c.threads <= 1024, "--threads", "0..1024 (0: default)", std::to_string(c.threads));
  need(c.workers >= 0 && c.workers <= 256, "--workers", "0..256", std::to_string(c.workers));
  need(c.batch_size >= 1, "--batch-size", "an integer >= 1", std::to_string(c.batch_size));
  need(std::isfinite(c.lr) && c.lr > 0, "--lr", "a finite number > 0", str_cat(c.lr));
  need(std::isfinite(c.weight_decay) && c.weight_decay >= 0, "--weight-decay", "a finite number >= 0",
       str_cat(c.weight_decay));
  need(std::isfinite(c.momentum) && c.momentum >= 0 && c.momentum < 1, "--momentum", "a number in [0, 1)",
       str_cat(c.momentum));
  need(c.dropout >= 0 && c.dropout < 1, "--dropout", "a probability in [0, 1)", str_cat(c.dropout));
  need(c.model == "mlp" || c.model == "cnn" || c.model == "lenet5" || c.model == "gpt", "--model",
       "mlp, cnn, lenet5 or gpt", "'" + c.model + "'");
  need(c.context >= 1 && c.context <= 65536, "--context", "an integer in 1..65536", std::to_string(c.context));
  need(c.n_layer >= 1 && c.n_layer <= 256, "--layers", "an integer in 1..256", std::to_string(c.n_layer));
  need(c.n_head >= 1 && c.n_embd >= 1 && c.n_embd <= 65536 && c.n_embd % c.n_head == 0, "--width",
       "a size in 1..65536 that --heads divides", str_cat(c.n_embd, " with ", c.n_head, " heads"));
  need(c.warmup >= 0, "--warmup", "an integer >= 0", std::to_string(c.warmup));
  need(std::isfinite(c.clip) && c.clip >= 0, "--clip", "a finite number >= 0 (0: no clipping)", str_cat(c.clip));
  need(c.val_fraction > 0 && c.val_fraction < 1, "--val-fraction", "a number in (0, 1)", str_cat(c.val_fraction));
  need(!c.channels.empty() && c.channels.size() <= 4, "--channels", "1 to 4 channel counts, e.g. 32,64",
       join(c.channels));
  for (int64_t ch : c.channels) need(ch >= 1 && ch <= 4096, "--channels", "counts in 1..4096", join(c.channels));
  need(!c.hidden.empty(), "--hidden", "at least one hidden size, e.g. 256,128", "none");
  for (int64_t h : c.hidden) need(h >= 1 && h <= 65536, "--hidden", "sizes in 1..65536", join(c.hidden));
  need(c.optimizer == "sgd" || c.optimizer == "adam" || c.optimizer == "adamw", "--optimizer", "sgd, adam or adamw",
       "'" + c.optimizer + "'");
  need(c.momentum == 0 || c.optimizer == "sgd", "--momentum", "0 unless --optimizer sgd", str_cat(c.momentum));
  need(c.subset >= 0, "--subset", "an integer >= 0 (0: all)", std::to_string(c.subset));
  need(c.test_subset >= 0, "--test-subset", "an integer >= 0 (0: all)", std::to_string(c.test_subset));
  need(c.save_every >= 0, "--save-every", "an integer >= 0", std::to_string(c.save_every));
  need(c.save_every == 0 || !c.save_dir.empty(), "--save-every", "to be used with --save DIR", "no --save");
  need(c.keep_last >= 0, "--keep", "an integer >= 0 (0: keep all)", std::to_string(c.keep_last));
  need(c.eval_batch_size >= 1, "--eval-batch-size", "an integer >= 1", std::to_string(c.eval_batch_size));
  need(c.schedule == "cosine" || c.schedule == "constant", "schedule", "cosine or constant", "'" + c.schedule + "'");
}

void apply_gpt_defaults(TrainConfig& c, const std::vector<std::string>& set) {
  auto unset = [&](const char* flag) { return std::find(set.begin(), set.end(), flag) == set.end(); };
  if (unset("--batch-size")) c.batch_size = 16;
  if (unset("--lr")) c.lr = 1e-3;
  if (unset("--weight-decay")) c.weight_decay = 0.1;
  if (unset("--epochs")) c.epochs = 8;
  if (unset("--warmup")) c.warmup = 10;
  if (unset("--clip")) c.clip = 1.0;
  if (unset("--dropout")) c.dropout = 0.0;
}

void split_windows(const Tensor& windows, Tensor* ids, Tensor* targets) {
  LS_CHECK_ARG(windows.dim() == 2 && windows.size(1) >= 2 && windows.dtype() == DType::f32, "train",
               "expected text windows float32 [B, T + 1], got ", windows.str());
  const int64_t B = windows.size(0), T = windows.size(1) - 1;
  const Tensor w = windows.to(Device::cpu).contiguous();
  const float* p = w.data<float>();
  std::vector<int64_t> x(static_cast<size_t>(B * T)), y(static_cast<size_t>(B * T));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      x[static_cast<size_t>(b * T + t)] = static_cast<int64_t>(p[b * (T + 1) + t]);
      y[static_cast<size_t>(b * T + t)] = static_cast<int64_t>(p[b * (T + 1) + t + 1]);
    }
  *ids = Tensor::from_vector(x, {B, T});
  *targets = Tensor::from_vector(y, {B * T});
}

std::shared_ptr<const data::Dataset> train_images_or_synthetic(const std::string& dir, int64_t n, uint64_t seed,
                                                               std::string* source) {
  LS_CHECK_ARG(n >= 1, "train", "expected at least one training image, got ", n);
  if (data::mnist_available(dir)) {
    if (source) *source = "fashion-mnist";
    return first_n(data::load_mnist(dir, data::MnistSplit::train, data::kFashionMnistNormalize), n, "--subset");
  }
  // Synthetic: standard-normal images, labels i mod 10, all keyed by the seed.
  Tensor images = Tensor::empty({n, 1, 28, 28});
  fill_normal(images, 0.0, 1.0, seed, stream_id("dist:synthetic"));
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) labels[static_cast<size_t>(i)] = i % 10;
  if (source) *source = "synthetic";
  return std::make_shared<data::TensorDataset>(images, Tensor::from_vector(labels, {n}), 10);
}

namespace {

serialize::Metadata gpt_flags(const TrainConfig& c) {
  return {{"recipe", "gpt-char"},
          {"context", std::to_string(c.context)},
          {"n_layer", std::to_string(c.n_layer)},
          {"n_head", std::to_string(c.n_head)},
          {"n_embd", std::to_string(c.n_embd)},
          {"optimizer", c.optimizer},
          {"lr", fmt_double(c.lr)},
          {"weight_decay", fmt_double(c.weight_decay)},
          {"warmup", std::to_string(c.warmup)},
          {"clip", fmt_double(c.clip)},
          {"val_fraction", fmt_double(c.val_fraction)},
          {"batch_size", std::to_string(c.batch_size)},
          {"seed", std::to_string(c.seed)}};
}

serialize::Metadata recipe_flags(const TrainConfig& c) {
  if (c.model == "gpt") return gpt_flags(c);
  serialize::Metadata m{{"recipe", c.model + "-fashion-mnist"},
          {"hidden", join(c.hidden)},
          {"dropout", fmt_double(c.dropout)},
          {"optimizer", c.optimizer},
          {"lr", fmt_double(c.lr)},
          {"weight_decay", fmt_double(c.weight_decay)},
          {"momentum", fmt_double(c.momentum)},
          {"batch_size", std::to_string(c.batch_size)},
          {"seed", std::to_string(c.seed)},
          {"subset", std::to_string(c.subset)},
          {"augment", c.augment ? "1" : "0"}};
  if (c.model == "cnn") m["channels"] = join(c.channels);
  return m;
}

// The lab's knobs, recorded only when they differ from the recipe's defaults (so `lockstep
// train` checkpoints keep their metadata); resume() refuses a mismatch either way.
constexpr const char* kLabKnobs[] = {"init_seed", "batchnorm", "drop_last", "schedule"};

}  // namespace

serialize::Metadata meaning_flags(const TrainConfig& c) {
  serialize::Metadata m = recipe_flags(c);
  if (c.init_seed) m["init_seed"] = std::to_string(*c.init_seed);
  if (!c.batchnorm) m["batchnorm"] = "0";
  if (c.drop_last) m["drop_last"] = "1";
  if (c.schedule != "cosine") m["schedule"] = c.schedule;
  return m;
}

Trainer::Trainer(TrainConfig cfg, std::shared_ptr<nn::BatchSync> sync, TrainData data)
    : cfg_(std::move(cfg)), sync_(std::move(sync)) {
  validate(cfg_);
  if (cfg_.device == Device::cuda) {
    try {
      Tensor::empty({1}, DType::f32, Device::cuda);
    } catch (const std::exception& e) {
      throw std::runtime_error(str_cat("[train] --device cuda: no usable CUDA device: ", e.what()));
    }
    if (sync_)
      throw std::invalid_argument("[train] --device cuda: expected no --distributed (the data-parallel step runs on "
                                  "the CPU only)");
  }
  if (!cfg_.save_dir.empty()) make_dirs(cfg_.save_dir);
  if (cfg_.model == "gpt") {
    load_text();
  } else if (data.train) {
    train_set_ = std::move(data.train), test_set_ = std::move(data.test);
  } else if (!data::mnist_available(cfg_.data_dir)) {
    std::string missing;
    for (auto split : {data::MnistSplit::train, data::MnistSplit::test})
      for (bool labels : {false, true}) {
        const std::string f = data::mnist_file(cfg_.data_dir, split, labels);
        struct stat sb {};
        if (::stat(f.c_str(), &sb) != 0) missing += " " + f;
      }
    throw std::runtime_error(str_cat("[train] --data ", cfg_.data_dir,
                                     ": expected the four Fashion-MNIST IDX files (train/t10k images and labels, "
                                     "gzipped or not); missing:", missing));
  } else {
    train_set_ = first_n(data::load_mnist(cfg_.data_dir, data::MnistSplit::train, data::kFashionMnistNormalize),
                         cfg_.subset, "--subset");
    test_set_ = first_n(data::load_mnist(cfg_.data_dir, data::MnistSplit::test, data::kFashionMnistNormalize),
                        cfg_.test_subset, "--test-subset");
  }
  forward_backward_ = [this](const data::Batch& b, std::vector<std::pair<std::string, Tensor>>* outputs) {
    return local_forward_backward(b, outputs);
  };
  data::LoaderOptions lo;
  lo.batch_size = cfg_.batch_size, lo.shuffle = true, lo.drop_last = cfg_.drop_last;
  lo.num_workers = cfg_.workers, lo.seed = cfg_.seed;
  if (cfg_.augment)
    lo.transform = std::make_shared<data::Compose>(std::vector<std::shared_ptr<const data::Transform>>{
        std::make_shared<data::RandomCrop>(2), std::make_shared<data::RandomHorizontalFlip>(0.5f)});
  loader_ = std::make_unique<data::DataLoader>(train_set_, lo);
  LS_CHECK_ARG(loader_->num_batches() == 0 || cfg_.epochs <= INT64_MAX / loader_->num_batches(), "train",
               "--epochs ", cfg_.epochs, " x ", loader_->num_batches(), " batches per epoch is more steps than an "
               "int64 counts; expected at most ", INT64_MAX / std::max<int64_t>(loader_->num_batches(), 1));
  t_max_ = cfg_.epochs * loader_->num_batches();
  if (cfg_.max_steps > 0 && cfg_.max_steps < t_max_) t_max_ = cfg_.max_steps;
  if (!cfg_.resume_dir.empty()) {
    resume();
  } else {
    build();
  }
}

Trainer::~Trainer() = default;

nn::Sequential& Trainer::model() {
  LS_CHECK_ARG(model_ != nullptr, "train", "expected an MLP or CNN trainer, this one trains --model ", cfg_.model);
  return *model_;
}

nn::Module& Trainer::module() { return gpt_ ? static_cast<nn::Module&>(*gpt_) : *model_; }

// The text, its vocabulary (sorted code points) and the windows of both sides of the split.
void Trainer::load_text() {
  const std::string text = data::read_text(cfg_.text);
  vocab_ = data::CharVocab::build(text);
  data::TextSplit split = data::split_tokens(vocab_.encode(text), cfg_.val_fraction);
  auto train = std::make_shared<data::TokenWindows>(std::move(split.train), cfg_.context);
  auto val = std::make_shared<data::TokenWindows>(std::move(split.validation), cfg_.context);
  if (train->size() == 0 || val->size() == 0)
    throw std::runtime_error(str_cat("[train] --text ", cfg_.text, ": ", text.size(), " bytes give ", train->size(),
                                     " training and ", val->size(), " validation windows of --context ", cfg_.context,
                                     " tokens; expected at least one of each (a longer text or a shorter context)"));
  train_set_ = train, test_set_ = val;
}

// GPT: AdamW over two groups (no decay on embeddings, LayerNorm and biases), warm-up then
// cosine over t_max_ when cfg.warmup > 0.
void Trainer::build_gpt(uint64_t init) {
  nn::GptConfig g;
  g.vocab_size = vocab_.size(), g.context = cfg_.context, g.n_layer = cfg_.n_layer, g.n_head = cfg_.n_head;
  g.n_embd = cfg_.n_embd;
  gpt_ = nn::make_gpt(init, g);
  gpt_->to(cfg_.device);
  gpt_->train();
  const auto named = gpt_->named_parameters();
  const auto nd = nn::Gpt::no_decay_modules();
  if (cfg_.optimizer == "sgd")
  {
    const auto o = optim::SGDOptions(cfg_.lr).momentum(cfg_.momentum).weight_decay(cfg_.weight_decay);
    opt_ = std::make_unique<optim::SGD>(optim::weight_decay_groups(named, o, nd), o);
  }
  else if (cfg_.optimizer == "adam")
    opt_ = std::make_unique<optim::Adam>(
        optim::weight_decay_groups(named, optim::AdamOptions(cfg_.lr).weight_decay(cfg_.weight_decay), nd));
  else
    opt_ = std::make_unique<optim::AdamW>(
        optim::weight_decay_groups(named, optim::AdamWOptions(cfg_.lr).weight_decay(cfg_.weight_decay), nd));
  if (cfg_.schedule != "cosine") return;
  if (cfg_.warmup > 0 && cfg_.warmup < t_max_)
    sched_ = optim::make_warmup_cosine(*opt_, cfg_.warmup, t_max_);
  else
    sched_ = std::make_unique<optim::CosineAnnealingLR>(*opt_, t_max_, 0.0);
}

// Model, optimizer (one group with every parameter) and the cosine schedule over t_max_.
void Trainer::build() {
  const uint64_t init = cfg_.init_seed.value_or(cfg_.seed);
  if (cfg_.model == "gpt") return build_gpt(init);
  if (cfg_.model == "cnn") {
    nn::CnnOptions co;
    co.channels = cfg_.channels, co.hidden = cfg_.hidden, co.dropout = cfg_.dropout, co.sync = sync_;
    model_ = nn::make_cnn(init, co);
  } else if (cfg_.model == "lenet5") {
    model_ = nn::make_lenet5(init);
  } else {
    nn::MlpOptions mo;
    mo.sizes = cfg_.hidden;
    mo.sizes.insert(mo.sizes.begin(), 784);
    mo.sizes.push_back(10);
    mo.batchnorm = cfg_.batchnorm, mo.dropout = cfg_.dropout, mo.sync = sync_;
    model_ = nn::make_mlp(init, mo);
  }
  // Initialised on the CPU (the same bits on every device), then moved before the optimizer
  // sees the parameters, so its state is created on the model's device.
  model_->to(cfg_.device);
  model_->train();
  if (cfg_.optimizer == "sgd")
    opt_ = std::make_unique<optim::SGD>(model_->parameters(),
                                        optim::SGDOptions(cfg_.lr).momentum(cfg_.momentum).weight_decay(cfg_.weight_decay));
  else if (cfg_.optimizer == "adam")
    opt_ = std::make_unique<optim::Adam>(model_->parameters(),
                                         optim::AdamOptions(cfg_.lr).weight_decay(cfg_.weight_decay));
  else
    opt_ = std::make_unique<optim::AdamW>(model_->parameters(),
                                          optim::AdamWOptions(cfg_.lr).weight_decay(cfg_.weight_decay));
  if (cfg_.schedule == "cosine") sched_ = std::make_unique<optim::CosineAnnealingLR>(*opt_, t_max_, 0.0);
}

// Loads the latest checkpoint of resume_dir after checking that its recorded flags match.
void Trainer::resume() {
  struct stat sb {};
  if (::stat(cfg_.resume_dir.c_str(), &sb) != 0 || !S_ISDIR(sb.st_mode))
    throw std::runtime_error(str_cat("[train] --resume ", cfg_.resume_dir, ": no such directory"));
  const auto path = serialize::latest_checkpoint(cfg_.resume_dir, kStem);
  if (!path)
    throw std::runtime_error(str_cat("[train] --resume ", cfg_.resume_dir, ": no checkpoint (", kStem,
                                     "-<step>.safetensors) in that directory"));
  // Read and validate the file once for its metadata: the schedule length and the flags.
  serialize::LoadOptions lo;
  lo.require_checksum = true;
  const serialize::Metadata meta = serialize::load_safetensors(*path, lo).metadata;
  auto user = [&](const std::string& key) -> const std::string& {
    auto it = meta.find("user." + key);
    if (it == meta.end())
      throw std::runtime_error(str_cat("[train] --resume ", *path, ": metadata user.", key,
                                       " missing (not a checkpoint written by lockstep train)"));
    return it->second;
  };
  serialize::Metadata flags = meaning_flags(cfg_);
  for (const char* knob : kLabKnobs)  // a lab knob the checkpoint has and this run leaves at its default
    if (meta.count(str_cat("user.", knob)) && !flags.count(knob)) flags[knob] = "(default)";
  for (const auto& [key, value] : flags)
    if (user(key) != value)
      throw std::runtime_error(str_cat("[train] --resume ", *path, ": the checkpoint was trained with ", key, "=",
                                       user(key), ", this run asks for ", key, "=", value,
                                       "; only --threads, --workers, --epochs, --max-steps, --save*, --data may "
                                       "change on resume"));
  if (cfg_.model == "gpt" && user("vocab") != vocab_.serialize())
    throw std::runtime_error(str_cat("[train] --resume ", *path, ": the checkpoint's vocabulary (", user("vocab").size(),
                                     " bytes of code points) differs from --text ", cfg_.text,
                                     "'s; resume with the text it was trained on"));
  // The schedule is the one planned when training started.
  t_max_ = parse_i64(user("t_max"), "user.t_max");
  build();
  serialize::TrainingState st = training_state();
  serialize::load_checkpoint(*path, st);
  step_ = st.step, epoch_ = st.epoch;
  epoch_loss_sum_ = bits_double(user("epoch_loss_sum"), "user.epoch_loss_sum");
  epoch_loss_count_ = parse_i64(user("epoch_loss_count"), "user.epoch_loss_count");
  resumed_from_ = step_;
}

serialize::TrainingState Trainer::training_state() {
  serialize::TrainingState st;
  st.model = &module(), st.optimizer = opt_.get(), st.scheduler = sched_.get(), st.loader = loader_.get();
  st.step = step_, st.epoch = epoch_;
  return st;
}

std::string Trainer::save() {
  serialize::TrainingState st = training_state();
  st.user = meaning_flags(cfg_);
  st.user["t_max"] = std::to_string(t_max_);
  st.user["epoch_loss_sum"] = double_bits(epoch_loss_sum_);
  st.user["epoch_loss_count"] = std::to_string(epoch_loss_count_);
  if (gpt_) st.user["vocab"] = vocab_.serialize();
  serialize::SaveOptions so;
  so.atomic.durable = cfg_.fsync;
  return serialize::save_checkpoint_rotating(cfg_.save_dir, kStem, st, cfg_.keep_last, so);
}

Tensor Trainer::gpt_forward_backward(const data::Batch& b) {
  Tensor ids, targets;
  split_windows(b.images, &ids, &targets);
  Tensor logits = gpt_->forward(ids.to(cfg_.device));
  OpScope scope("loss");
  Tensor loss = cross_entropy(logits, targets.to(cfg_.device));
  loss.backward();
  gpt_->fold_tied_gradient();
  return loss;
}

// Mean token loss over every validation window, in eval batches of eval_batch_size / T
// windows (at least 1): each batch's loss sum in the batch order, the sums added in batch
// order in double. Every rank of a data-parallel run computes it whole (no sharding).
double Trainer::evaluate_gpt() {
  NoGradGuard ng;
  gpt_->eval();
  const int64_t n = test_set_->size(), T = cfg_.context;
  const int64_t per_batch = std::max<int64_t>(1, cfg_.eval_batch_size / T);
  double total = 0.0;
  for (int64_t b0 = 0; b0 < n; b0 += per_batch) {
    const int64_t rows = std::min(per_batch, n - b0);
    Tensor w = Tensor::empty({rows, T + 1});
    for (int64_t r = 0; r < rows; ++r) test_set_->read_into(b0 + r, w.data<float>() + r * (T + 1));
    Tensor ids, targets;
    split_windows(w, &ids, &targets);
    total += cross_entropy(gpt_->forward(ids.to(cfg_.device)), targets.to(cfg_.device), Reduction::sum).item();
  }
  gpt_->train();
  return n == 0 ? 0.0 : total / static_cast<double>(n * T);
}

Tensor Trainer::local_forward_backward(const data::Batch& b, std::vector<std::pair<std::string, Tensor>>* outputs) {
  if (gpt_) return gpt_forward_backward(b);
  // The batch is assembled on the CPU by the loader and copied to the model's device here.
  Tensor h = b.images.reshape({b.images.size(0), 784}).to(cfg_.device);
  for (size_t i = 0; i < model_->size(); ++i) {
    OpScope scope(model_->label(i));  // names the layer in op traces (train/op_trace.h)
    h = (*model_)[i]->forward(h);      // Sequential::forward, one layer at a time
    if (outputs) outputs->push_back({"output." + std::to_string(i), h});
  }
  OpScope scope("loss");
  Tensor loss = cross_entropy(h, b.labels.to(cfg_.device));
  loss.backward();
  return loss;
}

double Trainer::evaluate() {
  if (!test_set_) return 0.0;
  if (gpt_) {
    val_loss_ = evaluate_gpt();
    return 0.0;
  }
  NoGradGuard ng;
  model_->eval();
  int64_t correct = 0;
  const int64_t n = test_set_->size();
  const Shape s = test_set_->sample_shape();
  const int64_t per = shape_numel(s);
  const auto [first, last] = eval_shard_.rows ? eval_shard_.rows(n) : std::make_pair(int64_t{0}, n);
  for (int64_t b0 = first; b0 < last; b0 += cfg_.eval_batch_size) {
    const int64_t rows = std::min(cfg_.eval_batch_size, last - b0);
    Tensor x = Tensor::empty({rows, per});
    std::vector<int64_t> labels(static_cast<size_t>(rows));
    float* px = x.data<float>();
    for (int64_t r = 0; r < rows; ++r) labels[static_cast<size_t>(r)] = test_set_->read_into(b0 + r, px + r * per);
    // Forward on the model's device; only the predicted classes come back.
    const std::vector<int64_t> pred = argmax(model_->forward(x.to(cfg_.device)), 1).to_vector<int64_t>();
    for (int64_t r = 0; r < rows; ++r) correct += pred[static_cast<size_t>(r)] == labels[static_cast<size_t>(r)];
  }
  if (eval_shard_.total) correct = eval_shard_.total(correct);
  model_->train();
  return n == 0 ? 0.0 : static_cast<double>(correct) / static_cast<double>(n);
}

float Trainer::train_step(const data::Batch& b, StepRecord* rec) {
  opt_->zero_grad();
  Tensor loss = forward_backward_(b, rec ? &rec->outputs : nullptr);
  if (cfg_.clip > 0) optim::clip_grad_norm_(module().parameters(), cfg_.clip);
  if (rec)
    for (const auto& [name, p] : module().named_parameters()) rec->grads.push_back({"grad." + name, p.grad()});
  opt_->step();
  if (sched_) sched_->step();
  const float lv = static_cast<float>(loss.item());  // the one scalar copied back per step
  ++step_;
  losses_.push_back(lv);
  epoch_loss_sum_ += static_cast<double>(lv);
  ++epoch_loss_count_;
  return lv;
}

float Trainer::step() {
  auto next = [&] { return source_.next ? source_.next() : loader_->next(); };
  std::optional<data::Batch> b = next();
  if (!b) {
    ++epoch_;
    source_.next ? source_.begin_epoch(epoch_) : loader_->begin_epoch(epoch_);
    epoch_loss_sum_ = 0.0, epoch_loss_count_ = 0;
    b = next();
    LS_CHECK_ARG(b.has_value(), "train", "expected an epoch with at least one batch, got none");
  }
  module().train();
  return train_step(*b, nullptr);
}

TrainResult Trainer::run() {
  using clock = std::chrono::steady_clock;
  LS_CHECK_ARG(!source_.next, "train", "expected no batch source in run() (the lab's loaders are for step())");
  TrainResult res;
  const size_t first_loss = losses_.size();
  res.resumed_from = resumed_from_;
  module().train();
  double seconds = 0.0;
  std::optional<int64_t> evaluated_at;  // the step the last evaluation saw
  double accuracy = 0.0;
  std::optional<int64_t> saved_at;
  float last_loss = 0.0f;
  while (cfg_.max_steps == 0 || step_ < cfg_.max_steps) {
    std::optional<data::Batch> b = loader_->next();
    if (!b) {  // the epoch is done: the next one, if planned
      if (epoch_ + 1 >= cfg_.epochs) break;
      loader_->begin_epoch(++epoch_);
      epoch_loss_sum_ = 0.0, epoch_loss_count_ = 0;
      b = loader_->next();
      if (!b) break;
    }
    StepRecord rec;
    rec.epoch = epoch_, rec.batch = b->index, rec.lr = opt_->lr(0), rec.batch_data = &*b;

    const auto t0 = clock::now();
    const float lv = train_step(*b, capture_ ? &rec : nullptr);
    seconds += std::chrono::duration<double>(clock::now() - t0).count();

    ++res.steps_this_run;
    res.samples += b->total_rows();
    last_loss = lv;
    if (observer_) {
      rec.step = step_, rec.loss = lv;
      if (capture_) {
        const nn::StateDict sd = module().state_dict();
        for (const auto& kv : sd.items()) rec.params.push_back({"param." + kv.first, kv.second});
      }
      observer_(rec);
    }
    if (progress_) progress_(step_, t_max_, lv);
    if (loader_->state().next_batch == loader_->num_batches()) {  // end of an epoch
      accuracy = evaluate();
      evaluated_at = step_;
      if (epoch_observer_)
        epoch_observer_(EpochRecord{epoch_, epoch_loss_count_, epoch_loss_sum_ / static_cast<double>(epoch_loss_count_),
                                    accuracy, val_loss_});
    }
    if (cfg_.save_every > 0 && step_ % cfg_.save_every == 0) res.last_checkpoint = save(), saved_at = step_;
  }
  if (!cfg_.save_dir.empty() && saved_at != step_) res.last_checkpoint = save();
  if (evaluated_at != step_) accuracy = evaluate();

  res.steps = step_;
  res.epoch = epoch_;
  res.train_loss = epoch_loss_count_ > 0 ? epoch_loss_sum_ / static_cast<double>(epoch_loss_count_) : 0.0;
  res.last_loss = last_loss;
  res.test_accuracy = accuracy;
  res.val_loss = val_loss_;
  res.weights_sha256 = nn::state_dict_sha256(module().state_dict());  // hashed from CPU copies: same bits
  res.train_seconds = seconds;
  res.samples_per_sec = seconds > 0 ? static_cast<double>(res.samples) / seconds : 0.0;
  res.losses.assign(losses_.begin() + static_cast<std::ptrdiff_t>(first_loss), losses_.end());
  return res;
}

}  // namespace lockstep::tools
