// Helpers shared by the tests: fixed-seed inputs, bitwise and tolerance comparisons
// that report the first bad index and the largest difference.
#pragma once
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace lockstep_test {

// True in a sanitizer build (ASan or TSan, gcc or clang). The slowest exhaustive sweeps run
// a subset of their thread counts there (instrumented code runs 10-30x slower); the
// uninstrumented builds run them all.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif
#else
inline constexpr bool kSanitized = false;
#endif

// The thread counts the kernel tests compare (1 against the rest, byte for byte).
inline constexpr int kThreadCounts[] = {1, 2, 3, 8};

// Thread counts for a sweep: {1, 3}, or {3} alone in a sanitizer build (3 threads on any
// machine: a split with an uneven last part).
inline std::vector<int> sweep_threads() { return kSanitized ? std::vector<int>{3} : std::vector<int>{1, 3}; }

// Uniform floats in [lo, hi) from a fixed seed (std::mt19937 is specified bit-exactly).
inline std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 gen(seed);
  std::vector<float> v(n);
  for (auto& x : v) {
    double u = (gen() >> 8) * (1.0 / 16777216.0);
    x = static_cast<float>(lo + (hi - lo) * u);
  }
  return v;
}

inline std::vector<double> random_doubles(size_t n, uint32_t seed, double lo = -1.0, double hi = 1.0) {
  std::mt19937_64 gen(seed);
  std::vector<double> v(n);
  for (auto& x : v) x = lo + (hi - lo) * ((gen() >> 11) * (1.0 / 9007199254740992.0));
  return v;
}

// A fresh directory under /tmp, e.g. make_temp_dir("lockstep_ckpt").
inline std::string make_temp_dir(const std::string& prefix) {
  std::string tmpl = "/tmp/" + prefix + "_XXXXXX";
  const char* d = mkdtemp(tmpl.data());
  REQUIRE(d != nullptr);
  return d;
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Byte-for-byte equality; on failure says where the first difference is.
template <typename T>
inline std::string first_bitwise_difference(const T* a, const T* b, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(T)) != 0) {
      std::ostringstream os;
      os.precision(9);
      os << "first difference at index " << i << ": " << a[i] << " vs " << b[i];
      return os.str();
    }
  return "";
}

#define REQUIRE_BITWISE_EQUAL(a, b)                                                        \
  do {                                                                                     \
    REQUIRE((a).size() == (b).size());                                                     \
    std::string lockstep_diff_ =                                                           \
        ::lockstep_test::first_bitwise_difference((a).data(), (b).data(), (a).size());     \
    INFO(lockstep_diff_);                                                                  \
    REQUIRE(lockstep_diff_.empty());                                                       \
  } while (0)

// |got - ref| <= atol + rtol * |ref| everywhere; reports the first failure and the max error.
template <typename G, typename R>
inline std::string allclose_report(const G* got, const R* ref, size_t n, double rtol, double atol) {
  double max_err = 0;
  size_t first_bad = n;
  for (size_t i = 0; i < n; ++i) {
    double g = static_cast<double>(got[i]), r = static_cast<double>(ref[i]);
    double err = std::fabs(g - r);
    if (std::isnan(g) != std::isnan(r)) err = INFINITY;
    if (err > max_err) max_err = err;
    if (first_bad == n && err > atol + rtol * std::fabs(r)) first_bad = i;
  }
  if (first_bad == n) return "";
  std::ostringstream os;
  os.precision(9);
  os << "first mismatch at index " << first_bad << ": got " << got[first_bad] << ", expected "
     << ref[first_bad] << " (max abs error " << max_err << ", rtol " << rtol << ", atol " << atol << ")";
  return os.str();
}

#define REQUIRE_ALLCLOSE(got, ref, rtol, atol)                                             \
  do {                                                                                     \
    REQUIRE((got).size() == (ref).size());                                                 \
    std::string lockstep_rep_ = ::lockstep_test::allclose_report(                          \
        (got).data(), (ref).data(), (got).size(), (rtol), (atol));                         \
    INFO(lockstep_rep_);                                                                   \
    REQUIRE(lockstep_rep_.empty());                                                        \
  } while (0)

}  // namespace lockstep_test
