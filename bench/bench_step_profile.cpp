// bench_step_profile: where one training step of the default MLP recipe spends its time.
//
// The step of `lockstep train` without the loader (as BM_mlp_train_step): zero_grad, the
// 784-256-128-10 MLP forward in train mode (Linear, BatchNorm, ReLU, Dropout 0.2), the
// cross-entropy, backward, AdamW (lr 1e-3, weight decay 0.05), on a fixed batch. An
// OpObserver (core/autograd.h) takes the clock at every recorded op, forward and backward;
// the time since the previous mark goes to the op just finished (its kernel, allocation and
// the glue before it). Backward marks come after each node's formula: a Linear node is its
// grad-input GEMM, grad-weight GEMM and bias sum together (bench_gemm's op:nn and op:tn
// rows split them). Marks of our own: zero_grad, the end of backward (leaf accumulation),
// the optimizer step. The hand-offs column counts the jobs given to the thread pool
// (parallel_jobs()) per step; "hand-off" is the wall time of one empty 2-task job, back
// to back, measured here, so jobs x that is what hand-offs cost at least.
//
// Prints one markdown table per (batch, threads): mean µs per step over --steps steps
// after 30 warm-up steps, and the share of the step. The heading also gives CPU time per
// step (CLOCK_THREAD_CPUTIME_ID of the main thread, CLOCK_PROCESS_CPUTIME_ID for all), which
// load on the machine does not inflate as it does wall time: with 2 threads, main minus the
// others is the work (and spin-waiting) left on the main thread, the serial part of the step. Not a Google Benchmark binary's table
// (its own main), but built and linked like the others.
// Usage: bench_step_profile [--steps N] [--batches 128,512] [--threads 1,2] [--fast]
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "base/mode.h"
#include "base/parallel.h"
#include "core/autograd.h"
#include "core/random.h"
#include "nn/models.h"
#include "optim/adam.h"

using namespace lockstep;
using Clock = std::chrono::steady_clock;

namespace {

class Profiler : public OpObserver {
 public:
  void start() { last_ = Clock::now(); }
  void mark(const std::string& what) {
    auto now = Clock::now();
    if (!us_.count(what)) order_.push_back(what);
    us_[what] += std::chrono::duration<double, std::micro>(now - last_).count();
    last_ = now;
  }
  void on_op(OpEvent& e) override { mark(str_cat(e.backward ? "bwd " : "fwd ", e.op, " (", e.layer, ")")); }
  const std::vector<std::string>& order() const { return order_; }
  double us(const std::string& what) const { return us_.at(what); }
  void clear() { us_.clear(), order_.clear(); }

 private:
  Clock::time_point last_;
  std::map<std::string, double> us_;
  std::vector<std::string> order_;
};

double cpu_us(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec * 1e-3;
}

// Wall time of one empty job on `threads` threads, back to back (the pool's hand-off).
double handoff_us(int threads) {
  ThreadsGuard tg(threads);
  const int n = 20000;
  for (int i = 0; i < 1000; ++i) parallel_for(threads, 1, [](int64_t, int64_t) {});
  auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) parallel_for(threads, 1, [](int64_t, int64_t) {});
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / n;
}

void profile(int64_t batch, int threads, Mode mode, int steps) {
  ThreadsGuard tg(threads);
  ModeGuard mg(mode);
  auto model = nn::make_mlp(1);
  model->train();
  optim::AdamW opt(model->parameters(), optim::AdamWOptions(1e-3).weight_decay(0.05));
  Tensor x = Tensor::empty({batch, 784});
  fill_uniform(x, 0.0, 1.0, 2, 0);
  std::vector<int64_t> labels(static_cast<size_t>(batch));
  for (int64_t i = 0; i < batch; ++i) labels[i] = (i * 7) % 10;
  Tensor y = Tensor::from_vector(labels, {batch});
  Profiler prof;
  set_op_observer(&prof);
  uint64_t jobs0 = 0;
  Clock::time_point t0;
  double main0 = 0, proc0 = 0;
  for (int s = -30; s < steps; ++s) {
    if (s == 0) {
      prof.clear(), jobs0 = parallel_jobs(), t0 = Clock::now();
      main0 = cpu_us(CLOCK_THREAD_CPUTIME_ID), proc0 = cpu_us(CLOCK_PROCESS_CPUTIME_ID);
    }
    prof.start();
    opt.zero_grad();
    prof.mark("zero_grad");
    Tensor loss = cross_entropy(model->forward(x), y);
    loss.backward();
    prof.mark("bwd: leaf gradients, end of backward");
    opt.step();
    prof.mark("AdamW step");
  }
  double total = std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / steps;
  const double main_cpu = (cpu_us(CLOCK_THREAD_CPUTIME_ID) - main0) / steps;
  const double other_cpu = (cpu_us(CLOCK_PROCESS_CPUTIME_ID) - proc0) / steps - main_cpu;
  set_op_observer(nullptr);
  double jobs = double(parallel_jobs() - jobs0) / steps;
  std::printf("\n### batch %lld, %d thread%s, %s: %.1f µs per step (%.1f k samples/s), %.1f pool jobs per step\n\n",
              static_cast<long long>(batch), threads, threads > 1 ? "s" : "", mode_name(mode), total,
              batch / total * 1e3, jobs);
  std::printf("CPU time per step: main thread %.1f µs, other threads %.1f µs\n\n", main_cpu, other_cpu);
  std::printf("| part of the step | µs per step | share |\n|---|---|---|\n");
  double sum = 0;
  for (const auto& what : prof.order()) {
    double us = prof.us(what) / steps;
    sum += us;
    std::printf("| %s | %.1f | %.1f%% |\n", what.c_str(), us, 100 * us / total);
  }
  std::printf("| (between steps: the loop, loss.item) | %.1f | %.1f%% |\n", total - sum, 100 * (total - sum) / total);
  if (threads > 1) {
    double h = handoff_us(threads);
    std::printf("| of which hand-offs: %.1f jobs x %.2f µs (empty job) | %.1f | %.1f%% |\n", jobs, h, jobs * h,
                100 * jobs * h / total);
  }
}

std::vector<int> parse_list(const char* s) {
  std::vector<int> v;
  for (const char* p = s; *p;) {
    v.push_back(std::atoi(p));
    while (*p && *p != ',') ++p;
    if (*p == ',') ++p;
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  int steps = 300;
  std::vector<int> batches{128, 512}, threads{1, 2};
  Mode mode = Mode::deterministic;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--steps") && i + 1 < argc) steps = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--batches") && i + 1 < argc) batches = parse_list(argv[++i]);
    else if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) threads = parse_list(argv[++i]);
    else if (!std::strcmp(argv[i], "--fast")) mode = Mode::fast;
    else {
      std::fprintf(stderr, "usage: bench_step_profile [--steps N] [--batches 128,512] [--threads 1,2] [--fast]\n");
      return 2;
    }
  }
  if (steps < 1) {
    std::fprintf(stderr, "bench_step_profile: --steps must be >= 1\n");
    return 2;
  }
  for (int b : batches)
    for (int t : threads) profile(b, t, mode, steps);
  return 0;
}
