// Error helpers. Caller misuse throws std::invalid_argument("[op] expected ..., got ...");
// I/O, allocation and device failures throw std::runtime_error. The library never exits.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace lockstep {

namespace detail {
inline void fmt_into(std::ostringstream&) {}
template <typename T, typename... Rest>
void fmt_into(std::ostringstream& os, const T& v, const Rest&... rest) {
  os << v;
  fmt_into(os, rest...);
}
}  // namespace detail

// Concatenates its arguments with operator<<.
template <typename... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream os;
  detail::fmt_into(os, args...);
  return os.str();
}

// Throws std::invalid_argument("[op] " + message) unless cond holds.
#define LS_CHECK_ARG(cond, op, ...)                                                  \
  do {                                                                               \
    if (!(cond))                                                                     \
      throw std::invalid_argument(::lockstep::str_cat("[", op, "] ", __VA_ARGS__));  \
  } while (0)

}  // namespace lockstep
