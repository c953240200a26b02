// SHA-256 against the FIPS 180-4 example vectors, the streaming interface against one-shot
// hashing, and the tensor/state-dict encodings (shape and dtype are part of the hash).
#include <catch2/catch.hpp>

#include <string>

#include "core/sha256.h"
#include "nn/models.h"
#include "test_util.h"

using namespace lockstep;

TEST_CASE("sha256: FIPS 180-4 example messages", "[sha256]") {
  CHECK(sha256_hex(std::string("")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex(std::string("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex(std::string("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")) ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(sha256_hex(std::string(1000000, 'a')) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("sha256: streaming in pieces of any size equals one update", "[sha256]") {
  std::string msg;
  for (int i = 0; i < 1000; ++i) msg += static_cast<char>((i * 131 + 7) & 0xff);
  const std::string want = sha256_hex(msg);
  for (size_t piece : {1u, 3u, 55u, 56u, 63u, 64u, 65u, 200u}) {
    Sha256 h;
    for (size_t i = 0; i < msg.size(); i += piece) h.update(msg.data() + i, std::min(piece, msg.size() - i));
    CHECK(h.hex_digest() == want);
  }
  Sha256 h;
  h.hex_digest();
  CHECK_THROWS_WITH(h.update("x"), Catch::Contains("[sha256]"));
}

TEST_CASE("sha256: tensor hash covers dtype, shape and every bit", "[sha256]") {
  std::vector<float> v{1, 2, 3, 4, 5, 6};
  Tensor a = Tensor::from_vector(v, {2, 3}), b = Tensor::from_vector(v, {3, 2});
  CHECK(sha256_hex(a) != sha256_hex(b));
  CHECK(sha256_hex(a) == sha256_hex(a.clone()));
  v[5] = std::nextafter(6.0f, 7.0f);
  CHECK(sha256_hex(a) != sha256_hex(Tensor::from_vector(v, {2, 3})));
  CHECK(sha256_hex(Tensor::from_vector(std::vector<int64_t>{0}, {1})) !=
        sha256_hex(Tensor::from_vector(std::vector<double>{0.0}, {1})));
}

TEST_CASE("sha256: state_dict_sha256 changes with one bit of one weight", "[sha256]") {
  auto m1 = nn::make_mlp(5), m2 = nn::make_mlp(5), m3 = nn::make_mlp(6);
  const std::string h1 = nn::state_dict_sha256(m1->state_dict());
  CHECK(h1.size() == 64);
  CHECK(h1 == nn::state_dict_sha256(m2->state_dict()));
  CHECK(h1 != nn::state_dict_sha256(m3->state_dict()));
  Tensor w = m2->state_dict().at("4.weight");
  w.data<float>()[17] = std::nextafter(w.data<float>()[17], 1.0f);
  CHECK(h1 != nn::state_dict_sha256(m2->state_dict()));
}
