// A small persistent thread pool: T-1 workers plus the calling thread. One job at a time
// (a job is a set of T tasks); callers serialise on a mutex.
//
// Hand-off: a job is published by bumping an atomic generation counter. An idle worker
// spins on that counter (pause hints, then yielding the core) for up to kSpin before it sleeps on a condition
// variable, and the caller likewise spins on the pending count before it sleeps, so
// back-to-back kernels do not pay a futex wake-up each (tens of microseconds on a loaded
// VM). Sleeping is race-free by the usual pattern: a sleeper registers itself (seq_cst)
// and re-checks the counter under the mutex; a publisher bumps the counter (seq_cst) and
// takes the mutex to notify only when it sees a registered sleeper. None of this touches
// which task does what, so results do not depend on it.
#include "base/parallel.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "base/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define LS_CPU_RELAX() _mm_pause()
#else
#define LS_CPU_RELAX() ((void)0)
#endif

namespace lockstep {
namespace {

thread_local bool t_in_parallel = false;
std::atomic<uint64_t> g_jobs{0};

// How long an idle thread spins before it sleeps.
constexpr auto kSpin = std::chrono::microseconds(100);
// Pause-spins before it starts yielding the core (a few microseconds).
constexpr int kPauses = 256;

// Spins until pred() holds or kSpin has passed; true when pred() held.
template <typename Pred>
bool spin_until(Pred pred) {
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0;; ++i) {
    if (pred()) return true;
    if (i < kPauses) {
      LS_CPU_RELAX();
    } else {
      std::this_thread::yield();  // let a runnable thread (maybe the one we wait for) in
      if (std::chrono::steady_clock::now() - t0 > kSpin) return pred();
    }
  }
}

class Pool {
 public:
  explicit Pool(int nthreads) : nthreads_(nthreads) {
    for (int w = 1; w < nthreads_; ++w) workers_.emplace_back([this, w] { worker_loop(w); });
  }
  ~Pool() {
    stop_.store(true);
    job_word_.fetch_add(kSeqOne);
    {
      std::lock_guard<std::mutex> lk(mu_);
    }
    cv_start_.notify_all();
    for (auto& t : workers_) t.join();
  }
  int size() const { return nthreads_; }

  // Runs fn(t) for t in [0, ntasks); task 0 on the caller, task t on worker t.
  void run(int ntasks, const std::function<void(int)>& fn) {
    std::lock_guard<std::mutex> job_lock(job_mu_);
    job_ = &fn;
    error_ = nullptr;
    pending_.store(ntasks - 1);
    // One store publishes job_, pending_ and, in the same word, the task count: a worker
    // reads the count of the job it woke for, never of a later one (a late worker that
    // read the count separately could run a task of the next job and then run it again).
    const uint64_t seq = (job_word_.load(std::memory_order_relaxed) | kTaskMask) + 1;
    // seq_cst, not release: this store and the load of sleepers_ below pair with the worker's
    // sleepers_ increment and its load of job_word_ (a Dekker pattern). With a release store
    // x86 may let the load pass the store; then the caller sees no sleeper while the worker
    // sees no new job, nobody wakes the worker, and both wait forever (seen: a hang in
    // batchnorm_forward's parallel_for, 2026-12-03).
    job_word_.store(seq | static_cast<uint64_t>(ntasks), std::memory_order_seq_cst);
    if (sleepers_.load() > 0) {
      std::lock_guard<std::mutex> lk(mu_);
      cv_start_.notify_all();
    }
    run_task(0, fn);
    if (!spin_until([this] { return pending_.load(std::memory_order_acquire) == 0; })) {
      std::unique_lock<std::mutex> lk(mu_);
      caller_waiting_.store(true);
      cv_done_.wait(lk, [this] { return pending_.load() == 0; });
      caller_waiting_.store(false);
    }
    job_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void run_task(int t, const std::function<void(int)>& fn) {
    t_in_parallel = true;
    try {
      fn(t);
    } catch (...) {
      std::lock_guard<std::mutex> lk(err_mu_);
      if (!error_) error_ = std::current_exception();
    }
    t_in_parallel = false;
  }

  void worker_loop(int w) {
    uint64_t seen = 0;
    for (;;) {
      auto fresh = [&] { return job_word_.load(std::memory_order_acquire) != seen; };
      if (!spin_until(fresh)) {
        std::unique_lock<std::mutex> lk(mu_);
        sleepers_.fetch_add(1);
        cv_start_.wait(lk, [&] { return job_word_.load() != seen; });
        sleepers_.fetch_sub(1);
      }
      seen = job_word_.load(std::memory_order_acquire);
      if (stop_.load()) return;
      // The job cannot finish, nor job_ change, before this worker's task is done.
      if (w >= static_cast<int>(seen & kTaskMask)) continue;
      run_task(w, *job_);
      // seq_cst for the same reason, paired with caller_waiting_ and the caller's load of pending_.
      if (pending_.fetch_sub(1, std::memory_order_seq_cst) == 1 && caller_waiting_.load()) {
        std::lock_guard<std::mutex> lk(mu_);
        cv_done_.notify_one();
      }
    }
  }

  int nthreads_;
  std::vector<std::thread> workers_;
  std::mutex job_mu_;  // one job at a time
  std::mutex mu_;      // sleeping and waking only
  std::mutex err_mu_;
  std::condition_variable cv_start_, cv_done_;
  const std::function<void(int)>* job_ = nullptr;
  std::atomic<int> pending_{0};
  // (job sequence number << kTaskBits) | task count of that job; changes once per job.
  static constexpr int kTaskBits = 16;
  static constexpr uint64_t kTaskMask = (uint64_t{1} << kTaskBits) - 1, kSeqOne = kTaskMask + 1;
  std::atomic<uint64_t> job_word_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> caller_waiting_{false};
  std::atomic<bool> stop_{false};
  std::exception_ptr error_;
};

int default_threads() {
  if (const char* env = std::getenv("LOCKSTEP_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n >= 1) return std::min(n, kMaxThreads);
  }
  unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : static_cast<int>(std::min<unsigned>(hc, kMaxThreads));
}

std::mutex g_pool_mu;
std::shared_ptr<Pool> g_pool;
int g_threads = 0;

std::shared_ptr<Pool> pool() {
  std::lock_guard<std::mutex> lk(g_pool_mu);
  if (g_threads == 0) g_threads = default_threads();
  if (!g_pool || g_pool->size() != g_threads) g_pool = std::make_shared<Pool>(g_threads);
  return g_pool;
}

}  // namespace

int num_threads() {
  std::lock_guard<std::mutex> lk(g_pool_mu);
  if (g_threads == 0) g_threads = default_threads();
  return g_threads;
}

void set_num_threads(int n) {
  LS_CHECK_ARG(n >= 1 && n <= kMaxThreads, "set_num_threads", "expected a thread count in [1, ", kMaxThreads,
               "], got ", n);
  std::lock_guard<std::mutex> lk(g_pool_mu);
  g_threads = n;
}

void parallel_run(int ntasks, const std::function<void(int)>& fn) {
  if (ntasks <= 1 || t_in_parallel) {
    for (int t = 0; t < std::max(ntasks, 1); ++t) fn(t);
    return;
  }
  auto p = pool();
  LS_CHECK_ARG(ntasks <= p->size(), "parallel_run", "expected at most ", p->size(),
               " tasks, got ", ntasks);
  g_jobs.fetch_add(1, std::memory_order_relaxed);
  p->run(ntasks, fn);
}

uint64_t parallel_jobs() { return g_jobs.load(std::memory_order_relaxed); }

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  int64_t T = std::min<int64_t>(num_threads(), (n + grain - 1) / grain);
  if (T <= 1 || t_in_parallel) {
    fn(0, n);
    return;
  }
  parallel_run(static_cast<int>(T), [&](int t) {
    int64_t b = t * n / T, e = (t + 1) * n / T;
    if (b < e) fn(b, e);
  });
}

}  // namespace lockstep
