// The CPU thread pool. Work is partitioned statically: task t of T always gets the same
// range of the same work, so a deterministic kernel that splits over *outputs* gives the
// same bits for any thread count. Kernels never split a floating-point reduction here.
#pragma once
#include <cstdint>
#include <functional>

namespace lockstep {

inline constexpr int kMaxThreads = 65535;
int num_threads();             // threads used by kernels (default: LOCKSTEP_NUM_THREADS or cores)
void set_num_threads(int n);   // 1 <= n <= kMaxThreads; throws std::invalid_argument otherwise

// Splits [0, n) into T = min(num_threads(), ceil(n / grain)) contiguous ranges,
// range t = [t*n/T, (t+1)*n/T), and runs fn(begin, end) for each, concurrently; the
// caller runs range 0. Returns when all are done; rethrows the first exception.
// Called from inside a parallel region it runs serially on the calling thread.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

// Runs fn(t) for t in [0, ntasks) concurrently, one task per thread; ntasks <= num_threads().
void parallel_run(int ntasks, const std::function<void(int)>& fn);

// Jobs handed to the pool's workers so far in this process (parallel_run / parallel_for
// calls that ran on more than one thread): a count for profiles, relaxed, never reset.
uint64_t parallel_jobs();

// Sets the thread count for a scope and restores it on exit.
class ThreadsGuard {
 public:
  explicit ThreadsGuard(int n) : saved_(num_threads()) { set_num_threads(n); }
  ~ThreadsGuard() { set_num_threads(saved_); }
  ThreadsGuard(const ThreadsGuard&) = delete;
  ThreadsGuard& operator=(const ThreadsGuard&) = delete;

 private:
  int saved_;
};

}  // namespace lockstep
