#include "broken.h"

#include <atomic>
#include <mutex>
#include <thread>

#include "base/philox.h"
#include "core/random.h"

namespace lockstep_cli::lab {

using lockstep::Tensor;

namespace {
std::mutex g_mu;
uint64_t g_seed = 0, g_position = 0;
constexpr uint64_t kGlobalStream = 0x676c6f62616cull;  // "global"
}  // namespace

void manual_seed(uint64_t seed) {
  std::lock_guard<std::mutex> lk(g_mu);
  g_seed = seed;
  g_position = 0;
}

float global_uniform() {
  std::lock_guard<std::mutex> lk(g_mu);
  return lockstep::uniform_f32(g_seed, kGlobalStream, g_position++);
}

void global_fill_uniform(Tensor& t, double lo, double hi) {
  uint64_t seed, start;
  {
    std::lock_guard<std::mutex> lk(g_mu);
    seed = g_seed;
    start = g_position;
    g_position += static_cast<uint64_t>(t.numel());
  }
  lockstep::fill_uniform(t, lo, hi, seed, kGlobalStream, start);
}

Tensor GlobalRngDropout::forward(const Tensor& x) {
  if (!is_training() || p_ == 0.0) return x;
  // keep = (u >= p) with u the next x.numel() values of the global generator.
  Tensor u = Tensor::empty(x.shape());
  global_fill_uniform(u, 0.0, 1.0);
  Tensor keep = lockstep::ge(u, Tensor::full({1}, p_)).to(lockstep::DType::f32);
  return x * keep * (1.0 / (1.0 - p_));
}

float atomic_order_sum(const std::vector<float>& x, int threads, int64_t piece) {
  const int64_t n = static_cast<int64_t>(x.size()), pieces = (n + piece - 1) / piece;
  std::atomic<int64_t> next{0};
  std::atomic<float> total{0.0f};
  auto work = [&] {
    for (int64_t p; (p = next.fetch_add(1)) < pieces;) {
      float s = 0.0f;
      for (int64_t i = p * piece; i < std::min(n, (p + 1) * piece); ++i) s += x[static_cast<size_t>(i)];
      // float atomicAdd: retry until no other thread changed the total in between.
      float old = total.load();
      while (!total.compare_exchange_weak(old, old + s)) {
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  return total.load();
}

}  // namespace lockstep_cli::lab
