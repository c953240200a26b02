// The CUDA emulation's runtime (include/cuda_runtime.h says what it provides).
//
// Execution: launches are queued on their stream and run, in order, at the next
// synchronisation (cudaStreamSynchronize, cudaEventSynchronize, a synchronous copy, cudaFree).
// A grid runs one block at a time, the blocks in a seeded random order. A block's threads are
// fibers on one stack each (a small x86-64 context switch; ucontext elsewhere). The scheduler
// runs every runnable thread once per round, in a seeded random order, each until it reaches a
// barrier or returns:
//   __syncthreads   releases when every thread of the block that has not returned waits at
//                   the same __syncthreads (the same file:line); threads waiting at different
//                   ones, or a barrier some threads have returned from, is an error;
//   __shfl_*_sync   releases when every lane of the warp named in the mask waits at the same
//                   shuffle; a lane in the mask that has returned is an error;
//   no thread runnable and nothing to release: deadlock, an error naming who waits where.
// Errors are thrown as std::runtime_error("[cuda-emu] ...") from the synchronising call.
// One emulated thread runs at a time in the whole process (a mutex).
#include <cuda_runtime.h>
#include <cublas_v2.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#if !defined(__x86_64__) || defined(LOCKSTEP_EMU_UCONTEXT)
#define LS_EMU_UCONTEXT 1
#include <ucontext.h>
#endif

namespace lockstep_emu {

Builtins g_builtins;

namespace {

// ---- fibers ----------------------------------------------------------------------------
constexpr size_t kStackBytes = size_t(256) << 10;  // virtual; pages are touched only as used
constexpr size_t kGuardBytes = 4096;

#ifndef LS_EMU_UCONTEXT
// ls_emu_switch(save, to): saves the callee-saved registers and the stack pointer into
// *save and resumes the context whose stack pointer is `to`.
extern "C" void ls_emu_switch(void** save, void* to);
extern "C" void ls_emu_trampoline();
asm(R"(
.text
.globl ls_emu_switch
.type ls_emu_switch,@function
ls_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
.size ls_emu_switch,.-ls_emu_switch
.globl ls_emu_trampoline
.type ls_emu_trampoline,@function
ls_emu_trampoline:
  callq *%r13
  ud2
.size ls_emu_trampoline,.-ls_emu_trampoline
)");
#endif

struct Fiber {
  char* stack = nullptr;  // kGuardBytes of PROT_NONE, then the stack
#ifdef LS_EMU_UCONTEXT
  ucontext_t ctx;
#else
  void* sp = nullptr;
#endif
};

enum class State { runnable, block_barrier, warp_barrier, done };

struct Thread {
  State state = State::runnable;
  uint3 idx{0, 0, 0};
  const char* file = nullptr;  // where it waits
  int line = 0;
  unsigned mask = 0;       // warp barrier: the shuffle's mask
  uint64_t bits = 0;       // warp barrier: the value it brings
  int src = -1;            // warp barrier: the lane it reads
  uint64_t result = 0;     // warp barrier: what it got
};

struct Block {
  std::vector<Thread> th;
  std::vector<Fiber>* fibers = nullptr;
  std::vector<unsigned char> dyn_shared;
  const KernelBody* body = nullptr;
  int current = -1;
#ifdef LS_EMU_UCONTEXT
  ucontext_t sched;
#else
  void* sched_sp = nullptr;
#endif
  std::string error;  // an exception thrown by kernel code
};

Block* g_block = nullptr;

void fiber_main() {
  Block* b = g_block;
  try {
    b->body->invoke(b->body->self.get());
  } catch (const std::exception& e) {
    if (b->error.empty()) b->error = e.what();
  }
  Thread& t = b->th[b->current];
  t.state = State::done;
#ifdef LS_EMU_UCONTEXT
  setcontext(&b->sched);
#else
  void* dummy;
  ls_emu_switch(&dummy, b->sched_sp);
#endif
  std::abort();  // never resumed
}

void fiber_init(Fiber& f) {
  if (!f.stack) {
    void* m = mmap(nullptr, kStackBytes + kGuardBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) throw std::runtime_error("[cuda-emu] cannot map a fiber stack");
    mprotect(m, kGuardBytes, PROT_NONE);
    f.stack = static_cast<char*>(m);
  }
#ifdef LS_EMU_UCONTEXT
  getcontext(&f.ctx);
  f.ctx.uc_stack.ss_sp = f.stack + kGuardBytes;
  f.ctx.uc_stack.ss_size = kStackBytes;
  f.ctx.uc_link = nullptr;
  makecontext(&f.ctx, fiber_main, 0);
#else
  // Top of stack T (16-aligned): the trampoline's address at T - 24, so that its call
  // leaves the stack aligned as the ABI wants; below it the six registers ls_emu_switch
  // pops (r13 = the entry point).
  uintptr_t top = reinterpret_cast<uintptr_t>(f.stack + kGuardBytes + kStackBytes) & ~uintptr_t(15);
  void** sp = reinterpret_cast<void**>(top - 24);
  sp[0] = reinterpret_cast<void*>(&ls_emu_trampoline);
  sp -= 6;
  for (int i = 0; i < 6; ++i) sp[i] = nullptr;
  sp[2] = reinterpret_cast<void*>(&fiber_main);  // r13
  f.sp = sp;
#endif
}

// Scheduler <-> current thread.
void resume(Block& b, int i) {
  b.current = i;
  const Thread& t = b.th[i];
  g_builtins.thread_idx = t.idx;
  Fiber& f = (*b.fibers)[i];
#ifdef LS_EMU_UCONTEXT
  swapcontext(&b.sched, &f.ctx);
#else
  ls_emu_switch(&b.sched_sp, f.sp);
#endif
}
void yield_to_scheduler() {
  Block& b = *g_block;
  Fiber& f = (*b.fibers)[b.current];
#ifdef LS_EMU_UCONTEXT
  swapcontext(&f.ctx, &b.sched);
#else
  ls_emu_switch(&f.sp, b.sched_sp);
#endif
}

// ---- schedule seed -----------------------------------------------------------------------
uint64_t g_seed = [] {
  const char* s = std::getenv("LOCKSTEP_EMU_SEED");
  return s && *s ? std::strtoull(s, nullptr, 10) : uint64_t(1);
}();
uint64_t g_launch_count = 0;

struct Rng {  // splitmix64
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  template <typename V>
  void shuffle(V& v) {  // Fisher-Yates
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[next() % i]);
  }
};

// ---- running a grid ----------------------------------------------------------------------
std::map<std::string, long> g_launched;
std::vector<Fiber> g_fibers;

std::string where(const Thread& t) {
  return "thread (" + std::to_string(t.idx.x) + "," + std::to_string(t.idx.y) + "," + std::to_string(t.idx.z) +
         ") at " + (t.file ? std::string(t.file) + ":" + std::to_string(t.line) : std::string("its start"));
}

[[noreturn]] void fail(const std::string& kernel, const uint3& blk, const std::string& what) {
  throw std::runtime_error("[cuda-emu] kernel " + kernel + ", block (" + std::to_string(blk.x) + "," +
                           std::to_string(blk.y) + "," + std::to_string(blk.z) + "): " + what);
}

// Releases the warps whose lanes all wait at one shuffle; returns whether any was released.
bool release_warps(Block& b, const std::string& kernel) {
  bool any = false;
  const int n = static_cast<int>(b.th.size());
  for (int w0 = 0; w0 < n; w0 += 32) {
    const int w1 = std::min(n, w0 + 32);
    int waiting = -1;
    for (int i = w0; i < w1; ++i)
      if (b.th[i].state == State::warp_barrier) waiting = i;
    if (waiting < 0) continue;
    const Thread& first = b.th[waiting];
    bool ready = true;
    for (int i = w0; i < w1 && ready; ++i) {
      const Thread& t = b.th[i];
      const bool named = (first.mask >> (i - w0)) & 1u;
      if (!named) continue;
      if (t.state == State::done)
        fail(kernel, g_builtins.block_idx,
             "a shuffle's mask names lane " + std::to_string(i - w0) + ", which has returned (" + where(first) + ")");
      if (t.state != State::warp_barrier) ready = false;
    }
    if (!ready) continue;
    for (int i = w0; i < w1; ++i) {
      const Thread& t = b.th[i];
      if (t.state != State::warp_barrier) continue;
      if (t.file != first.file || t.line != first.line || t.mask != first.mask)
        fail(kernel, g_builtins.block_idx, "lanes of one warp wait at different shuffles: " + where(t) + " and " +
                                               where(first));
    }
    for (int i = w0; i < w1; ++i) {
      Thread& t = b.th[i];
      if (t.state != State::warp_barrier) continue;
      const bool ok = t.src >= w0 && t.src < w1 && b.th[t.src].state == State::warp_barrier;
      if (t.src >= 0 && !ok)
        fail(kernel, g_builtins.block_idx, "a shuffle reads lane " + std::to_string(t.src - w0) +
                                               ", which is not in the shuffle (" + where(t) + ")");
      t.result = t.src >= 0 ? b.th[t.src].bits : t.bits;
    }
    for (int i = w0; i < w1; ++i)
      if (b.th[i].state == State::warp_barrier) b.th[i].state = State::runnable;
    any = true;
  }
  return any;
}

void run_block(Block& b, const std::string& kernel, Rng& rng) {
  const int n = static_cast<int>(b.th.size());
  std::vector<int> order;
  order.reserve(n);
  for (;;) {
    order.clear();
    for (int i = 0; i < n; ++i)
      if (b.th[i].state == State::runnable) order.push_back(i);
    if (order.empty()) {
      int alive = 0, at_block = 0;
      const Thread* first = nullptr;
      for (const Thread& t : b.th) {
        if (t.state == State::done) continue;
        ++alive;
        if (t.state == State::block_barrier) {
          ++at_block;
          if (!first) first = &t;
        }
      }
      if (alive == 0) return;
      if (release_warps(b, kernel)) continue;
      if (at_block == alive) {
        for (const Thread& t : b.th) {
          if (t.state == State::done)
            fail(kernel, g_builtins.block_idx, "__syncthreads waited for by some threads after others returned (" +
                                                   where(*first) + ")");
          if (t.file != first->file || t.line != first->line)
            fail(kernel, g_builtins.block_idx, "threads wait at different __syncthreads: " + where(t) + " and " +
                                                   where(*first));
        }
        for (Thread& t : b.th) t.state = State::runnable;
        continue;
      }
      std::string who;
      for (const Thread& t : b.th)
        if (t.state != State::done && who.size() < 400) who += "\n  " + where(t);
      fail(kernel, g_builtins.block_idx, "deadlock: no thread can run; waiting:" + who);
    }
    if (g_seed != 0) rng.shuffle(order);
    for (int i : order) {
      resume(b, i);
      if (!b.error.empty()) fail(kernel, g_builtins.block_idx, "exception in kernel code: " + b.error);
    }
  }
}

std::string base_name(const char* text) {
  std::string s;
  for (const char* p = text; *p && *p != '<'; ++p)
    if (*p != '(' && *p != ')' && *p != ' ') s += *p;
  return s;
}

void run_grid(const std::string& kernel, dim3 grid, dim3 block, size_t shared_bytes, const KernelBody& body) {
  const int n = static_cast<int>(block.x * block.y * block.z);
  Rng rng{g_seed * 0x2545f4914f6cdd1dull + (++g_launch_count)};
  const uint64_t nblocks = uint64_t(grid.x) * grid.y * grid.z;
  std::vector<uint64_t> blocks(nblocks);
  for (uint64_t i = 0; i < nblocks; ++i) blocks[i] = i;
  if (g_seed != 0) rng.shuffle(blocks);
  if (g_fibers.size() < static_cast<size_t>(n)) g_fibers.resize(n);
  Block b;
  b.fibers = &g_fibers;
  b.body = &body;
  b.th.resize(n);
  g_block = &b;
  g_builtins.block_dim = block;
  g_builtins.grid_dim = grid;
  for (uint64_t id : blocks) {
    g_builtins.block_idx = uint3{static_cast<unsigned>(id % grid.x), static_cast<unsigned>(id / grid.x % grid.y),
                                 static_cast<unsigned>(id / (uint64_t(grid.x) * grid.y))};
    b.dyn_shared.assign(shared_bytes, 0xff);  // uninitialised shared memory reads as NaN / -1
    for (int i = 0; i < n; ++i) {
      Thread& t = b.th[i];
      t = Thread();
      t.idx = uint3{static_cast<unsigned>(i % block.x), static_cast<unsigned>(i / block.x % block.y),
                    static_cast<unsigned>(i / (block.x * block.y))};
      fiber_init(g_fibers[i]);
    }
    run_block(b, kernel, rng);
  }
  g_block = nullptr;
}

// ---- streams, memory, errors -----------------------------------------------------------
std::recursive_mutex g_mu;  // the whole emulated device
cudaError_t g_last_error = cudaSuccess;
std::map<uintptr_t, size_t> g_allocs;  // device allocations: start -> bytes

}  // namespace

struct Stream {
  std::deque<std::function<void()>> queue;
};
struct Event {
  std::chrono::steady_clock::time_point t;
  bool recorded = false;
};

namespace {

Stream g_default_stream;
std::vector<Stream*> g_streams{&g_default_stream};

Stream& stream_of(cudaStream_t s) { return s ? *s : g_default_stream; }

void drain(Stream& s) {
  while (!s.queue.empty()) {
    std::function<void()> op = std::move(s.queue.front());
    s.queue.pop_front();
    try {
      op();
    } catch (...) {
      s.queue.clear();  // the rest of the stream's work is abandoned, as after a device fault
      g_block = nullptr;
      throw;
    }
  }
}
void drain_all() {
  for (Stream* s : g_streams) drain(*s);
}

// At most this many operations wait in a queue (the device may start work any time).
constexpr size_t kMaxQueued = 4096;
void enqueue(cudaStream_t s, std::function<void()> op) {
  Stream& st = stream_of(s);
  st.queue.push_back(std::move(op));
  if (st.queue.size() > kMaxQueued) drain(st);
}

// Whether [p, p + n) lies inside one device allocation.
bool is_device(const void* p, size_t n) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = g_allocs.upper_bound(a);
  if (it == g_allocs.begin()) return false;
  --it;
  return a >= it->first && a + n <= it->first + it->second;
}

cudaError_t set_error(cudaError_t e) {
  if (e != cudaSuccess) g_last_error = e;
  return e;
}

}  // namespace

void block_barrier(const char* file, int line) {
  Thread& t = g_block->th[g_block->current];
  t.state = State::block_barrier;
  t.file = file, t.line = line;
  yield_to_scheduler();
}

uint64_t warp_exchange(const char* file, int line, unsigned mask, uint64_t bits, int src) {
  Thread& t = g_block->th[g_block->current];
  const int lane = g_block->current % 32, base = g_block->current - lane;
  if (!((mask >> lane) & 1u))
    throw std::runtime_error(std::string("[cuda-emu] a lane calls a shuffle whose mask leaves it out at ") + file +
                             ":" + std::to_string(line));
  t.state = State::warp_barrier;
  t.file = file, t.line = line;
  t.mask = mask, t.bits = bits, t.src = src < 0 ? -1 : base + src;
  yield_to_scheduler();
  return g_block->th[g_block->current].result;
}

void* dynamic_shared() { return g_block->dyn_shared.data(); }

void enqueue_launch(const char* name, dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream,
                    KernelBody body) {
  std::lock_guard<std::recursive_mutex> lock(g_mu);
  const uint64_t threads = uint64_t(block.x) * block.y * block.z;
  if (threads == 0 || threads > 1024 || block.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
      grid.x > 0x7fffffffu || grid.y > 65535 || grid.z > 65535 || shared_bytes > 48 * 1024) {
    set_error(cudaErrorInvalidConfiguration);
    return;
  }
  const std::string kernel = base_name(name);
  g_launched[kernel]++;
  enqueue(stream, [kernel, grid, block, shared_bytes, body] { run_grid(kernel, grid, block, shared_bytes, body); });
}

std::vector<std::pair<std::string, long>> launched_kernels() {
  std::lock_guard<std::recursive_mutex> lock(g_mu);
  return std::vector<std::pair<std::string, long>>(g_launched.begin(), g_launched.end());
}
uint64_t seed() { return g_seed; }
void set_seed(uint64_t s) {
  std::lock_guard<std::recursive_mutex> lock(g_mu);
  drain_all();
  g_seed = s;
}

}  // namespace lockstep_emu

using namespace lockstep_emu;

cudaError_t cudaGetDeviceCount(int* n) {
  *n = 1;
  return cudaSuccess;
}
cudaError_t cudaGetLastError() {
  std::lock_guard<std::recursive_mutex> lock(g_mu);
  const cudaError_t e = g_last_error;
  g_last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return g_last_error; }
const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
  }
  return "unknown error";
}

// Device memory: host memory, 256-byte aligned as cudaMalloc's, every byte 0xff so that a
// kernel reading memory nobody wrote sees NaNs (floats) or -1 (integers). Requests beyond
// 64 GiB fail as an exhausted device would.
cudaError_t cudaMalloc(void** p, size_t nbytes) {
  std::lock_guard<std::recursive_mutex> lock(g_mu);
  *p = nullptr;
  if (nbytes > (size_t(64) << 30)) return set_error(cudaErrorMemoryAllocation);
  const size_t n = (std::max<size_t>(nbytes, 1) + 255) / 256 * 256;
  void* m = std::aligned_alloc(256, n);
  if (!m) return set_error(cudaErrorMemoryAllocation);
  std::memset(m, 0xff, n);
  g_allocs[reinterpret_cast<uintptr_t>(m)] = nbytes;
  *p = m;
  return cudaSuccess;
}
cudaError_t cudaFree(void* p) {
  std::lock_guard<std::recursive_mutex> lock(g_mu);
  if (!p) return cudaSuccess;
  drain_all();  // cudaFree waits for the device, as CUDA's does
  auto it = g_allocs.find(reinterpret_cast<uintptr_t>(p));
  if (it == g_allocs.end()) return set_error(cudaErrorInvalidValue);
  g_allocs.erase(it);
  std::free(p);
  return cudaSuccess;
}

namespace {
cudaError_t check_copy(void* dst, const void* src, size_t n, cudaMemcpyKind kind) {
  const bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (n == 0) return cudaSuccess;
  if ((dst_dev && !is_device(dst, n)) || (src_dev && !is_device(src, n))) return cudaErrorInvalidValue;
  if ((!dst_dev && is_device(dst, 1)) || (!src_dev && is_device(src, 1))) return cudaErrorInvalidValue;
  return cudaSuccess;
}
}  // namespace

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t nbytes, cudaMemcpyKind kind, cudaStream_t s) {
  std::lock_guard<std::recursive_mutex> lock(g_mu);
  if (kind == cudaMemcpyDefault || kind == cudaMemcpyHostToHost) return set_error(cudaErrorInvalidValue);
  if (cudaError_t e = check_copy(dst, src, nbytes, kind)) return set_error(e);
  if (kind == cudaMemcpyHostToDevice) {
    // From pageable host memory the copy is staged at the call (the caller may reuse src).
    auto staged = std::make_shared<std::vector<unsigned char>>(static_cast<const unsigned char*>(src),
                                                               static_cast<const unsigned char*>(src) + nbytes);
    enqueue(s, [dst, staged] { std::memcpy(dst, staged->data(), staged->size()); });
  } else {
    enqueue(s, [dst, src, nbytes] { std::memmove(dst, src, nbytes); });
  }
  return cudaSuccess;
}
cudaError_t cudaMemcpy(void* dst, const void* src, size_t nbytes, cudaMemcpyKind kind) {
  std::lock_guard<std::recursive_mutex> lock(g_mu);
  if (cudaError_t e = cudaMemcpyAsync(dst, src, nbytes, kind, nullptr)) return e;
  return cudaDeviceSynchronize();
}
cudaError_t cudaMemsetAsync(void* dst, int value, size_t nbytes, cudaStream_t s) {
  std::lock_guard<std::recursive_mutex> lock(g_mu);
  if (nbytes && !is_device(dst, nbytes)) return set_error(cudaErrorInvalidValue);
  enqueue(s, [dst, value, nbytes] { std::memset(dst, value, nbytes); });
  return cudaSuccess;
}
cudaError_t cudaMemset(void* dst, int value, size_t nbytes) {
  std::lock_guard<std::recursive_mutex> lock(g_mu);
  if (cudaError_t e = cudaMemsetAsync(dst, value, nbytes, nullptr)) return e;
  return cudaDeviceSynchronize();
}
cudaError_t cudaStreamCreate(cudaStream_t* s) {
  std::lock_guard<std::recursive_mutex> lock(g_mu);
  *s = new Stream();
  g_streams.push_back(*s);
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  std::lock_guard<std::recursive_mutex> lock(g_mu);
  if (!s) return set_error(cudaErrorInvalidResourceHandle);
  drain(*s);
  g_streams.erase(std::remove(g_streams.begin(), g_streams.end(), s), g_streams.end());
  delete s;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
  std::lock_guard<std::recursive_mutex> lock(g_mu);
  drain(stream_of(s));
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize() {
  std::lock_guard<std::recursive_mutex> lock(g_mu);
  drain_all();
  return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t* e) {
  *e = new Event();
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete e;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
  std::lock_guard<std::recursive_mutex> lock(g_mu);
  enqueue(s, [e] {
    e->t = std::chrono::steady_clock::now();
    e->recorded = true;
  });
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaDeviceSynchronize(); }
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t stop) {
  if (!start->recorded || !stop->recorded) return set_error(cudaErrorInvalidResourceHandle);
  *ms = std::chrono::duration<float, std::milli>(stop->t - start->t).count();
  return cudaSuccess;
}

// ---- the cuBLAS stand-in (include/cublas_v2.h) --------------------------------------------
struct cublasContext {
  cudaStream_t stream = nullptr;
  cublasMath_t math = CUBLAS_DEFAULT_MATH;
};

cublasStatus_t cublasCreate_v2(cublasHandle_t* h) {
  *h = new cublasContext();
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream_v2(cublasHandle_t h, cudaStream_t s) {
  h->stream = s;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t m) {
  h->math = m;
  return CUBLAS_STATUS_SUCCESS;
}
const char* cublasGetStatusString(cublasStatus_t s) {
  return s == CUBLAS_STATUS_SUCCESS ? "CUBLAS_STATUS_SUCCESS" : "CUBLAS_STATUS_INVALID_VALUE";
}

namespace {
// TF32: 10 explicit mantissa bits, rounded to nearest (ties away), as the tensor cores read
// float32 inputs.
float to_tf32(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & ~0x1fffu;
  std::memcpy(&x, &u, 4);
  return x;
}
}  // namespace

// Column-major C = alpha op(A) op(B) + beta C (beta == 0: C is not read). Each output is
// summed in float as two interleaved partials (even k and odd k, fma each) that are added at
// the end: another order than the canonical one, as a library's is, so fast mode's results
// differ from the deterministic ones by rounding only (gemm.h's K eps bound holds).
cublasStatus_t cublasSgemm_v2(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                              const float* alpha, const float* A, int lda, const float* B, int ldb, const float* beta,
                              float* C, int ldc) {
  if (m < 0 || n < 0 || k < 0) return CUBLAS_STATUS_INVALID_VALUE;
  const float al = *alpha, be = *beta;
  const bool tf32 = h->math == CUBLAS_TF32_TENSOR_OP_MATH;
  std::lock_guard<std::recursive_mutex> lock(g_mu);
  enqueue(h->stream, [=] {
    auto a = [&](int i, int p) { return ta == CUBLAS_OP_N ? A[i + int64_t(p) * lda] : A[p + int64_t(i) * lda]; };
    auto b = [&](int p, int j) { return tb == CUBLAS_OP_N ? B[p + int64_t(j) * ldb] : B[j + int64_t(p) * ldb]; };
    for (int j = 0; j < n; ++j)
      for (int i = 0; i < m; ++i) {
        float s[2] = {0.0f, 0.0f};
        for (int p = 0; p < k; ++p) {
          const float x = tf32 ? to_tf32(a(i, p)) : a(i, p), y = tf32 ? to_tf32(b(p, j)) : b(p, j);
          s[p & 1] = std::fma(x, y, s[p & 1]);
        }
        float& c = C[i + int64_t(j) * ldc];
        const float v = al * (s[0] + s[1]);
        c = be == 0.0f ? v : v + be * c;
      }
  });
  return CUBLAS_STATUS_SUCCESS;
}
