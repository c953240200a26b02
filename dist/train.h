// The data-parallel training run the tests, the benchmark and the lab share: the default
// recipe (make_mlp 784-256-128-10 with BatchNorm, ReLU, Dropout; AdamW lr 1e-3, betas
// 0.9/0.999, eps 1e-8, weight decay 0.05; cosine annealing over the planned steps, stepped
// per optimizer step; cross-entropy mean; shuffled loader, drop_last false) on the first
// `subset` Fashion-MNIST training images, or on a synthetic set when the files are absent.
//
// train_reference is the plain single-process loop (no dist/ code at all); the promise is
//   train_data_parallel(world W, sync_batchnorm) == train_reference   bit for bit, any W,
// including across a checkpoint written at one world size and resumed at another.
// With sync_batchnorm = false each rank's BatchNorm sees only its rows (what common
// data-parallel trainers do): the result then depends on the world size.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "dist/communicator.h"

namespace lockstep::dist {

struct TrainConfig {
  int64_t steps = 12;        // total optimizer steps (also the cosine schedule's T_max)
  int64_t batch_size = 96;   // the GLOBAL batch
  int64_t subset = 1024;     // training images used
  uint64_t seed = 7;         // init, dropout, shuffle
  double dropout = 0.2;
  bool sync_batchnorm = true;
  bool check_replicas = false;   // debug: compare every rank's state-dict hash after each step
  std::string data_dir;          // empty: data::kFashionMnistDir
  std::string checkpoint_path;   // rank 0 writes it (atomically) every checkpoint_every steps
  int64_t checkpoint_every = 0;
  std::string resume_path;       // continue from this checkpoint (any world size wrote it)
  // Failure injection for the tests: this rank throws before this (1-based) step.
  int fail_rank = -1;
  int64_t fail_step = -1;
};

struct TrainResult {
  std::string weights_sha256;  // nn::state_dict_sha256 of the final model
  std::vector<float> losses;   // global mean loss of each step run here
  int64_t steps = 0;           // global step reached
  int world = 1;
  uint64_t bytes_moved = 0;    // this rank's collective traffic (sent + received)
  int64_t gradient_floats = 0; // floats in one gradient message
  double seconds = 0;          // wall time of the steps (not of loading)
  std::string data;            // "fashion-mnist" or "synthetic"
};

// The training images of cfg: the first cfg.subset of Fashion-MNIST (normalised with
// data::kFashionMnistNormalize), or `subset` synthetic images keyed by the seed.
std::shared_ptr<const data::Dataset> make_train_set(const TrainConfig& cfg, std::string* source = nullptr);

TrainResult train_reference(const TrainConfig& cfg, std::shared_ptr<const data::Dataset> set = nullptr);
// Every rank calls it; every rank returns the same weights hash and losses. A rank that
// throws calls comm.abort() with the error (the MPI job ends naming the rank).
TrainResult train_data_parallel(Communicator& comm, const TrainConfig& cfg,
                                std::shared_ptr<const data::Dataset> set = nullptr);
// The lab's `world-size` scenario: train_data_parallel on `world` ranks that are threads of
// this process (LocalGroup); returns rank 0's result.
TrainResult train_at_world_size(int world, const TrainConfig& cfg, std::shared_ptr<const data::Dataset> set = nullptr);

}  // namespace lockstep::dist
