// lockstep_dist_check: data-parallel training through the tools' training loop
// (tools/train/distributed.h) as a program, for the tests under mpirun
// (tests/distributed/run_dist_check.sh) and the throughput numbers.
//   lockstep_dist_check reference [flags]   the plain single-process Trainer
//   lockstep_dist_check train [flags]       data-parallel over MPI_COMM_WORLD
// flags: --steps N --batch N --subset N --seed N --per-rank-bn --check --save DIR
//        --every K --resume DIR; LOCKSTEP_DIST_FAIL_RANK / LOCKSTEP_DIST_FAIL_STEP make
//        that rank throw before that step (the failure test). The recipe is `lockstep
// train`'s (784-256-128-10, AdamW, cosine over the steps) on the first --subset
// Fashion-MNIST training images, or synthetic ones where the files are absent. Rank 0 prints
//   hash <weights sha256>, loss <last loss>, world, steps_per_sec, bytes_per_step.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

#include "base/mode.h"
#include "data/mnist.h"
#include "distributed/mpi_communicator.h"
#include "train/distributed.h"

using namespace lockstep;

namespace {

void print(const tools::DistributedResult& r, const std::string& data) {
  const tools::TrainResult& t = r.train;
  std::printf("hash %s\nloss %.9g\nworld %d\ndata %s\n", t.weights_sha256.c_str(),
              t.losses.empty() ? 0.0 : static_cast<double>(t.losses.back()), r.world, data.c_str());
  if (t.steps_this_run > 0 && t.train_seconds > 0)
    std::printf("steps_per_sec %.2f\nbytes_per_step %.0f\ngradient_floats %lld\n",
                static_cast<double>(t.steps_this_run) / t.train_seconds,
                static_cast<double>(r.bytes_moved) / static_cast<double>(t.steps_this_run),
                static_cast<long long>(r.gradient_floats));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || (std::strcmp(argv[1], "reference") != 0 && std::strcmp(argv[1], "train") != 0)) {
    std::fprintf(stderr, "usage: %s reference|train [--steps N --batch N --subset N --seed N --per-rank-bn --check "
                         "--save DIR --every K --resume DIR]\n", argv[0]);
    return 2;
  }
  const bool reference = std::strcmp(argv[1], "reference") == 0;
  tools::TrainConfig cfg;
  tools::DistributedOptions dopt;
  int64_t steps = 12, subset = 1000;  // 7 x 128 + 104: a short last batch
  cfg.batch_size = 128, cfg.seed = 7;
  try {
    for (int i = 2; i < argc; ++i) {
      const std::string a = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc) throw std::invalid_argument("flag " + a + " needs a value");
        return argv[++i];
      };
      if (a == "--steps") steps = std::stoll(value());
      else if (a == "--batch") cfg.batch_size = std::stoll(value());
      else if (a == "--subset") subset = std::stoll(value());
      else if (a == "--seed") cfg.seed = std::stoull(value());
      else if (a == "--per-rank-bn") dopt.sync_batchnorm = false;
      else if (a == "--check") dopt.check_replicas = true;
      else if (a == "--save") cfg.save_dir = value();
      else if (a == "--every") cfg.save_every = std::stoll(value());
      else if (a == "--resume") cfg.resume_dir = value();
      else throw std::invalid_argument("unknown flag " + a);
    }
    cfg.max_steps = cfg.epochs = steps;  // enough epochs: the cosine schedule spans the steps
    if (const char* r = std::getenv("LOCKSTEP_DIST_FAIL_RANK")) dopt.fail_rank = std::atoi(r);
    if (const char* s = std::getenv("LOCKSTEP_DIST_FAIL_STEP")) dopt.fail_step = std::atoll(s);
    set_mode(Mode::deterministic);
    std::string source;
    const tools::TrainData data{tools::train_images_or_synthetic(data::kFashionMnistDir, subset, cfg.seed, &source),
                                nullptr};
    if (reference) {
      tools::Trainer trainer(cfg, nullptr, data);
      tools::DistributedResult r;
      r.train = trainer.run();
      print(r, source);
      return 0;
    }
    distributed::MpiCommunicator comm;
    const auto r = tools::train_distributed(comm, cfg, data, dopt);  // aborts the job on any rank's error
    if (comm.rank() == 0) print(r, source);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lockstep_dist_check: %s\n", e.what());
    return 1;
  }
}
