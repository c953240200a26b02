// Character-level text data for the GPT recipe: reading a corpus, a vocabulary built
// deterministically from it, a train/validation split and a dataset of context windows that
// the ordinary DataLoader shuffles, shards and resumes (data/loader.h).
//
//   std::string text = data::read_text("/usr/share/games/fortunes/fortunes");
//   data::CharVocab vocab = data::CharVocab::build(text);        // sorted code points
//   std::vector<int64_t> ids = vocab.encode(text);
//   data::TextSplit s = data::split_tokens(ids, 0.1);          // last 10% validation
//   auto train = std::make_shared<data::TokenWindows>(s.train, 128);
//
// Determinism: the vocabulary is the sorted set of Unicode code points of the text (so the
// same text gives the same ids on every machine, whatever the file order of first use);
// the split is positional; window i is tokens [i*T, i*T + T + 1): no randomness here at all.
// The loader's permutation(seed, epoch) orders the windows, so batches keep their bits for
// any --workers, resume point and data-parallel world size.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace lockstep::data {

// The default corpus: Debian's `fortunes-min` (pulled in by `fortunes`) file of fortunes.
inline const char* const kFortunesFile = "/usr/share/games/fortunes/fortunes";

// The bytes of `path`, checked to be non-empty UTF-8. A directory reads every regular file
// in it whose name does not end in ".dat" (the fortune index files), symbolic links
// skipped, in byte order of the names, concatenated (the fortunes package's whole corpus).
// Throws std::runtime_error naming the file: cannot open, empty, not UTF-8 (with the byte
// offset of the first bad sequence).
std::string read_text(const std::string& path);

// The offset of the first byte that does not start a well-formed UTF-8 sequence (overlong
// forms, surrogates and code points above U+10FFFF are ill-formed), or -1 when s is UTF-8.
int64_t utf8_error_offset(const std::string& s);

// A character vocabulary: id k is the k-th smallest code point of the text it was built from.
class CharVocab {
 public:
  CharVocab() = default;
  // The sorted distinct code points of `text` (valid UTF-8; std::invalid_argument otherwise).
  static CharVocab build(const std::string& text);
  // From code points (strictly increasing, each a Unicode scalar value), e.g. a checkpoint's.
  static CharVocab from_code_points(std::vector<uint32_t> code_points);

  int64_t size() const { return static_cast<int64_t>(cps_.size()); }
  const std::vector<uint32_t>& code_points() const { return cps_; }
  // Ids of the characters of `text`; std::invalid_argument naming the first character (and
  // its offset) that is not in the vocabulary, or the offset of invalid UTF-8.
  std::vector<int64_t> encode(const std::string& text) const;
  // UTF-8 of the ids; std::invalid_argument naming an id outside [0, size()).
  std::string decode(const std::vector<int64_t>& ids) const;
  // The code points as lowercase hex joined by ',' ("a,20,41"), for checkpoint metadata;
  // parse() reads it back, std::invalid_argument naming `what` on malformed text.
  std::string serialize() const;
  static CharVocab parse(const std::string& s, const std::string& what);

 private:
  std::vector<uint32_t> cps_;  // strictly increasing
};

// Positional split: the first (1 - validation_fraction) of the tokens train, the rest
// validation (nanoGPT's). validation_fraction in [0, 1).
struct TextSplit {
  std::vector<int64_t> train, validation;
};
TextSplit split_tokens(const std::vector<int64_t>& ids, double validation_fraction);

// Non-overlapping windows of context T with their next-token targets: sample i is float32
// [T + 1] holding tokens [i*T, i*T + T + 1) (ids < 2^24 are exact in float32); the inputs
// are its first T, the targets its last T. size() = (n - 1) / T windows (a tail too short
// for a whole window is left out). The label is the window's first token (unused).
class TokenWindows : public Dataset {
 public:
  TokenWindows(std::vector<int64_t> ids, int64_t context);
  int64_t size() const override { return n_; }
  Shape sample_shape() const override { return {context_ + 1}; }
  Example get(int64_t i) const override;
  int64_t read_into(int64_t i, float* dst) const override;
  int64_t context() const { return context_; }
  int64_t num_tokens() const { return static_cast<int64_t>(ids_.size()); }

 private:
  std::vector<int64_t> ids_;
  int64_t context_, n_;
};

}  // namespace lockstep::data
