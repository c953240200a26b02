// lockstep_dist_check: the data-parallel run of dist/train.h as a program, for the tests
// under mpirun (tests/dist/run_dist_check.sh) and the throughput numbers.
//   lockstep_dist_check reference [flags]   the plain single-process trainer
//   lockstep_dist_check train [flags]       data-parallel over MPI_COMM_WORLD
// flags: --steps N --batch N --subset N --seed N --per-rank-bn --check --checkpoint FILE
//        --every K --resume FILE; LOCKSTEP_DIST_FAIL_RANK / LOCKSTEP_DIST_FAIL_STEP make
//        that rank throw before that step (the failure test). Rank 0 prints
//   hash <weights sha256>, loss <last loss>, world, steps_per_sec, bytes_per_step.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

#include "base/parallel.h"
#include "dist/mpi_communicator.h"
#include "dist/train.h"

using namespace lockstep;

namespace {

void print(const dist::TrainResult& r, int64_t steps_run) {
  std::printf("hash %s\nloss %.9g\nworld %d\ndata %s\n", r.weights_sha256.c_str(),
              r.losses.empty() ? 0.0 : static_cast<double>(r.losses.back()), r.world, r.data.c_str());
  if (steps_run > 0 && r.seconds > 0)
    std::printf("steps_per_sec %.2f\nbytes_per_step %.0f\ngradient_floats %lld\n", steps_run / r.seconds,
                static_cast<double>(r.bytes_moved) / static_cast<double>(steps_run),
                static_cast<long long>(r.gradient_floats));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || (std::strcmp(argv[1], "reference") != 0 && std::strcmp(argv[1], "train") != 0)) {
    std::fprintf(stderr, "usage: %s reference|train [--steps N --batch N --subset N --seed N --per-rank-bn --check "
                         "--checkpoint FILE --every K --resume FILE]\n", argv[0]);
    return 2;
  }
  const bool reference = std::strcmp(argv[1], "reference") == 0;
  dist::TrainConfig cfg;
  cfg.steps = 12, cfg.batch_size = 128, cfg.subset = 1000;  // 7 x 128 + 104: a short last batch
  try {
    for (int i = 2; i < argc; ++i) {
      const std::string a = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc) throw std::invalid_argument("flag " + a + " needs a value");
        return argv[++i];
      };
      if (a == "--steps") cfg.steps = std::stoll(value());
      else if (a == "--batch") cfg.batch_size = std::stoll(value());
      else if (a == "--subset") cfg.subset = std::stoll(value());
      else if (a == "--seed") cfg.seed = std::stoull(value());
      else if (a == "--per-rank-bn") cfg.sync_batchnorm = false;
      else if (a == "--check") cfg.check_replicas = true;
      else if (a == "--checkpoint") cfg.checkpoint_path = value();
      else if (a == "--every") cfg.checkpoint_every = std::stoll(value());
      else if (a == "--resume") cfg.resume_path = value();
      else throw std::invalid_argument("unknown flag " + a);
    }
    if (const char* r = std::getenv("LOCKSTEP_DIST_FAIL_RANK")) cfg.fail_rank = std::atoi(r);
    if (const char* s = std::getenv("LOCKSTEP_DIST_FAIL_STEP")) cfg.fail_step = std::atoll(s);
    if (reference) {
      const auto r = dist::train_reference(cfg);
      print(r, static_cast<int64_t>(r.losses.size()));
      return 0;
    }
    dist::MpiCommunicator comm;
    const auto r = dist::train_data_parallel(comm, cfg);  // aborts the job on any rank's error
    if (comm.rank() == 0) print(r, static_cast<int64_t>(r.losses.size()));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lockstep_dist_check: %s\n", e.what());
    return 1;
  }
}
