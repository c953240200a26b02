#include "data/text.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <stdexcept>

#include "base/error.h"

namespace lockstep::data {

namespace {

// Decodes the sequence at s[i]; returns its length (1..4) and the code point, or 0 when the
// bytes there are not a well-formed sequence (RFC 3629: no overlong forms, no surrogates,
// nothing above U+10FFFF).
int decode_one(const std::string& s, size_t i, uint32_t* cp) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  int len;
  uint32_t v, min;
  if (c < 0x80) { *cp = c; return 1; }
  if ((c & 0xE0) == 0xC0) len = 2, v = c & 0x1F, min = 0x80;
  else if ((c & 0xF0) == 0xE0) len = 3, v = c & 0x0F, min = 0x800;
  else if ((c & 0xF8) == 0xF0) len = 4, v = c & 0x07, min = 0x10000;
  else return 0;
  if (i + static_cast<size_t>(len) > s.size()) return 0;
  for (int k = 1; k < len; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    v = (v << 6) | (b(i + k) & 0x3F);
  }
  if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
  *cp = v;
  return len;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error(str_cat("[text] ", path, ": cannot open: ", std::strerror(errno)));
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) throw std::runtime_error(str_cat("[text] ", path, ": read error"));
  return s;
}

bool valid_scalar(uint32_t cp) { return cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF); }

}  // namespace

int64_t utf8_error_offset(const std::string& s) {
  uint32_t cp;
  for (size_t i = 0; i < s.size();) {
    const int len = decode_one(s, i, &cp);
    if (len == 0) return static_cast<int64_t>(i);
    i += static_cast<size_t>(len);
  }
  return -1;
}

std::string read_text(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw std::runtime_error(str_cat("[text] ", path, ": cannot open: ", std::strerror(errno)));
  std::string text;
  if (S_ISDIR(st.st_mode)) {
    DIR* d = ::opendir(path.c_str());
    if (!d) throw std::runtime_error(str_cat("[text] ", path, ": cannot open directory: ", std::strerror(errno)));
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) {
      const std::string n = e->d_name;
      if (n.empty() || n[0] == '.' || (n.size() >= 4 && n.compare(n.size() - 4, 4, ".dat") == 0)) continue;
      struct stat fs {};
      if (::lstat((path + "/" + n).c_str(), &fs) == 0 && S_ISREG(fs.st_mode)) names.push_back(n);
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    if (names.empty()) throw std::runtime_error(str_cat("[text] ", path, ": empty: the directory holds no text files"));
    for (const std::string& n : names) {
      const std::string f = path + "/" + n, s = read_file(f);
      const int64_t bad = utf8_error_offset(s);
      if (bad >= 0)
        throw std::runtime_error(str_cat("[text] ", f, ": not UTF-8: byte ", bad, " does not begin a valid sequence"));
      text += s;
    }
  } else {
    text = read_file(path);
    const int64_t bad = utf8_error_offset(text);
    if (bad >= 0)
      throw std::runtime_error(str_cat("[text] ", path, ": not UTF-8: byte ", bad, " does not begin a valid sequence"));
  }
  if (text.empty()) throw std::runtime_error(str_cat("[text] ", path, ": empty: expected some UTF-8 text"));
  return text;
}

CharVocab CharVocab::build(const std::string& text) {
  std::set<uint32_t> seen;
  uint32_t cp;
  for (size_t i = 0; i < text.size();) {
    const int len = decode_one(text, i, &cp);
    LS_CHECK_ARG(len > 0, "vocab", "expected UTF-8 text, got an invalid sequence at byte ", i);
    seen.insert(cp);
    i += static_cast<size_t>(len);
  }
  CharVocab v;
  v.cps_.assign(seen.begin(), seen.end());
  return v;
}

CharVocab CharVocab::from_code_points(std::vector<uint32_t> cps) {
  for (size_t i = 0; i < cps.size(); ++i) {
    LS_CHECK_ARG(valid_scalar(cps[i]), "vocab", "expected Unicode scalar values, got ", cps[i], " at ", i);
    LS_CHECK_ARG(i == 0 || cps[i - 1] < cps[i], "vocab", "expected strictly increasing code points, got ",
                 cps[i - 1], " then ", cps[i], " at ", i);
  }
  CharVocab v;
  v.cps_ = std::move(cps);
  return v;
}

std::vector<int64_t> CharVocab::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  ids.reserve(text.size());
  uint32_t cp;
  for (size_t i = 0; i < text.size();) {
    const int len = decode_one(text, i, &cp);
    LS_CHECK_ARG(len > 0, "vocab", "expected UTF-8 text, got an invalid sequence at byte ", i);
    auto it = std::lower_bound(cps_.begin(), cps_.end(), cp);
    if (it == cps_.end() || *it != cp) {
      std::string ch;
      append_utf8(ch, cp);
      char hex[16];
      std::snprintf(hex, sizeof hex, "U+%04X", cp);
      throw std::invalid_argument(str_cat("[vocab] character '", ch, "' (", hex, ") at byte ", i,
                                          " is not in the vocabulary of ", cps_.size(), " characters"));
    }
    ids.push_back(it - cps_.begin());
    i += static_cast<size_t>(len);
  }
  return ids;
}

std::string CharVocab::decode(const std::vector<int64_t>& ids) const {
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    LS_CHECK_ARG(ids[i] >= 0 && ids[i] < size(), "vocab", "expected token ids in [0, ", size(), "), got ", ids[i],
                 " at position ", i);
    append_utf8(out, cps_[static_cast<size_t>(ids[i])]);
  }
  return out;
}

std::string CharVocab::serialize() const {
  std::string s;
  char hex[16];
  for (size_t i = 0; i < cps_.size(); ++i) {
    std::snprintf(hex, sizeof hex, "%x", cps_[i]);
    s += (i ? "," : "") + std::string(hex);
  }
  return s;
}

CharVocab CharVocab::parse(const std::string& s, const std::string& what) {
  std::vector<uint32_t> cps;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    const bool hex = !item.empty() && item.size() <= 6 && item.find_first_not_of("0123456789abcdef") == std::string::npos;
    if (!hex) throw std::invalid_argument(str_cat("[vocab] ", what, ": expected hex code points, got '", item, "'"));
    cps.push_back(static_cast<uint32_t>(std::stoul(item, nullptr, 16)));
  }
  if (cps.empty()) throw std::invalid_argument(str_cat("[vocab] ", what, ": expected a non-empty vocabulary"));
  try {
    return from_code_points(std::move(cps));
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(str_cat("[vocab] ", what, ": ", e.what()));
  }
}

TextSplit split_tokens(const std::vector<int64_t>& ids, double validation_fraction) {
  LS_CHECK_ARG(validation_fraction >= 0 && validation_fraction < 1, "text", "expected a validation fraction in "
               "[0, 1), got ", validation_fraction);
  const auto n = static_cast<int64_t>(ids.size());
  const auto n_val = static_cast<int64_t>(static_cast<double>(n) * validation_fraction);
  TextSplit s;
  s.train.assign(ids.begin(), ids.end() - n_val);
  s.validation.assign(ids.end() - n_val, ids.end());
  return s;
}

TokenWindows::TokenWindows(std::vector<int64_t> ids, int64_t context) : ids_(std::move(ids)), context_(context) {
  LS_CHECK_ARG(context >= 1, "text", "expected a context length >= 1, got ", context);
  for (size_t i = 0; i < ids_.size(); ++i)
    LS_CHECK_ARG(ids_[i] >= 0 && ids_[i] < (int64_t{1} << 24), "text", "expected token ids in [0, 2^24), got ",
                 ids_[i], " at ", i);
  n_ = ids_.empty() ? 0 : (static_cast<int64_t>(ids_.size()) - 1) / context_;
}

Example TokenWindows::get(int64_t i) const {
  Example e;
  e.image = Tensor::empty({context_ + 1});
  e.label = read_into(i, e.image.data<float>());
  return e;
}

int64_t TokenWindows::read_into(int64_t i, float* dst) const {
  LS_CHECK_ARG(i >= 0 && i < n_, "text", "expected a window index in [0, ", n_, "), got ", i);
  const int64_t* src = ids_.data() + i * context_;
  for (int64_t t = 0; t <= context_; ++t) dst[t] = static_cast<float>(src[t]);
  return src[0];
}

}  // namespace lockstep::data
