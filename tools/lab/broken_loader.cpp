#include "broken_loader.h"

#include <random>

#include "base/error.h"
#include "core/random.h"

namespace lockstep_cli::lab {

using namespace lockstep;
using data::Batch;

BrokenLoader::BrokenLoader(std::shared_ptr<const data::Dataset> dataset, data::LoaderOptions options, LoaderBugs bugs)
    : dataset_(std::move(dataset)), opt_(std::move(options)), bugs_(bugs) {
  data::DataLoader check(dataset_, opt_);  // the same argument checks and batch count
  num_batches_ = check.num_batches();
  load_state({0, 0});
}

BrokenLoader::~BrokenLoader() { stop_pool(); }

void BrokenLoader::load_state(const data::LoaderState& s) {
  stop_pool();
  epoch_ = s.epoch, next_ = first_ = s.next_batch;
  data::LoaderOptions o = opt_;
  if (bugs_.unseeded_shuffle) {
    std::random_device rd;  // the bug: a seed nobody recorded
    o.seed = (static_cast<uint64_t>(rd()) << 32) | rd();
  }
  if (bugs_.shared_worker_rng) o.transform = nullptr;  // applied in next() with the broken key
  inner_ = std::make_unique<data::DataLoader>(dataset_, o);
  inner_->load_state(s);
  if (bugs_.completion_order && opt_.num_workers > 0) {
    order_ = inner_->epoch_order(epoch_);
    start_pool();
  }
}

std::optional<Batch> BrokenLoader::next() {
  if (workers_.empty()) {
    std::optional<Batch> b = inner_->next();
    if (!b || !bugs_.shared_worker_rng || !opt_.transform) return b;
    // Worker w = k mod W made batch k; before it, the same worker made (k - first_) / W
    // full batches since its generator copy was taken.
    const int64_t W = opt_.num_workers, rows = b->images.size(0);
    const Shape shape = dataset_->sample_shape();
    const int64_t per = shape_numel(shape);
    uint64_t counter = W > 0 ? static_cast<uint64_t>((b->index - first_) / W * opt_.batch_size) : main_rng_counter_;
    for (int64_t j = 0; j < rows; ++j)
      opt_.transform->apply(b->images.data<float>() + j * per, shape, data::SampleKey{opt_.seed, 0, counter++});
    if (W == 0) main_rng_counter_ = counter;
    return b;
  }
  if (next_ >= num_batches_) {
    stop_pool();
    return std::nullopt;
  }
  std::pair<Batch, std::exception_ptr> got;
  {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [&] { return !done_.empty(); });  // the bug: whichever batch finished first
    got = std::move(done_.front());
    done_.pop_front();
    --in_flight_;
  }
  cv_.notify_all();
  if (got.second) std::rethrow_exception(got.second);
  ++next_;
  return std::move(got.first);
}

void BrokenLoader::start_pool() {
  for (int w = 0; w < opt_.num_workers; ++w) workers_.emplace_back(&BrokenLoader::worker, this, w, next_);
}

void BrokenLoader::stop_pool() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
  stop_ = false;
  in_flight_ = 0;
  done_.clear();
}

// Worker w makes the batches k = w mod W, starting whenever fewer than prefetch_depth are
// made or waiting, whatever their index.
void BrokenLoader::worker(int w, int64_t first) {
  const int64_t W = opt_.num_workers;
  for (int64_t k = first + ((w - first % W) % W + W) % W; k < num_batches_; k += W) {
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return stop_ || in_flight_ < opt_.prefetch_depth; });
      if (stop_) return;
      ++in_flight_;
    }
    std::pair<Batch, std::exception_ptr> made;
    try {
      made.first = make_batch(k);
    } catch (...) {
      made.second = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (stop_) return;
      done_.push_back(std::move(made));
    }
    cv_.notify_all();
  }
}

// Batch k as lockstep's DataLoader makes it: order_[kB, min((k + 1)B, n)), keyed per sample.
Batch BrokenLoader::make_batch(int64_t k) const {
  const int64_t n = dataset_->size(), begin = k * opt_.batch_size, b = std::min(opt_.batch_size, n - begin);
  Shape shape = dataset_->sample_shape();
  const int64_t per = shape_numel(shape);
  const Shape sample = shape;
  shape.insert(shape.begin(), b);
  Batch batch{k, Tensor::empty(shape), Tensor::empty({b}, DType::i64), Tensor::empty({b}, DType::i64)};
  for (int64_t j = 0; j < b; ++j) {
    const int64_t idx = order_[static_cast<size_t>(begin + j)];
    float* dst = batch.images.data<float>() + j * per;
    batch.indices.data<int64_t>()[j] = idx;
    batch.labels.data<int64_t>()[j] = dataset_->read_into(idx, dst);
    if (opt_.transform)
      opt_.transform->apply(dst, sample, data::SampleKey{opt_.seed, static_cast<uint64_t>(epoch_),
                                                          static_cast<uint64_t>(idx)});
  }
  return batch;
}

}  // namespace lockstep_cli::lab
