// The safetensors reader and writer: round trips of every dtype, files written by an
// independent writer (here, from the format description) and by the Python package, and
// damaged files, each rejected with an error naming the file and the field.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>

#include "nn/models.h"
#include "serialize/safetensors.h"
#include "test_util.h"

using namespace lockstep;
using namespace lockstep::serialize;
using lockstep_test::read_bytes;
using lockstep_test::write_bytes;

namespace {

NamedTensors sample_tensors() {
  return {{"w.f32", Tensor::from_vector({1.5f, -2.f, 3.25f, 0.f, -0.f, 1e-30f}, {2, 3})},
          {"w.f64", Tensor::from_vector({3.141592653589793, -1e300, 2.0, 0.5, 7.0}, {5})},
          {"n.i64", Tensor::from_vector(std::vector<int64_t>{-9000000000000000000LL}, {})},
          {"m.u8", Tensor::from_vector(std::vector<uint8_t>{0, 1, 255, 7, 8, 9}, {3, 1, 2})},
          {"empty.f32", Tensor::zeros({0}, DType::f32)},
          {"empty.u8", Tensor::zeros({0, 4}, DType::u8)},
          {"zero_d.f64", Tensor::scalar(-0.25, DType::f64)}};
}

void require_same(const nn::StateDict& got, const NamedTensors& want) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    INFO("tensor " << want[i].first);
    REQUIRE(got.items()[i].first == want[i].first);
    REQUIRE(equal_bits(got.items()[i].second, want[i].second));
  }
}

// The header and data of a file: 8-byte little-endian length, header, data.
std::string make_file(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((static_cast<uint64_t>(header.size()) >> (8 * i)) & 0xff);
  return out + header + data;
}

template <typename T>
std::string le_bytes(const std::vector<T>& v) {  // the test host is little-endian, as the library requires
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

// Decoding `bytes` must throw std::runtime_error whose message contains every fragment.
void require_rejected(const std::string& bytes, std::initializer_list<const char*> fragments) {
  try {
    decode_safetensors(bytes.data(), bytes.size(), "bad.safetensors");
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    INFO(msg);
    REQUIRE(msg.find("bad.safetensors") != std::string::npos);
    for (const char* f : fragments) REQUIRE(msg.find(f) != std::string::npos);
    return;
  }
  FAIL("accepted a bad file");
}

bool python_safetensors_available() {
  return std::system("python3 -c 'import safetensors.numpy, numpy' > /dev/null 2>&1") == 0;
}

}  // namespace

TEST_CASE("safetensors: round trip of every dtype, 0-d and empty tensors, metadata", "[checkpoint][safetensors]") {
  const std::string dir = lockstep_test::make_temp_dir("lockstep_st");
  const std::string path = dir + "/all.safetensors";
  const NamedTensors t = sample_tensors();
  save_safetensors(path, t, {{"note", "hello"}, {"empty", ""}});
  SafetensorsContents c = load_safetensors(path, LoadOptions{true});
  require_same(c.tensors, t);
  REQUIRE(c.metadata == Metadata{{"note", "hello"}, {"empty", ""}});

  // Header padded with spaces so the data starts at a multiple of 8; in memory, the same bytes.
  const std::string bytes = read_bytes(path);
  REQUIRE(bytes == encode_safetensors(t, {{"note", "hello"}, {"empty", ""}}));
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  REQUIRE((8 + n) % 8 == 0);
  REQUIRE(bytes[8] == '{');
  require_same(decode_safetensors(bytes.data(), bytes.size()).tensors, t);

  // No tensors at all, no checksum: a valid file too.
  const std::string none = encode_safetensors({}, {}, false);
  REQUIRE(decode_safetensors(none.data(), none.size()).tensors.size() == 0);
  std::remove(path.c_str());
  rmdir(dir.c_str());
}

TEST_CASE("safetensors: files from an independent writer load", "[checkpoint][safetensors]") {
  // Written from the format description alone: keys in no particular order, data in another
  // order, no padding, no metadata, a 0-d and an empty tensor.
  const std::string data = le_bytes(std::vector<double>{2.5, -4.0}) + le_bytes(std::vector<uint8_t>{9, 8, 7}) +
                           le_bytes(std::vector<int64_t>{123456789012345LL}) +
                           le_bytes(std::vector<float>{1.f, 2.f, 3.f, 4.f});
  const std::string header =
      R"({"z_i64":{"dtype":"I64","shape":[],"data_offsets":[19,27]},)"
      R"("a_f32":{"shape":[2,2],"dtype":"F32","data_offsets":[27,43]},)"
      R"("e":{"dtype":"F32","shape":[3,0],"data_offsets":[43,43]},)"
      R"("m_f64":{"dtype":"F64","shape":[2],"data_offsets":[0,16]},)"
      R"("b_u8":{"dtype":"U8","shape":[3,1],"data_offsets":[16,19]}})";
  const std::string dir = lockstep_test::make_temp_dir("lockstep_st");
  const std::string path = dir + "/ref.safetensors";
  write_bytes(path, make_file(header, data));
  SafetensorsContents c = load_safetensors(path);
  REQUIRE(c.metadata.empty());
  REQUIRE(c.tensors.keys() == std::vector<std::string>{"m_f64", "b_u8", "z_i64", "a_f32", "e"});  // data order
  REQUIRE(c.tensors.at("m_f64").to_vector<double>() == std::vector<double>{2.5, -4.0});
  REQUIRE(c.tensors.at("b_u8").shape() == Shape{3, 1});
  REQUIRE(c.tensors.at("b_u8").to_vector<uint8_t>() == std::vector<uint8_t>{9, 8, 7});
  REQUIRE(c.tensors.at("z_i64").dim() == 0);
  REQUIRE(c.tensors.at("z_i64").to_vector<int64_t>()[0] == 123456789012345LL);
  REQUIRE(c.tensors.at("a_f32").to_vector<float>() == std::vector<float>{1.f, 2.f, 3.f, 4.f});
  REQUIRE(c.tensors.at("e").shape() == Shape{3, 0});
  // Required checksums are missing from such a file.
  REQUIRE_THROWS_WITH(load_safetensors(path, LoadOptions{true}), Catch::Contains("lockstep.header_checksum"));
  std::remove(path.c_str());
  rmdir(dir.c_str());
}

TEST_CASE("safetensors: round trip through the Python safetensors package", "[checkpoint][safetensors]") {
  if (!python_safetensors_available()) {
    WARN("python3 with safetensors and numpy is not importable: Python round trip skipped");
    return;
  }
  const std::string dir = lockstep_test::make_temp_dir("lockstep_st");
  const std::string ours = dir + "/ours.safetensors", theirs = dir + "/theirs.safetensors";
  const std::string script = dir + "/check.py";
  save_safetensors(ours, sample_tensors(), {{"note", "hello"}});
  std::ofstream(script) << "import sys, numpy as np\n"
                           "from safetensors.numpy import load_file, save_file\n"
                           "from safetensors import safe_open\n"
                           "d = load_file(sys.argv[1])\n"
                           "assert d['w.f32'].dtype == np.float32 and d['w.f32'].shape == (2, 3)\n"
                           "assert d['w.f32'][0, 2] == np.float32(3.25) and np.signbit(d['w.f32'][1, 1])\n"
                           "assert d['w.f64'][0] == np.pi and d['n.i64'].shape == ()\n"
                           "assert int(d['n.i64']) == -9000000000000000000\n"
                           "assert d['m.u8'].shape == (3, 1, 2) and d['m.u8'][1, 0, 0] == 255\n"
                           "assert d['empty.u8'].shape == (0, 4) and d['zero_d.f64'] == -0.25\n"
                           "with safe_open(sys.argv[1], 'np') as f: assert f.metadata()['note'] == 'hello'\n"
                           "save_file({'b': np.arange(6, dtype=np.float64).reshape(2, 3),\n"
                           "           'a': np.array([1, 2, 3], dtype=np.int64), 'c': np.array(7, dtype=np.uint8),\n"
                           "           'e': np.zeros((0,), dtype=np.float32), 'f': np.float32([0.5, -1.5])},\n"
                           "          sys.argv[2], metadata={'by': 'python'})\n";
  const int rc = std::system(("python3 " + script + " " + ours + " " + theirs).c_str());
  REQUIRE(rc == 0);
  SafetensorsContents c = load_safetensors(theirs);
  REQUIRE(c.metadata == Metadata{{"by", "python"}});
  REQUIRE(c.tensors.at("b").to_vector<double>() == std::vector<double>{0, 1, 2, 3, 4, 5});
  REQUIRE(c.tensors.at("b").shape() == Shape{2, 3});
  REQUIRE(c.tensors.at("a").to_vector<int64_t>() == std::vector<int64_t>{1, 2, 3});
  REQUIRE(c.tensors.at("c").dim() == 0);
  REQUIRE(c.tensors.at("c").to_vector<uint8_t>()[0] == 7);
  REQUIRE(c.tensors.at("e").numel() == 0);
  REQUIRE(c.tensors.at("f").to_vector<float>() == std::vector<float>{0.5f, -1.5f});
  for (const auto& p : {ours, theirs, script}) std::remove(p.c_str());
  rmdir(dir.c_str());
}

TEST_CASE("safetensors: a file truncated at any offset is rejected", "[checkpoint][safetensors]") {
  const std::string bytes = encode_safetensors(sample_tensors(), {{"k", "v"}});
  for (size_t n = 0; n < bytes.size(); ++n) {
    INFO("truncated to " << n << " of " << bytes.size() << " bytes");
    REQUIRE_THROWS_AS(decode_safetensors(bytes.data(), n, "bad.safetensors"), std::runtime_error);
  }
}

TEST_CASE("safetensors: every flipped byte, header or data, is rejected", "[checkpoint][safetensors]") {
  const std::string bytes = encode_safetensors(sample_tensors(), {{"k", "v"}});
  for (size_t i = 0; i < bytes.size(); ++i)
    for (unsigned char mask : {0xffu, 0x01u, 0x20u}) {
      std::string bad = bytes;
      bad[i] = static_cast<char>(bad[i] ^ mask);
      // A space of the padding that becomes another JSON space character changes nothing.
      if (bytes[i] == ' ' && (bad[i] == '\t' || bad[i] == '\n' || bad[i] == '\r')) continue;
      INFO("byte " << i << " xor " << int(mask));
      REQUIRE_THROWS_AS(decode_safetensors(bad.data(), bad.size(), "bad.safetensors"), std::runtime_error);
    }
}

TEST_CASE("safetensors: damaged headers are rejected naming the field", "[checkpoint][safetensors]") {
  const std::string d8(8, '\x01');
  auto one = [](const std::string& entry) { return "{\"t\":" + entry + "}"; };
  SECTION("header length") {
    std::string f = make_file(one(R"({"dtype":"U8","shape":[8],"data_offsets":[0,8]})"), d8);
    for (uint64_t huge : {uint64_t{1} << 63, uint64_t{200'000'000}, uint64_t{~0ull}, uint64_t{f.size() - 7}}) {
      std::string g = f;
      for (int i = 0; i < 8; ++i) g[i] = static_cast<char>((huge >> (8 * i)) & 0xff);
      require_rejected(g, {"header length"});
    }
    require_rejected(std::string(5, '\0'), {"header length"});
  }
  SECTION("JSON") {
    require_rejected(make_file("{\"t\":", ""), {"header", "JSON"});
    require_rejected(make_file("[1,2]", ""), {"header", "object"});
    require_rejected(make_file(std::string("{\"\xff\":1}"), ""), {"header", "JSON"});
    require_rejected(make_file("", ""), {"header"});
  }
  SECTION("dtype") {
    require_rejected(make_file(one(R"({"dtype":"BF16","shape":[4],"data_offsets":[0,8]})"), d8), {"'t'.dtype", "BF16"});
    require_rejected(make_file(one(R"({"dtype":"f32","shape":[2],"data_offsets":[0,8]})"), d8), {"'t'.dtype"});
    require_rejected(make_file(one(R"({"dtype":4,"shape":[2],"data_offsets":[0,8]})"), d8), {"'t'.dtype"});
    require_rejected(make_file(one(R"({"shape":[2],"data_offsets":[0,8]})"), d8), {"'t'.dtype"});
  }
  SECTION("shape") {
    require_rejected(make_file(one(R"({"dtype":"U8","shape":[-8],"data_offsets":[0,8]})"), d8), {"'t'.shape"});
    require_rejected(make_file(one(R"({"dtype":"U8","shape":[8.0],"data_offsets":[0,8]})"), d8), {"'t'.shape"});
    require_rejected(make_file(one(R"({"dtype":"U8","shape":"8","data_offsets":[0,8]})"), d8), {"'t'.shape"});
    require_rejected(make_file(one(R"({"dtype":"U8","shape":[1,1,1,1,1,1,1,1,8],"data_offsets":[0,8]})"), d8),
                     {"'t'.shape", "dimensions"});
    require_rejected(
        make_file(one(R"({"dtype":"F64","shape":[4294967296,4294967296,16],"data_offsets":[0,8]})"), d8),
        {"'t'.shape", "overflows int64"});
    // no elements, but strides that do not fit (issue 23: accepted before, then overflowed)
    require_rejected(make_file(one(R"({"dtype":"F32","shape":[0,4294967296,4294967296],"data_offsets":[0,0]})"),
                               std::string()),
                     {"'t'.shape", "overflows int64"});
    require_rejected(
        make_file(one(R"({"dtype":"F64","shape":[65536,65536,16],"data_offsets":[0,8]})"), d8),
        {"'t'.shape", "larger"});
    require_rejected(make_file(one(R"({"dtype":"F32","shape":[1],"data_offsets":[0,8]})"), d8),
                     {"'t'.data_offsets", "needs 4"});
  }
  SECTION("offsets") {
    require_rejected(make_file(one(R"({"dtype":"U8","shape":[8],"data_offsets":[0,9]})"), d8), {"'t'.data_offsets"});
    require_rejected(make_file(one(R"({"dtype":"U8","shape":[0],"data_offsets":[5,4]})"), d8), {"'t'.data_offsets"});
    require_rejected(make_file(one(R"({"dtype":"U8","shape":[8],"data_offsets":[0]})"), d8), {"'t'.data_offsets"});
    require_rejected(make_file(one(R"({"dtype":"U8","shape":[8],"data_offsets":[0,-8]})"), d8), {"'t'.data_offsets"});
    require_rejected(
        make_file(one(R"({"dtype":"U8","shape":[8],"data_offsets":[18446744073709551615,7]})"), d8), {"'t'.data_offsets"});
    // Overlap, gap, trailing bytes.
    require_rejected(make_file(R"({"a":{"dtype":"U8","shape":[6],"data_offsets":[0,6]},)"
                               R"("b":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}})",
                               d8),
                     {"'b'.data_offsets", "overlaps"});
    require_rejected(make_file(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                               R"("b":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})",
                               d8),
                     {"overlaps"});
    require_rejected(make_file(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                               R"("b":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}})",
                               d8),
                     {"'b'.data_offsets", "gap"});
    require_rejected(make_file(one(R"({"dtype":"U8","shape":[4],"data_offsets":[0,4]})"), d8), {"data section", "trailing"});
  }
  SECTION("entries and metadata") {
    require_rejected(make_file(one("[1]"), d8), {"tensor 't'"});
    require_rejected(make_file(one(R"({"dtype":"U8","shape":[8],"data_offsets":[0,8],"x":1})"), d8), {"'x'", "unknown"});
    require_rejected(make_file(R"({"__metadata__":{"a":1},"t":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}})", d8),
                     {"__metadata__.a"});
    require_rejected(make_file(R"({"__metadata__":[],"t":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}})", d8),
                     {"__metadata__"});
  }
  SECTION("checksums") {
    std::string good = encode_safetensors({{"t", Tensor::from_vector(std::vector<uint8_t>(8, 1), {8})}});
    std::string bad = good;
    bad.back() ^= 1;
    require_rejected(bad, {"lockstep.data_checksum", "mismatch"});
  }
}

TEST_CASE("safetensors: weights-only export keeps PyTorch names, a mismatched file leaves the model unchanged",
          "[checkpoint][safetensors]") {
  const std::string dir = lockstep_test::make_temp_dir("lockstep_st");
  const std::string path = dir + "/w.safetensors";
  auto a = nn::make_mlp(1);
  save_state_dict(path, a->state_dict(), {{"arch", "mlp"}});
  nn::StateDict sd = load_state_dict_file(path);
  REQUIRE(sd.keys() == a->state_dict().keys());
  REQUIRE(sd.keys()[0] == "0.weight");
  REQUIRE(sd.contains("1.num_batches_tracked"));
  auto b = nn::make_mlp(2);
  load_weights(path, *b);
  const nn::StateDict a_sd = a->state_dict();
  for (const auto& kv : a_sd.items()) REQUIRE(equal_bits(kv.second, b->state_dict().at(kv.first)));

  // A model of another width: the error names the file and the key; nothing changes.
  auto other = std::make_shared<nn::Sequential>(std::make_shared<nn::Linear>(784, 255));
  other->reset_parameters(3);
  const Tensor before = other->state_dict().at("0.weight").clone();
  try {
    load_weights(path, *other);
    FAIL("accepted a mismatched file");
  } catch (const std::runtime_error& e) {
    INFO(e.what());
    REQUIRE(std::string(e.what()).find(path) != std::string::npos);
    REQUIRE(std::string(e.what()).find("'0.weight'") != std::string::npos);
  }
  REQUIRE(equal_bits(other->state_dict().at("0.weight"), before));
  std::remove(path.c_str());
  rmdir(dir.c_str());
}
