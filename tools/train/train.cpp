// `lockstep train`: trains the Fashion-MNIST MLP (tools/train/trainer.h) and prints per-epoch
// loss, test accuracy and the weights' SHA-256; --json ends stdout with one JSON object.
// Same flags and seed in deterministic mode => same weights_sha256 for any --threads and
// --workers, and for a run resumed from any --save point. With --distributed under
// `mpirun -np K` each process is a rank (tools/train/distributed.h): the same weights_sha256
// for any K; rank 0 alone prints and writes checkpoints.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "commands.h"
#include "base/error.h"
#include "base/parallel.h"
#include "base/mode.h"
#include "base/simd.h"
#include "core/autograd.h"
#include "nn/sync_batchnorm.h"
#include "serialize/safetensors.h"
#include "train/distributed.h"
#include "train/op_trace.h"
#include "train/trace.h"
#include "train/trainer.h"
#if defined(LOCKSTEP_HAS_MPI)
#include "distributed/mpi_communicator.h"
#endif

namespace lockstep_cli {
namespace {

using namespace lockstep;
using lockstep::tools::TrainConfig;

// Peak resident set of this process's own address space since exec, in MiB: VmHWM from
// /proc/self/status. Not getrusage's ru_maxrss: Linux carries the parent's high-water mark
// into it across a vfork + exec (Python's subprocess, for one), so a process started from
// a 500 MB PyTorch script reports at least 500 MB there. -1 where /proc is missing.
double peak_rss_mib() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  long kib = -1;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "VmHWM: %ld kB", &kib) == 1) break;
  std::fclose(f);
  return kib < 0 ? -1 : kib / 1024.0;
}

struct TrainFlags {
  TrainConfig cfg;
  bool json = false;
  std::string trace, export_init, export_order;
  bool trace_values = false;
  std::string mode = "deterministic", device = "cpu";
  int64_t debug_nudge_step = 0;  // hidden: nudge 0.weight[0] by one ulp after this step
  bool distributed = false;      // data-parallel over the MPI world
  bool check_replicas = false;   // --debug-check-replicas (with --distributed)
  std::string trace_ops, perturb_op;  // --trace-ops FILE; hidden --debug-perturb-op OP (train/op_trace.h)
  bool trace_ops_values = false;
  int64_t trace_ops_steps = 0;  // --trace-ops-steps: record only this run's first N steps (0: all)
  double dist_timeout = 300.0;   // --dist-timeout: seconds a collective may wait (0: forever)
};

// Flags that --distributed cannot honour, refused before MPI starts.
void check_distributed_flags(const TrainFlags& f) {
  if (!f.distributed) {
    if (f.check_replicas) throw std::invalid_argument("[train] --debug-check-replicas: expected --distributed as well");
    return;
  }
  if (!(f.dist_timeout >= 0))
    throw std::invalid_argument("[train] --dist-timeout: expected seconds >= 0 (0: no timeout), got " +
                                std::to_string(f.dist_timeout));
  if (f.cfg.device != Device::cpu)
    throw std::invalid_argument("[train] --distributed: expected --device cpu (the data-parallel step runs on the "
                                "CPU only), got cuda");
  if (f.cfg.mode != Mode::deterministic)
    throw std::invalid_argument("[train] --distributed: expected --mode deterministic (the data-parallel step "
                                "reproduces the single-process batch order, which fast mode does not keep), got fast");
  if (!f.trace_ops.empty()) throw std::invalid_argument("[train] --distributed: --trace-ops is not supported; trace "
                                                        "the same flags without --distributed, the weights are the same");
}

// The MPI world this process belongs to (a world of 1 outside mpirun), or an error saying
// this build has no MPI.
std::unique_ptr<distributed::Communicator> open_mpi_world(double timeout_s) {
#if defined(LOCKSTEP_HAS_MPI)
  auto comm = std::make_unique<distributed::MpiCommunicator>();
  comm->set_timeout(timeout_s);
  return comm;
#else
  (void)timeout_s;
  throw std::runtime_error(
      "[train] --distributed: this lockstep was built without MPI (CMake found no MPI when it was configured); "
      "install OpenMPI (libopenmpi-dev) and rebuild, or train without --distributed");
#endif
}

// A failure planted for the tests: LOCKSTEP_DIST_FAIL_RANK=r LOCKSTEP_DIST_FAIL_STEP=s
// makes rank r throw before step s.
int env_int(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::atoi(v) : -1;
}

// A one-line progress bar, redrawn in place (terminals only).
void draw_progress(int64_t step, int64_t planned, float loss) {
  const int width = 30;
  const int64_t done = planned > 0 ? std::min<int64_t>(width, step * width / planned) : width;
  std::printf("\r[%s%s] step %lld/%lld loss %.4f", std::string(static_cast<size_t>(done), '#').c_str(),
              std::string(static_cast<size_t>(width - done), ' ').c_str(), static_cast<long long>(step),
              static_cast<long long>(planned), static_cast<double>(loss));
  std::fflush(stdout);
}

// comm: the MPI world with --distributed, else null. Ranks other than 0 print nothing (their
// stdout goes to /dev/null; errors still reach stderr) and write no files.
int run_train(const TrainFlags& f, distributed::Communicator* comm) {
  const bool rank0 = !comm || comm->rank() == 0;
  TrainConfig cfg = f.cfg;
  if (!rank0) {
    cfg.save_dir.clear(), cfg.save_every = 0;
    if (!std::freopen("/dev/null", "w", stdout)) throw std::runtime_error("[train] cannot silence stdout of this rank");
  }
  tools::validate(cfg);  // before the process-wide settings take the values
  set_mode(cfg.mode);
  if (cfg.threads > 0) set_num_threads(cfg.threads);
  auto sync = comm ? std::make_shared<nn::BatchSync>() : nullptr;
  tools::Trainer trainer(cfg, sync);
  std::unique_ptr<tools::DistributedTraining> dt;
  if (comm)
    dt = std::make_unique<tools::DistributedTraining>(*comm, trainer, sync, env_int("LOCKSTEP_DIST_FAIL_RANK"),
                                                      env_int("LOCKSTEP_DIST_FAIL_STEP"));
  // No progress bar under mpirun: a rank's stdout is mpirun's pseudo-terminal, not the user's.
  const bool tty = !comm && ::isatty(STDOUT_FILENO) == 1;
  const TrainConfig& c = f.cfg;
  const std::string world = comm ? str_cat(", world ", comm->size(), " (", comm->backend(), ")") : "";
  std::printf("lockstep train: %s mode%s, %d threads (%s kernels), %d workers, seed %llu, %lld batches/epoch, %lld planned steps%s%s\n",
              mode_name(c.mode), c.device == Device::cuda ? " on cuda" : "", num_threads(), simd_level_name(simd_level()),
              c.workers, static_cast<unsigned long long>(c.seed),
              static_cast<long long>(trainer.batches_per_epoch()), static_cast<long long>(trainer.planned_steps()),
              world.c_str(),
              trainer.global_step() > 0 ? (" (resumed at step " + std::to_string(trainer.global_step()) + ")").c_str()
                                        : "");

  if (!f.export_init.empty() && rank0) serialize::save_state_dict(f.export_init, trainer.module().state_dict());

  // Under --distributed rank 0 alone writes the trace (and the order): it makes whole batches
  // and every rank gathers the layer outputs, so the trace equals one process's.
  std::unique_ptr<tools::TraceWriter> trace;
  if (!f.trace.empty() && rank0) trace = std::make_unique<tools::TraceWriter>(f.trace, f.trace_values);
  std::vector<int64_t> order, batch_sizes;
  const bool want_order = !f.export_order.empty() && rank0;
  std::unique_ptr<tools::OpTracer> op_trace;
  if (!f.trace_ops.empty() || !f.perturb_op.empty())
    op_trace = std::make_unique<tools::OpTracer>(
        tools::OpTracer::Options{f.trace_ops, f.trace_ops_values, false, f.perturb_op, f.trace_ops_steps});
  tools::OpTracer::Install op_trace_on(op_trace.get());  // null: no observer, the default
  if (dt && (trace || want_order)) dt->whole_batches();
  if (dt && !f.trace.empty()) dt->gather_outputs();
  if (trace || want_order || f.debug_nudge_step > 0 || f.check_replicas || op_trace)
    trainer.set_observer(
        [&](const tools::StepRecord& r) {
          if (r.step == f.debug_nudge_step) {  // a planted one-ulp difference, for testing diff
            NoGradGuard no_grad;                // not an op of the step (nor of an op trace)
            Tensor w = trainer.model().state_dict().at("0.weight");
            Tensor h = w.to(Device::cpu).clone();  // edited on the host, whatever the model's device
            float* p = h.data<float>();
            p[0] = std::nextafter(p[0], INFINITY);
            w.copy_(h.to(w.device()));
          }
          if (dt && f.check_replicas) dt->check_replicas();  // every rank holds rank 0's bits
          if (trace) trace->write(r);
          if (op_trace) op_trace->end_step(r.step);
          if (want_order) {
            const auto idx = r.batch_data->indices.to_vector<int64_t>();  // the first N rows: file indices
            order.insert(order.end(), idx.begin(), idx.end());
            batch_sizes.push_back(static_cast<int64_t>(idx.size()));
          }
        },
        trace != nullptr);
  if (tty) trainer.set_progress(draw_progress);
  trainer.set_epoch_observer([&](const tools::EpochRecord& e) {
    if (tty) std::printf("\r%60s\r", "");
    if (trainer.gpt())
      std::printf("epoch %lld/%lld  steps %lld  train_loss %.6f  val_loss %.6f\n", static_cast<long long>(e.epoch + 1),
                  static_cast<long long>(c.epochs), static_cast<long long>(e.steps), e.train_loss, e.val_loss);
    else
      std::printf("epoch %lld/%lld  steps %lld  train_loss %.6f  test_accuracy %.4f\n",
                  static_cast<long long>(e.epoch + 1), static_cast<long long>(c.epochs),
                  static_cast<long long>(e.steps), e.train_loss, e.test_accuracy);
    std::fflush(stdout);
  });

  const tools::TrainResult r = trainer.run();
  if (tty) std::printf("\r%60s\r", "");

  if (want_order)
    serialize::save_safetensors(
        f.export_order,
        {{"indices", Tensor::from_vector(order, {static_cast<int64_t>(order.size())})},
         {"batch_sizes", Tensor::from_vector(batch_sizes, {static_cast<int64_t>(batch_sizes.size())})}});

  if (trainer.gpt())
    std::printf("done: steps %lld  epoch %lld  train_loss %.6f  val_loss %.6f  %.1f tokens/s\n",
                static_cast<long long>(r.steps), static_cast<long long>(r.epoch + 1), r.train_loss, r.val_loss,
                r.samples_per_sec * static_cast<double>(c.context));
  else
    std::printf("done: steps %lld  epoch %lld  train_loss %.6f  test_accuracy %.4f  %.1f samples/s\n",
                static_cast<long long>(r.steps), static_cast<long long>(r.epoch + 1), r.train_loss, r.test_accuracy,
                r.samples_per_sec);
  std::printf("weights_sha256 %s\n", r.weights_sha256.c_str());
  if (!r.last_checkpoint.empty()) std::printf("checkpoint %s\n", r.last_checkpoint.c_str());
  if (f.json) {
    nlohmann::ordered_json j;
    j["steps"] = r.steps;
    j["epoch"] = r.epoch + 1;  // 1-based, as the human lines print it
    j["train_loss"] = r.train_loss;
    j["last_loss"] = r.last_loss;
    j["test_accuracy"] = r.test_accuracy;
    if (trainer.gpt()) {
      j["val_loss"] = r.val_loss;
      j["vocab_size"] = trainer.vocab().size();
      j["tokens_per_sec"] = r.samples_per_sec * static_cast<double>(c.context);
      nlohmann::ordered_json curve = nlohmann::ordered_json::array();
      for (float l : r.losses) curve.push_back(static_cast<double>(l));
      j["losses"] = curve;  // every step's loss of this run (the training curve)
    }
    j["weights_sha256"] = r.weights_sha256;
    j["samples_per_sec"] = r.samples_per_sec;
    j["train_seconds"] = r.train_seconds;
    j["samples"] = r.samples;
    j["steps_this_run"] = r.steps_this_run;
    j["resumed_from"] = r.resumed_from ? nlohmann::ordered_json(*r.resumed_from) : nlohmann::ordered_json(nullptr);
    j["model"] = c.model;
    j["mode"] = mode_name(c.mode);
    j["device"] = device_name(c.device);
    j["threads"] = num_threads();
    j["simd"] = simd_level_name(simd_level());  // the CPU kernels' level; never changes deterministic bits
    j["workers"] = c.workers;
    j["seed"] = c.seed;
    j["checkpoint"] = r.last_checkpoint;
    j["peak_rss_mib"] = std::round(peak_rss_mib() * 10) / 10;
    if (comm) j["world"] = comm->size();
    std::printf("%s\n", j.dump().c_str());
  }
  return 0;
}

}  // namespace

void add_train(CLI::App& app, int* rc) {
  auto f = std::make_shared<TrainFlags>();
  TrainConfig& c = f->cfg;
  CLI::App* sub = app.add_subcommand("train", "train the Fashion-MNIST MLP or a char-level GPT; same flags and seed => "
                                     "same weights");
  sub->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);  // a repeated flag: the last wins
  sub->add_option("--epochs", c.epochs, "epochs planned (sets the cosine schedule's length)")->capture_default_str();
  sub->add_option("--max-steps", c.max_steps, "stop at this global step, counted from the start (0: none)");
  sub->add_option("--seed", c.seed, "seed of init, dropout, shuffling and augmentation")->capture_default_str();
  sub->add_option("--threads", c.threads, "CPU threads (0: LOCKSTEP_NUM_THREADS or the core count)");
  sub->add_option("--workers", c.workers, "data-loader worker threads")->capture_default_str();
  sub->add_option("--mode", f->mode, "deterministic or fast")
      ->check(CLI::IsMember({"deterministic", "fast"}))
      ->capture_default_str();
  sub->add_option("--device", f->device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}))->capture_default_str();
  sub->add_option("--batch-size", c.batch_size, "training batch size")->capture_default_str();
  sub->add_option("--lr", c.lr, "peak learning rate")->capture_default_str();
  sub->add_option("--weight-decay", c.weight_decay, "weight decay")->capture_default_str();
  sub->add_option("--optimizer", c.optimizer, "sgd, adam or adamw")->capture_default_str();
  sub->add_option("--momentum", c.momentum, "SGD momentum")->capture_default_str();
  sub->add_option("--dropout", c.dropout, "dropout probability")->capture_default_str();
  sub->add_option("--hidden", c.hidden, "hidden sizes, comma separated")->delimiter(',')
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->capture_default_str();
  sub->add_option("--model", c.model, "mlp, cnn, lenet5 or gpt")->capture_default_str();
  sub->add_option("--text", c.text, "--model gpt: UTF-8 text file (or directory of files)")->capture_default_str();
  sub->add_option("--context", c.context, "--model gpt: context length T")->capture_default_str();
  sub->add_option("--layers", c.n_layer, "--model gpt: transformer blocks")->capture_default_str();
  sub->add_option("--heads", c.n_head, "--model gpt: attention heads")->capture_default_str();
  sub->add_option("--width", c.n_embd, "--model gpt: embedding width C")->capture_default_str();
  sub->add_option("--warmup", c.warmup, "linear warm-up steps before the cosine (gpt default 10)");
  sub->add_option("--clip", c.clip, "clip the gradient norm to this (0: off; gpt default 1)");
  sub->add_option("--val-fraction", c.val_fraction, "--model gpt: the text's last share held out")
      ->capture_default_str();
  sub->add_option("--channels", c.channels, "--model cnn: conv channels, comma separated")->delimiter(',')
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->capture_default_str();
  sub->add_flag("--augment", c.augment, "random crop (pad 2) and horizontal flip");
  sub->add_option("--data", c.data_dir, "directory with the Fashion-MNIST IDX files")->capture_default_str();
  sub->add_option("--subset", c.subset, "train on the first N training images (0: all)");
  sub->add_option("--test-subset", c.test_subset, "test on the first N test images (0: all)");
  sub->add_option("--save", c.save_dir, "write rotating checkpoints to DIR");
  sub->add_option("--save-every", c.save_every, "checkpoint every N steps (and always at the end)");
  sub->add_option("--keep", c.keep_last, "checkpoints kept by the rotation (0: all)")->capture_default_str();
  sub->add_option("--resume", c.resume_dir, "resume from the latest checkpoint in DIR");
  sub->add_option("--trace", f->trace, "write a JSON Lines trace of every step to FILE");
  sub->add_flag("--trace-values", f->trace_values, "with --trace: also store every traced tensor's values");
  sub->add_option("--trace-ops", f->trace_ops, "write every autograd op of every step (digests) to FILE");
  sub->add_flag("--trace-ops-values", f->trace_ops_values, "with --trace-ops: also store every op output's values");
  sub->add_option("--trace-ops-steps", f->trace_ops_steps,
                  "with --trace-ops: record only this run's first N steps (0: all)");
  sub->add_option("--debug-perturb-op", f->perturb_op)->group("");  // hidden: 1 ulp on the first OP's output
  sub->add_option("--export-init", f->export_init, "save the initial weights (safetensors) to FILE");
  sub->add_option("--export-order", f->export_order, "save each step's sample indices (safetensors) to FILE");
  sub->add_flag("--json", f->json, "end stdout with one JSON object");
  sub->add_flag("--fsync,!--no-fsync", c.fsync, "fsync checkpoints (durable; the default)");
  sub->add_flag("--distributed", f->distributed,
                "data-parallel over the MPI world (mpirun -np K); --batch-size is the global batch");
  sub->add_option("--dist-timeout", f->dist_timeout,
                  "with --distributed: end the job when a collective waits longer than SECONDS (0: never)")
      ->capture_default_str();
  sub->add_flag("--debug-check-replicas", f->check_replicas,
                "with --distributed: check after every step that all ranks hold identical weights");
  sub->add_option("--debug-nudge", f->debug_nudge_step)->group("");  // hidden, for the diff tests
  sub->callback([f, rc, sub] {
    if (f->trace_values && f->trace.empty())
      throw std::invalid_argument("[train] --trace-values: expected --trace FILE as well");
    if (f->trace_ops_values && f->trace_ops.empty())
      throw std::invalid_argument("[train] --trace-ops-values: expected --trace-ops FILE as well");
    if (f->trace_ops_steps < 0 || (f->trace_ops_steps > 0 && f->trace_ops.empty()))
      throw std::invalid_argument("[train] --trace-ops-steps: expected an integer >= 0 and --trace-ops FILE as well, "
                                  "got " + std::to_string(f->trace_ops_steps));
    if (f->cfg.model == "gpt") {
      std::vector<std::string> given;
      for (const char* flag : {"--batch-size", "--lr", "--weight-decay", "--epochs", "--warmup", "--clip", "--dropout"})
        if (sub->get_option(flag)->count() > 0) given.push_back(flag);
      tools::apply_gpt_defaults(f->cfg, given);
    }
    f->cfg.mode = f->mode == "fast" ? Mode::fast : Mode::deterministic;
    f->cfg.device = f->device == "cuda" ? Device::cuda : Device::cpu;
    check_distributed_flags(*f);
    if (!f->distributed) {
      *rc = run_train(*f, nullptr);
      return;
    }
    std::unique_ptr<distributed::Communicator> comm = open_mpi_world(f->dist_timeout);
    try {
      *rc = run_train(*f, comm.get());
    } catch (const std::exception& e) {
      comm->abort(e.what());  // "[dist] rank R aborted the job: ..."; every rank ends, non-zero
    }
  });
}

}  // namespace lockstep_cli
