#include "distributed/local_group.h"

#include <condition_variable>
#include <cstring>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "base/error.h"
#include "base/parallel.h"

namespace lockstep::distributed {
namespace {

// What the ranks share: one slot per rank and a generation-counting barrier.
struct Shared {
  explicit Shared(int w) : world(w), slots(static_cast<size_t>(w)) {}
  int world;
  std::mutex mu;
  std::condition_variable cv;
  int arrived = 0;
  uint64_t generation = 0;
  bool aborted = false;
  int first_failed = -1;  // the rank whose failure or abort() stopped the group
  std::string abort_message;
  std::vector<std::vector<char>> slots;
};

class LocalCommunicator : public Communicator {
 public:
  LocalCommunicator(Shared& s, int rank) : s_(s), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return s_.world; }
  std::string backend() const override { return "local"; }

  void broadcast(void* data, size_t bytes, int root) override {
    LS_CHECK_ARG(root >= 0 && root < s_.world, "broadcast", "root ", root, " is outside a world of ", s_.world);
    if (rank_ == root) put(data, bytes);
    barrier();
    if (rank_ != root) std::memcpy(data, s_.slots[static_cast<size_t>(root)].data(), bytes);
    count(bytes);
    barrier();  // the root's slot may be reused only after everyone has read it
  }

  void all_gather(const void* send, size_t bytes, void* recv) override {
    put(send, bytes);
    barrier();
    for (int r = 0; r < s_.world; ++r) {
      const auto& slot = s_.slots[static_cast<size_t>(r)];
      if (slot.size() != bytes)
        throw std::runtime_error("[dist] rank " + std::to_string(rank_) + ": all_gather of " + std::to_string(bytes) +
                                 " bytes, rank " + std::to_string(r) + " sent " + std::to_string(slot.size()));
      if (bytes > 0) std::memcpy(static_cast<char*>(recv) + static_cast<size_t>(r) * bytes, slot.data(), bytes);
    }
    count(bytes * static_cast<uint64_t>(s_.world));
    barrier();
  }

  void barrier() override {
    std::unique_lock<std::mutex> lock(s_.mu);
    check_aborted();
    const uint64_t gen = s_.generation;
    if (++s_.arrived == s_.world) {
      s_.arrived = 0;
      ++s_.generation;
      s_.cv.notify_all();
      return;
    }
    s_.cv.wait(lock, [&] { return s_.generation != gen || s_.aborted; });
    check_aborted();
  }

  [[noreturn]] void abort(const std::string& message) override {
    const std::string text = "[dist] rank " + std::to_string(rank_) + " aborted the job: " + message;
    {
      std::lock_guard<std::mutex> lock(s_.mu);
      if (!s_.aborted) s_.aborted = true, s_.abort_message = text, s_.first_failed = rank_;
      s_.cv.notify_all();
    }
    throw std::runtime_error(text);
  }

 private:
  void put(const void* data, size_t bytes) {
    auto& slot = s_.slots[static_cast<size_t>(rank_)];
    slot.assign(static_cast<const char*>(data), static_cast<const char*>(data) + bytes);
  }
  void check_aborted() const {  // under s_.mu
    if (s_.aborted)
      throw std::runtime_error("[dist] rank " + std::to_string(rank_) + " stopped: " + s_.abort_message);
  }
  Shared& s_;
  int rank_;
};

}  // namespace

void run_local_group(int world, const std::function<void(Communicator&)>& fn) {
  LS_CHECK_ARG(world >= 1, "run_local_group", "expected a world size >= 1, got ", world);
  ThreadsGuard one_thread(1);  // the ranks' kernels run inline on their own threads
  Shared shared(world);
  std::vector<LocalCommunicator> comms;
  comms.reserve(static_cast<size_t>(world));
  for (int r = 0; r < world; ++r) comms.emplace_back(shared, r);
  std::vector<std::exception_ptr> errors(static_cast<size_t>(world));
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      LocalCommunicator& c = comms[static_cast<size_t>(r)];
      try {
        fn(c);
      } catch (const std::exception& e) {
        errors[static_cast<size_t>(r)] = std::current_exception();
        std::unique_lock<std::mutex> lock(shared.mu);
        if (!shared.aborted) {
          shared.aborted = true, shared.first_failed = r;
          shared.abort_message = "rank " + std::to_string(r) + " failed: " + e.what();
        }
        shared.cv.notify_all();
      }
    });
  }
  for (auto& t : threads) t.join();
  if (shared.first_failed >= 0 && errors[static_cast<size_t>(shared.first_failed)])
    std::rethrow_exception(errors[static_cast<size_t>(shared.first_failed)]);
  for (int r = 0; r < world; ++r)
    if (errors[static_cast<size_t>(r)]) std::rethrow_exception(errors[static_cast<size_t>(r)]);
}

}  // namespace lockstep::distributed
