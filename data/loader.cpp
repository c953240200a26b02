#include "data/loader.h"

#include <algorithm>
#include <cstring>

#include "base/parallel.h"
#include "core/random.h"

namespace lockstep::data {
namespace {

// Least floats of a batch per task when the consumer makes a batch on the pool (~0.3 ns a
// float through the byte table; a hand-off costs microseconds).
constexpr int64_t kBatchGrainFloats = 1 << 14;
// Samples ahead whose bytes the batch loop asks the dataset to prefetch (Dataset::prefetch).
// Fashion-MNIST in a random order: 784 bytes from anywhere in 47 MB, which the cache rarely
// holds; one epoch of batch-128 rows on a Zen 3 core, 44 ms of table lookups without, 27 ms
// with (a stand-alone loop of the same reads).
constexpr int64_t kPrefetchAhead = 2;

}  // namespace

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, LoaderOptions options)
    : dataset_(std::move(dataset)), opt_(std::move(options)) {
  const char* op = "DataLoader";
  LS_CHECK_ARG(dataset_ != nullptr, op, "expected a dataset, got null");
  LS_CHECK_ARG(opt_.batch_size >= 1, op, "expected batch_size >= 1, got ", opt_.batch_size);
  LS_CHECK_ARG(opt_.num_workers >= 0 && opt_.num_workers <= 256, op, "expected 0 <= num_workers <= 256, got ",
               opt_.num_workers);
  LS_CHECK_ARG(opt_.prefetch_depth >= 1, op, "expected prefetch_depth >= 1, got ", opt_.prefetch_depth);
  sample_shape_ = dataset_->sample_shape();
  sample_numel_ = shape_numel(sample_shape_);
  n_ = dataset_->size();
  if (opt_.transform) opt_.transform->check_shape(sample_shape_);
  // n / b rounded up without n + b - 1, which wraps for a batch size near 2^63
  num_batches_ = n_ / opt_.batch_size + (!opt_.drop_last && n_ % opt_.batch_size != 0 ? 1 : 0);
}

DataLoader::~DataLoader() { stop_workers(); }

std::vector<int64_t> DataLoader::epoch_order(int64_t epoch) const {
  LS_CHECK_ARG(epoch >= 0 && epoch < (int64_t{1} << 32), "DataLoader", "expected 0 <= epoch < 2^32, got ", epoch);
  if (opt_.shuffle) return permutation(n_, opt_.seed, stream_id("shuffle"), static_cast<uint64_t>(epoch));
  std::vector<int64_t> order(static_cast<size_t>(n_));
  for (int64_t i = 0; i < n_; ++i) order[i] = i;
  return order;
}

void DataLoader::load_state(const LoaderState& s) {
  LS_CHECK_ARG(s.epoch >= 0 && s.epoch < (int64_t{1} << 32), "DataLoader", "expected 0 <= epoch < 2^32, got ",
               s.epoch);
  LS_CHECK_ARG(s.next_batch >= 0 && s.next_batch <= num_batches_, "DataLoader", "expected next_batch in [0, ",
               num_batches_, "], got ", s.next_batch);
  stop_workers();
  epoch_ = s.epoch;
  next_ = s.next_batch;
}

StateDict DataLoader::state_dict() const {
  int64_t seed;
  std::memcpy(&seed, &opt_.seed, 8);
  StateDict sd;
  sd.insert("state", Tensor::from_vector(std::vector<int64_t>{epoch_, next_}, {2}));
  sd.insert("config", Tensor::from_vector(std::vector<int64_t>{seed, opt_.batch_size, num_batches_}, {3}));
  return sd;
}

void DataLoader::load_state_dict(const StateDict& sd) {
  const char* op = "DataLoader.load_state_dict";
  for (auto& k : sd.keys()) LS_CHECK_ARG(k == "state" || k == "config", op, "unexpected key '", k, "'");
  auto get = [&](const char* key, int64_t n) {
    LS_CHECK_ARG(sd.contains(key), op, "missing key '", key, "'");
    const Tensor& t = sd.at(key);
    LS_CHECK_ARG(t.dtype() == DType::i64 && t.shape() == Shape{n}, op, "'", key, "': expected int64 [", n, "], got ",
                 t.str());
    return t.to(Device::cpu).to_vector<int64_t>();
  };
  const std::vector<int64_t> s = get("state", 2), c = get("config", 3);
  uint64_t seed;
  std::memcpy(&seed, &c[0], 8);
  LS_CHECK_ARG(seed == opt_.seed, op, "'config': seed ", seed, ", the loader has ", opt_.seed);
  LS_CHECK_ARG(c[1] == opt_.batch_size, op, "'config': batch_size ", c[1], ", the loader has ", opt_.batch_size);
  LS_CHECK_ARG(c[2] == num_batches_, op, "'config': ", c[2], " batches per epoch, the loader has ", num_batches_);
  LS_CHECK_ARG(s[0] >= 0 && s[0] < (int64_t{1} << 32) && s[1] >= 0 && s[1] <= c[2], op, "'state': epoch ", s[0],
               ", next_batch ", s[1], " is not a valid position");
  load_state(LoaderState{s[0], s[1]});
}

// Builds the order for (epoch_, next_) and launches the workers; they only read order_,
// which stays unchanged until stop_workers() has joined them.
void DataLoader::start() {
  order_ = epoch_order(epoch_);
  running_ = true;
  for (int w = 0; w < opt_.num_workers; ++w) workers_.emplace_back(&DataLoader::worker_loop, this, w, next_);
}

void DataLoader::stop_workers() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
  stop_ = false;
  in_flight_ = 0;
  ready_.clear();
  running_ = false;
}

void DataLoader::set_shard(BatchShard shard) {
  stop_workers();  // batches made ahead were made for the old shard
  shard_ = std::move(shard);
}

bool DataLoader::may_start(int64_t k) const { return k < next_ + opt_.prefetch_depth; }

void DataLoader::worker_loop(int w, int64_t first) {
  const int64_t W = opt_.num_workers;
  int64_t k = first + ((w - first % W) % W + W) % W;  // first k >= first with k mod W == w
  for (; k < num_batches_; k += W) {
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return stop_ || may_start(k); });
      if (stop_) return;
      ++in_flight_;
    }
    Slot slot;
    try {
      slot.batch = make_batch(k);
    } catch (...) {
      slot.error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (stop_) return;
      ready_.emplace(k, std::move(slot));
    }
    cv_.notify_all();
  }
}

Batch DataLoader::make_batch(int64_t k, bool on_pool) const {
  int64_t begin = k * opt_.batch_size, b = std::min(opt_.batch_size, n_ - begin);
  int64_t first = 0, global = -1;
  if (shard_) {  // only rows [first, last) of the global batch: samples order_[begin + first ...]
    const auto [f, l] = shard_(b);
    LS_CHECK_ARG(0 <= f && f <= l && l <= b, "DataLoader", "shard rows [", f, ", ", l, ") are outside a batch of ",
                 b, " rows");
    first = f, global = b, begin += f, b = l - f;
  }
  Shape shape = sample_shape_;
  shape.insert(shape.begin(), b);
  Batch batch{k, Tensor::empty(shape), Tensor::empty({b}, DType::i64), Tensor::empty({b}, DType::i64), first,
              global};
  float* img = batch.images.data<float>();
  int64_t* labels = batch.labels.data<int64_t>();
  int64_t* indices = batch.indices.data<int64_t>();
  auto make_rows = [&](int64_t j0, int64_t j1) {
    for (int64_t j = j0; j < j1; ++j) {
      // Two samples ahead: sample j+2's bytes arrive while j and j+1 are converted.
      if (j + kPrefetchAhead < j1) dataset_->prefetch(order_[static_cast<size_t>(begin + j + kPrefetchAhead)]);
      const int64_t idx = order_[static_cast<size_t>(begin + j)];
      float* dst = img + j * sample_numel_;
      indices[j] = idx;
      labels[j] = dataset_->read_into(idx, dst);
      // The key names the sample, never the thread or the draws before it.
      if (opt_.transform)
        opt_.transform->apply(dst, sample_shape_,
                              SampleKey{opt_.seed, static_cast<uint64_t>(epoch_), static_cast<uint64_t>(idx)});
    }
  };
  // Each sample is read into its own row (read_into and transforms are thread-safe, dataset.h),
  // so splitting the rows over threads changes no bit; without it the workers-0 loop made
  // every batch on the main thread while the pool's other threads waited for the step.
  if (on_pool)
    parallel_for(b, std::max<int64_t>(1, kBatchGrainFloats / std::max<int64_t>(sample_numel_, 1)), make_rows);
  else
    make_rows(0, b);
  return batch;
}

std::optional<Batch> DataLoader::next() {
  if (next_ >= num_batches_) {
    stop_workers();
    return std::nullopt;
  }
  if (!running_) start();
  if (opt_.num_workers == 0) {
    Batch b = make_batch(next_, true);
    ++next_;
    return b;
  }
  Slot slot;
  {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [&] { return ready_.count(next_) > 0; });
    slot = std::move(ready_.at(next_));
    ready_.erase(next_);
    if (!slot.error) {
      ++next_;
      --in_flight_;
    }
  }
  if (slot.error) {
    stop_workers();  // the next call restarts the workers at this same batch
    std::rethrow_exception(slot.error);
  }
  cv_.notify_all();
  return std::move(slot.batch);
}

}  // namespace lockstep::data
