// The GPT's text pipeline (data/text.h): UTF-8 checks, the vocabulary, the split, the
// context windows, and that the loader's batches of windows keep their bits for any worker
// count, a mid-epoch restore and a data-parallel shard.
#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <unistd.h>

#include "data/loader.h"
#include "data/text.h"
#include "test_util.h"

using namespace lockstep;
using Catch::Contains;

namespace {

std::string temp_file(const std::string& name, const std::string& bytes) {
  const std::string path = "/tmp/lockstep_test_text_" + std::to_string(::getpid()) + "_" + name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

}  // namespace

TEST_CASE("text: UTF-8 validation finds the first bad byte", "[data]") {
  REQUIRE(data::utf8_error_offset("plain ascii\n") == -1);
  REQUIRE(data::utf8_error_offset("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80") == -1);  // é € 😀
  REQUIRE(data::utf8_error_offset("ab\xff") == 2);
  REQUIRE(data::utf8_error_offset("a\xc3") == 1);              // truncated
  REQUIRE(data::utf8_error_offset("\xc0\xaf") == 0);           // overlong '/'
  REQUIRE(data::utf8_error_offset("x\xed\xa0\x80") == 1);      // a surrogate
  REQUIRE(data::utf8_error_offset("\xf4\x90\x80\x80") == 0);   // above U+10FFFF
  REQUIRE(data::utf8_error_offset("a\x80") == 1);              // a lone continuation byte
}

TEST_CASE("text: the vocabulary is the sorted code points, whatever their order of use", "[data]") {
  const std::string text = "b\xc3\xa9" "a\nba";
  const data::CharVocab v = data::CharVocab::build(text);
  REQUIRE(v.code_points() == std::vector<uint32_t>{'\n', 'a', 'b', 0xe9});
  REQUIRE(data::CharVocab::build("\na b\xc3\xa9 ab").code_points() ==
          std::vector<uint32_t>{'\n', ' ', 'a', 'b', 0xe9});
  const std::vector<int64_t> ids = v.encode(text);
  REQUIRE(ids == std::vector<int64_t>{2, 3, 1, 0, 2, 1});
  REQUIRE(v.decode(ids) == text);
  REQUIRE(data::CharVocab::parse(v.serialize(), "m").code_points() == v.code_points());
  REQUIRE(v.serialize() == "a,61,62,e9");
  REQUIRE_THROWS_WITH(v.encode("abc"), Contains("'c' (U+0063) at byte 2") && Contains("not in the vocabulary"));
  REQUIRE_THROWS_WITH(v.decode({0, 4}), Contains("[vocab] expected token ids in [0, 4), got 4 at position 1"));
  REQUIRE_THROWS_WITH(v.decode({-1}), Contains("got -1"));
  REQUIRE_THROWS_WITH(data::CharVocab::parse("61,zz", "user.vocab"), Contains("user.vocab") && Contains("'zz'"));
  REQUIRE_THROWS_WITH(data::CharVocab::parse("62,61", "user.vocab"), Contains("strictly increasing"));
  REQUIRE_THROWS_WITH(data::CharVocab::parse("", "user.vocab"), Contains("non-empty"));
  REQUIRE_THROWS_WITH(data::CharVocab::build("a\xff"), Contains("invalid sequence at byte 1"));
}

TEST_CASE("text: read_text refuses empty and non-UTF-8 files naming them", "[data]") {
  const std::string good = temp_file("good", "hello\n%\nworld\n");
  const std::string empty = temp_file("empty", "");
  const std::string latin1 = temp_file("latin1", "caf\xe9\n");
  REQUIRE(data::read_text(good) == "hello\n%\nworld\n");
  REQUIRE_THROWS_WITH(data::read_text(empty), Contains("[text] " + empty + ": empty"));
  REQUIRE_THROWS_WITH(data::read_text(latin1), Contains("[text] " + latin1 + ": not UTF-8: byte 3"));
  REQUIRE_THROWS_WITH(data::read_text("/nonexistent/file.txt"), Contains("/nonexistent/file.txt: cannot open"));
  for (const auto& f : {good, empty, latin1}) std::remove(f.c_str());
}

TEST_CASE("text: the split is positional and the windows shift by one token", "[data]") {
  std::vector<int64_t> ids(105);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int64_t>(i % 7);
  const data::TextSplit s = data::split_tokens(ids, 0.1);
  REQUIRE(s.train.size() == 95);
  REQUIRE(s.validation.size() == 10);
  REQUIRE(s.validation.front() == ids[95]);
  REQUIRE_THROWS_WITH(data::split_tokens(ids, 1.0), Contains("validation fraction in [0, 1)"));

  data::TokenWindows w(s.train, 8);
  REQUIRE(w.size() == (95 - 1) / 8);
  REQUIRE(w.sample_shape() == Shape{9});
  const std::vector<float> x = w.get(3).image.to_vector<float>();
  for (int t = 0; t <= 8; ++t) REQUIRE(x[static_cast<size_t>(t)] == static_cast<float>(ids[24 + t]));
  REQUIRE_THROWS_WITH(data::TokenWindows(ids, 0), Contains("context length >= 1"));
  REQUIRE_THROWS_WITH(data::TokenWindows({1, -2}, 1), Contains("token ids in [0, 2^24), got -2"));
}

TEST_CASE("text: batches of windows keep their bits across workers, restore and shards", "[data][deterministic]") {
  std::vector<int64_t> ids(4001);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int64_t>((i * 31 + i / 7) % 61);
  auto ds = std::make_shared<data::TokenWindows>(ids, 16);
  auto batches = [&](int workers, int64_t from, data::BatchShard shard) {
    data::LoaderOptions lo;
    lo.batch_size = 24, lo.shuffle = true, lo.num_workers = workers, lo.seed = 9;
    data::DataLoader dl(ds, lo);
    if (shard) dl.set_shard(shard);
    dl.load_state({1, from});
    std::vector<Tensor> out;
    while (auto b = dl.next()) out.push_back(b->images);
    return out;
  };
  const std::vector<Tensor> want = batches(0, 0, nullptr);
  REQUIRE(want.size() == 11);  // 250 windows / 24, the last short
  const std::vector<Tensor> threaded = batches(3, 0, nullptr);
  const std::vector<Tensor> restored = batches(2, 4, nullptr);
  for (size_t k = 0; k < want.size(); ++k) {
    REQUIRE(equal_bits(want[k], threaded[k]));
    if (k >= 4) REQUIRE(equal_bits(want[k], restored[k - 4]));
  }
  // A shard's rows are the whole batch's rows.
  const std::vector<Tensor> half = batches(1, 0, [](int64_t rows) { return std::make_pair(rows / 2, rows); });
  for (size_t k = 0; k < want.size(); ++k) {
    const int64_t r = want[k].size(0);
    const std::vector<float> w = want[k].to_vector<float>(), h = half[k].to_vector<float>();
    REQUIRE(std::vector<float>(w.begin() + (r / 2) * 17, w.end()) == h);
  }
}
