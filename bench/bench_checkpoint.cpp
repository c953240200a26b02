// Checkpoint I/O: save_state_dict and load_state_dict_file of a 100 MB model (25M float32
// parameters in four tensors), in MB/s, next to a plain write()/read() of the same bytes in
// the same run. Arg 0: no fsync (page cache, what a training loop mostly sees); arg 1: with
// fsync (file and, for save, the directory). Files go to $LOCKSTEP_BENCH_DIR (default /tmp).
// Target: save and load at >= 0.8x of the plain write and read.
#include <benchmark/benchmark.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/random.h"
#include "serialize/safetensors.h"

using namespace lockstep;
using namespace lockstep::serialize;

namespace {

std::string bench_path(const char* name) {
  const char* d = std::getenv("LOCKSTEP_BENCH_DIR");
  return std::string(d ? d : "/tmp") + "/lockstep_bench_" + name + ".safetensors";
}

// 25,000,000 floats = 100 MB: two large layers, a smaller one and a bias.
const StateDict& model_100mb() {
  static StateDict sd = [] {
    StateDict s;
    const std::vector<std::pair<std::string, Shape>> shapes = {
        {"0.weight", {4000, 3000}}, {"1.weight", {3000, 3000}}, {"2.weight", {1000, 3999}}, {"2.bias", {1000}}};
    uint64_t stream = 0;
    for (const auto& [name, shape] : shapes) {
      Tensor t = Tensor::empty(shape);
      fill_uniform(t, -1, 1, 7, stream++);
      s.insert(name, t);
    }
    return s;
  }();
  return sd;
}

size_t model_bytes() {
  size_t n = 0;
  for (const auto& kv : model_100mb().items()) n += kv.second.nbytes();
  return n;
}

// The same bytes in one buffer, for the plain baseline.
const std::vector<char>& plain_bytes() {
  static std::vector<char> buf = [] {
    std::vector<char> b;
    for (const auto& kv : model_100mb().items()) {
      const char* p = static_cast<const char*>(kv.second.raw_data());
      b.insert(b.end(), p, p + kv.second.nbytes());
    }
    return b;
  }();
  return buf;
}

void plain_write(const std::string& path, const std::vector<char>& b, bool sync) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("open " + path);
  size_t off = 0;
  while (off < b.size()) {
    ssize_t w = ::write(fd, b.data() + off, b.size() - off);
    if (w <= 0) throw std::runtime_error("write " + path);
    off += static_cast<size_t>(w);
  }
  if (sync && ::fsync(fd) != 0) throw std::runtime_error("fsync " + path);
  ::close(fd);
}

void plain_read(const std::string& path, std::vector<char>& b) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("open " + path);
  size_t off = 0;
  while (off < b.size()) {
    ssize_t r = ::read(fd, b.data() + off, b.size() - off);
    if (r <= 0) throw std::runtime_error("read " + path);
    off += static_cast<size_t>(r);
  }
  ::close(fd);
}

}  // namespace

static void BM_plain_write(benchmark::State& state) {
  const std::string path = bench_path("plain");
  const auto& b = plain_bytes();
  for (auto _ : state) plain_write(path, b, state.range(0) != 0);
  state.SetBytesProcessed(static_cast<int64_t>(b.size()) * state.iterations());
}

static void BM_save_state_dict(benchmark::State& state) {
  const std::string path = bench_path("save");
  const auto& sd = model_100mb();
  SaveOptions opt;
  opt.atomic.durable = state.range(0) != 0;
  for (auto _ : state) save_state_dict(path, sd, {}, opt);
  state.SetBytesProcessed(static_cast<int64_t>(model_bytes()) * state.iterations());
}

static void BM_plain_read(benchmark::State& state) {
  const std::string path = bench_path("plain");
  std::vector<char> b(plain_bytes().size());
  plain_write(path, plain_bytes(), false);
  for (auto _ : state) plain_read(path, b);
  state.SetBytesProcessed(static_cast<int64_t>(b.size()) * state.iterations());
}

// The same read into a buffer allocated for each iteration, as a load must (fresh pages:
// the kernel faults and zeroes them), so the comparison with a load is like for like.
static void BM_plain_read_fresh(benchmark::State& state) {
  const std::string path = bench_path("plain");
  plain_write(path, plain_bytes(), false);
  for (auto _ : state) {
    std::unique_ptr<char[]> p(new char[plain_bytes().size()]);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    size_t off = 0, n = plain_bytes().size();
    while (off < n) {
      ssize_t r = ::read(fd, p.get() + off, n - off);
      if (r <= 0) throw std::runtime_error("read " + path);
      off += static_cast<size_t>(r);
    }
    ::close(fd);
    benchmark::DoNotOptimize(p.get());
  }
  state.SetBytesProcessed(static_cast<int64_t>(plain_bytes().size()) * state.iterations());
}

static void BM_checksum64(benchmark::State& state) {
  const auto& b = plain_bytes();
  for (auto _ : state) {
    Checksum64 c;
    c.update(b.data(), b.size());
    benchmark::DoNotOptimize(c.digest());
  }
  state.SetBytesProcessed(static_cast<int64_t>(b.size()) * state.iterations());
}

static void BM_load_state_dict_file(benchmark::State& state) {
  const std::string path = bench_path("save");
  save_state_dict(path, model_100mb(), {}, SaveOptions{});
  for (auto _ : state) {
    StateDict sd = load_state_dict_file(path, LoadOptions{true});  // checksums verified
    benchmark::DoNotOptimize(sd.size());
  }
  state.SetBytesProcessed(static_cast<int64_t>(model_bytes()) * state.iterations());
}

// Interleaved so each pair sees the same machine load.
BENCHMARK(BM_plain_write)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_save_state_dict)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_plain_read)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_plain_read_fresh)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_checksum64)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_load_state_dict_file)->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
