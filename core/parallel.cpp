// A small persistent thread pool: T-1 workers plus the calling thread. One job at a time
// (a job is a set of T tasks); callers serialise on a mutex.
#include "core/parallel.h"

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/error.h"

namespace lockstep {
namespace {

thread_local bool t_in_parallel = false;

class Pool {
 public:
  explicit Pool(int nthreads) : nthreads_(nthreads) {
    for (int w = 1; w < nthreads_; ++w) workers_.emplace_back([this, w] { worker_loop(w); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    cv_start_.notify_all();
    for (auto& t : workers_) t.join();
  }
  int size() const { return nthreads_; }

  // Runs fn(t) for t in [0, ntasks); task 0 on the caller, task t on worker t.
  void run(int ntasks, const std::function<void(int)>& fn) {
    std::lock_guard<std::mutex> job_lock(job_mu_);
    {
      std::lock_guard<std::mutex> lk(mu_);
      job_ = &fn;
      ntasks_ = ntasks;
      pending_ = ntasks - 1;
      error_ = nullptr;
      ++generation_;
    }
    cv_start_.notify_all();
    run_task(0, fn);
    std::unique_lock<std::mutex> lk(mu_);
    cv_done_.wait(lk, [this] { return pending_ == 0; });
    job_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void run_task(int t, const std::function<void(int)>& fn) {
    t_in_parallel = true;
    try {
      fn(t);
    } catch (...) {
      std::lock_guard<std::mutex> lk(mu_);
      if (!error_) error_ = std::current_exception();
    }
    t_in_parallel = false;
  }

  void worker_loop(int w) {
    uint64_t seen = 0;
    for (;;) {
      const std::function<void(int)>* job;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_start_.wait(lk, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
        if (w >= ntasks_) continue;
        job = job_;
      }
      run_task(w, *job);
      std::lock_guard<std::mutex> lk(mu_);
      if (--pending_ == 0) cv_done_.notify_one();
    }
  }

  int nthreads_;
  std::vector<std::thread> workers_;
  std::mutex job_mu_;  // one job at a time
  std::mutex mu_;
  std::condition_variable cv_start_, cv_done_;
  const std::function<void(int)>* job_ = nullptr;
  int ntasks_ = 0;
  int pending_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
};

int default_threads() {
  if (const char* env = std::getenv("LOCKSTEP_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n >= 1) return n;
  }
  unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : static_cast<int>(hc);
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
  LS_CHECK_ARG(n >= 1, "set_num_threads", "expected a thread count >= 1, got ", n);
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
  p->run(ntasks, fn);
}

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
