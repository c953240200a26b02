// DataLoader: batches of a Dataset, optionally shuffled and augmented, made by worker
// threads ahead of the consumer -- with the same bits whatever the worker count.
//
// The promise (deterministic, the default): batch k of epoch e has the same samples, the
// same augmented pixels and the same labels, bit for bit, for any num_workers, any
// prefetch_depth, and whether the loader ran from the start of the epoch or was restored
// mid-epoch with load_state(). Because:
//   - the epoch's order is permutation(n, seed, stream_id("shuffle"), e) (data/dataset.h),
//     a pure function of (seed, e), or the identity without shuffle;
//   - batch k holds order[k B, min((k + 1) B, n)); with drop_last the short last batch is
//     left out;
//   - a sample's augmentation is keyed by (seed, e, dataset index) (data/transforms.h);
//   - batches are delivered in index order, whatever order the workers finish in.
// Sharded (data parallelism, set_shard): each batch is made only for the rows [first, last)
// of the global batch that the shard function gives this process; those rows hold the same
// samples and pixels as in the whole batch, since nothing above depends on the other rows.
// Worker w of W makes the batches k with k mod W == w; it may start batch k only when
// k < next + prefetch_depth (next = the batch the consumer takes next), so at most
// prefetch_depth batches exist (made or being made) at once, however slow the consumer.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "core/state_dict.h"
#include "data/dataset.h"
#include "data/transforms.h"

namespace lockstep::data {

struct LoaderOptions {
  int64_t batch_size = 1;
  bool shuffle = false;
  bool drop_last = false;
  int num_workers = 0;      // 0: batches are made inside next(), samples split over the thread pool
  int prefetch_depth = 2;   // >= 1: most batches in flight at once (workers only)
  uint64_t seed = 0;        // shuffle and augmentation
  std::shared_ptr<const Transform> transform;  // applied to each sample; null = none
};

// Rows [first, second) of a global batch of `rows` rows that this process makes (data
// parallelism: distributed::BatchTree::rows_of); may be empty. Called from worker threads.
using BatchShard = std::function<std::pair<int64_t, int64_t>(int64_t rows)>;

struct Batch {
  int64_t index = 0;  // k, the batch's position in the epoch
  Tensor images;      // float32 [B, sample_shape...], e.g. [B, 1, 28, 28] for MNIST
  Tensor labels;      // int64 [B]
  Tensor indices;     // int64 [B]: dataset index of each sample
  // Sharded loaders only: the B rows are rows [first_row, first_row + B) of a global batch of
  // global_rows rows. global_rows < 0: the batch is whole.
  int64_t first_row = 0, global_rows = -1;
  int64_t total_rows() const { return global_rows < 0 ? images.size(0) : global_rows; }
};

// Where a loader stands: the whole state, nothing hidden.
struct LoaderState {
  int64_t epoch = 0;
  int64_t next_batch = 0;  // in [0, num_batches]; num_batches = the epoch is done
};

// One consumer thread drives a loader; its workers are internal. A new loader stands at
// epoch 0, batch 0.
class DataLoader : public Stateful {
 public:
  DataLoader(std::shared_ptr<const Dataset> dataset, LoaderOptions options);
  ~DataLoader();  // stops and joins the workers, mid-epoch too
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  int64_t num_batches() const { return num_batches_; }
  const LoaderOptions& options() const { return opt_; }

  // Positions the loader at batch 0 of `epoch` (0 <= epoch < 2^32).
  void begin_epoch(int64_t epoch) { load_state(LoaderState{epoch, 0}); }
  // The next batch of the current epoch, or nullopt when the epoch is done. An exception
  // raised while making a batch (by the dataset or a transform) is rethrown here, and the
  // loader stays at that batch.
  std::optional<Batch> next();

  LoaderState state() const { return LoaderState{epoch_, next_}; }
  void load_state(const LoaderState& s);
  // The position as a state dict (checkpoints): "state" int64 [2] epoch, next_batch;
  // "config" int64 [3] seed (u64 bits), batch_size, num_batches. load_state_dict() refuses
  // a config other than this loader's, or an invalid position, and then changes nothing.
  StateDict state_dict() const override;
  void load_state_dict(const StateDict& sd) override;

  // From the next batch made on, make only this process's rows of each batch (null: whole
  // batches again). The position is kept.
  void set_shard(BatchShard shard);

  // The sample order of an epoch (dataset indices), as the deterministic loader uses it.
  std::vector<int64_t> epoch_order(int64_t epoch) const;

 private:
  struct Slot {
    Batch batch;
    std::exception_ptr error;
  };
  void start();
  void stop_workers();
  void worker_loop(int w, int64_t first);  // first: the batch the consumer takes next
  bool may_start(int64_t k) const;  // under mu_
  // on_pool: the samples are split over the thread pool (the consumer's own call, workers 0;
  // a worker thread makes its batch alone, so it never queues behind the kernels' jobs).
  Batch make_batch(int64_t k, bool on_pool = false) const;

  std::shared_ptr<const Dataset> dataset_;
  LoaderOptions opt_;
  BatchShard shard_;
  Shape sample_shape_;
  int64_t n_, sample_numel_, num_batches_;

  int64_t epoch_ = 0, next_ = 0;
  bool running_ = false;           // order_ and workers set up for (epoch_, next_)
  std::vector<int64_t> order_;

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  int64_t in_flight_ = 0;            // started, not yet taken by the consumer
  std::map<int64_t, Slot> ready_;    // finished batches by index
};

}  // namespace lockstep::data
