// The classic data-loader bugs lockstep's DataLoader (data/loader.h) is built to avoid,
// reproduced for the lab's problems and for the tests that show the bugs are real
// (docs/data.md). Each one breaks the loader's promise on purpose. Demonstrations only.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "data/loader.h"

namespace lockstep_cli::lab {

struct LoaderBugs {
  // The shuffle seed comes from std::random_device at each begin_epoch/load_state, so
  // orders differ from run to run and a restored loader replays a different order.
  bool unseeded_shuffle = false;
  // Batches are handed out in the order workers finish them, not in index order.
  bool completion_order = false;
  // Each worker augments with its own stateful generator copied from one parent state at
  // the start of every epoch (the forked-worker RNG bug): the key is (seed, 0, samples this
  // worker has done), so worker w's j-th sample gets the same draws as every other
  // worker's j-th sample, and the draws depend on num_workers.
  bool shared_worker_rng = false;
  bool any() const { return unseeded_shuffle || completion_order || shared_worker_rng; }
};

// A DataLoader with one or more of the bugs: the same options, batches and interface, but
// not the same promise. The seeded, index-ordered parts are lockstep's DataLoader itself;
// completion order has its own worker pool (with num_workers >= 1; without workers there is
// no completion order to follow).
class BrokenLoader {
 public:
  BrokenLoader(std::shared_ptr<const lockstep::data::Dataset> dataset, lockstep::data::LoaderOptions options,
               LoaderBugs bugs);
  ~BrokenLoader();  // stops and joins the workers
  BrokenLoader(const BrokenLoader&) = delete;
  BrokenLoader& operator=(const BrokenLoader&) = delete;

  int64_t num_batches() const { return num_batches_; }
  void begin_epoch(int64_t epoch) { load_state({epoch, 0}); }
  void load_state(const lockstep::data::LoaderState& s);
  std::optional<lockstep::data::Batch> next();

 private:
  void start_pool();  // completion order: workers for batches next_ .. num_batches_ - 1
  void stop_pool();
  void worker(int w, int64_t first);
  lockstep::data::Batch make_batch(int64_t k) const;

  std::shared_ptr<const lockstep::data::Dataset> dataset_;
  lockstep::data::LoaderOptions opt_;
  LoaderBugs bugs_;
  int64_t num_batches_ = 0;
  int64_t epoch_ = 0, next_ = 0, first_ = 0;  // first_: the batch the epoch (or restore) began at
  std::unique_ptr<lockstep::data::DataLoader> inner_;  // everything but completion order
  uint64_t main_rng_counter_ = 0;  // shared_worker_rng without workers: never reset

  // completion order
  std::vector<int64_t> order_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  int64_t in_flight_ = 0;  // started, not yet taken
  std::deque<std::pair<lockstep::data::Batch, std::exception_ptr>> done_;  // in completion order
};

}  // namespace lockstep_cli::lab
