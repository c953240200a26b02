// loader-workers: batches handed out in the order workers finish them.
#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "harness.h"
#include "scenarios.h"

namespace lockstep_cli::lab {

using namespace lockstep;

namespace {

// The training set with every fourth batch 3 ms slower to make, as uneven reads are:
// reading the first sample of batch k, k mod 4 == 0, sleeps. Batch k's first sample comes
// from the epoch's shuffle order, which the problem's loader and the fix's share; the epoch
// from the count of reads (an epoch reads num_batches x B samples with drop_last, and the
// next one starts only once its last batch was taken).
class SlowBatches : public data::Dataset {
 public:
  SlowBatches(std::shared_ptr<const data::Dataset> base, uint64_t seed, int64_t steps) : base_(base) {
    data::LoaderOptions lo;  // the Session's order: kBatch rows, shuffled by the seed, drop_last
    lo.batch_size = kBatch, lo.shuffle = true, lo.drop_last = true, lo.seed = seed;
    data::DataLoader loader(base, lo);
    per_epoch_ = loader.num_batches() * lo.batch_size;
    for (int64_t e = 0; e * loader.num_batches() < steps; ++e) {
      const std::vector<int64_t> order = loader.epoch_order(e);
      slow_.emplace_back();
      for (int64_t k = 0; k < loader.num_batches(); k += 4) slow_.back().insert(order[k * lo.batch_size]);
    }
  }
  int64_t size() const override { return base_->size(); }
  Shape sample_shape() const override { return base_->sample_shape(); }
  data::Example get(int64_t i) const override { return base_->get(i); }
  int64_t read_into(int64_t i, float* dst) const override {
    const size_t epoch = static_cast<size_t>(reads_.fetch_add(1) / per_epoch_);
    if (epoch < slow_.size() && slow_[epoch].count(i)) std::this_thread::sleep_for(std::chrono::milliseconds(3));
    return base_->read_into(i, dst);
  }

 private:
  std::shared_ptr<const data::Dataset> base_;
  int64_t per_epoch_ = 1;
  std::vector<std::set<int64_t>> slow_;  // per epoch: the first samples of the slow batches
  mutable std::atomic<int64_t> reads_{0};
};

// Trains with `workers` loader workers delivering in completion order (problem) or in index
// order (fix). Every fourth batch takes 3 ms longer to make, as uneven reads do; the same
// delays are applied to the fix, which delivers in order regardless.
std::vector<float> train_workers(const LabOptions& o, bool completion_order, int workers,
                                 std::vector<double>* losses) {
  TrainSpec spec = default_spec(o);
  spec.workers = workers;
  spec.loader_bugs.completion_order = completion_order;
  spec.train_set = std::make_shared<SlowBatches>(lab_data(o).train, spec.seed, lab_steps(o));
  Session s(spec, o);
  s.train_steps(lab_steps(o));
  *losses = s.losses;
  return final_values(s, o);
}

ScenarioResult run_loader_workers(const LabOptions& o) {
  ScenarioResult r;
  r.compared = "final weights and test logits";
  std::vector<double> lp1, lp2, lf1, lf2;
  r.problem = compare(train_workers(o, true, 1, &lp1), train_workers(o, true, 3, &lp2));
  r.fix = compare(train_workers(o, false, 1, &lf1), train_workers(o, false, 3, &lf2));
  r.curves = four_curves(lp1, lp2, lf1, lf2);
  r.note = r.problem.identical ? "seen: completion order happened to match index order this time"
                               : "seen: the batch order changed with the workers' timing";
  return r;
}

}  // namespace

Scenario loader_workers_scenario() {
  return {"loader-workers", "batches delivered in worker completion order vs in index order",
          "loader workers 1 vs 3 (every 4th batch is slow to make)", false, run_loader_workers};
}

}  // namespace lockstep_cli::lab
