// Dataset readers (IDX plain and gzipped, CSV, MNIST directories), in-memory datasets,
// subsets, splits and normalisation. Every malformed input must give an exception whose
// message names the file and the problem -- never a crash.
#include <catch2/catch.hpp>

#include "lockstep/config.h"
#if LOCKSTEP_HAS_ZLIB
#include <zlib.h>
#endif

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/random.h"
#include "data/csv.h"
#include "data/dataset.h"
#include "data/idx.h"
#include "data/mnist.h"
#include "test_util.h"

using namespace lockstep;
using namespace lockstep::data;
namespace fs = std::filesystem;

namespace {

// A fresh directory per test case under the system temp dir, removed afterwards.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name) {
    path = fs::temp_directory_path() / ("lockstep_data_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

void write_file_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

void write_text(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

#if LOCKSTEP_HAS_ZLIB  // the cross builds have none (LOCKSTEP_ZLIB=OFF): plain IDX files only
std::vector<uint8_t> gzip(const std::vector<uint8_t>& in) {
  z_stream zs{};
  REQUIRE(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::vector<uint8_t> out(deflateBound(&zs, in.size()) + 64);
  zs.next_in = const_cast<Bytef*>(in.data());
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&zs, Z_FINISH) == Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}
#endif

// An IDX file: magic 0x000008<dims>, big-endian sizes, then `data`.
std::vector<uint8_t> idx_bytes(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& data,
                               uint8_t type = 0x08) {
  std::vector<uint8_t> b = {0, 0, type, static_cast<uint8_t>(dims.size())};
  for (uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(d >> s));
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

std::vector<uint8_t> iota_bytes(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * 7);
  return v;
}

// Runs f, which must throw E with a message containing every one of `parts`.
template <typename E, typename F>
void require_error(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
  } catch (const E& e) {
    std::string msg = e.what();
    INFO("message: " << msg);
    for (const auto& p : parts) CHECK(msg.find(p) != std::string::npos);
    return;
  }
  FAIL("expected an exception containing " << parts.front());
}

}  // namespace

#if LOCKSTEP_HAS_ZLIB
TEST_CASE("idx: plain and gzipped files read back exactly", "[data]") {
  TempDir dir("idx_ok");
  const std::vector<uint8_t> pixels = iota_bytes(3 * 2 * 4), labels = {0, 9, 3};
  write_file_bytes(dir.file("img"), idx_bytes({3, 2, 4}, pixels));
  write_file_bytes(dir.file("img.gz"), gzip(idx_bytes({3, 2, 4}, pixels)));
  write_file_bytes(dir.file("lab.gz"), gzip(idx_bytes({3}, labels)));
  // Two gzip members back to back (what `cat a.gz b.gz` makes) read as one stream.
  std::vector<uint8_t> whole = idx_bytes({3, 2, 4}, pixels), two = gzip({whole.begin(), whole.begin() + 10});
  std::vector<uint8_t> second = gzip({whole.begin() + 10, whole.end()});
  two.insert(two.end(), second.begin(), second.end());
  write_file_bytes(dir.file("two.gz"), two);

  for (const char* name : {"img", "img.gz", "two.gz"}) {
    Tensor t = read_idx_images(dir.file(name));
    REQUIRE(t.shape() == Shape{3, 2, 4});
    REQUIRE(t.dtype() == DType::u8);
    REQUIRE((t.to_vector<uint8_t>() == pixels));
  }
  Tensor l = read_idx_labels(dir.file("lab.gz"), 10);
  REQUIRE(l.dtype() == DType::i64);
  REQUIRE(l.to_vector<int64_t>() == std::vector<int64_t>{0, 9, 3});
}
#endif

TEST_CASE("idx: every malformed file gives an error naming the file", "[data]") {
  TempDir dir("idx_bad");
  const std::vector<uint8_t> pixels = iota_bytes(2 * 3 * 3);
  auto images = [&](const std::string& name) { return [name] { read_idx_images(name); }; };
  using RE = std::runtime_error;

  std::string missing = dir.file("no_such_file");
  require_error<RE>(images(missing), {missing, "cannot open"});

  write_file_bytes(dir.file("empty"), {});
  require_error<RE>(images(dir.file("empty")), {dir.file("empty"), "empty file"});

  write_file_bytes(dir.file("labels_as_images"), idx_bytes({2}, {1, 2}));
  require_error<RE>(images(dir.file("labels_as_images")),
                    {dir.file("labels_as_images"), "expected magic number 0x00000803", "got 0x00000801"});

  write_text(dir.file("text"), "hello, world\n");
  require_error<RE>(images(dir.file("text")), {dir.file("text"), "two zero bytes"});

  write_file_bytes(dir.file("float_type"), idx_bytes({1, 1, 1}, {0, 0, 0, 0}, 0x0D));
  require_error<RE>(images(dir.file("float_type")), {dir.file("float_type"), "data type 0x08", "0x0d"});

  write_file_bytes(dir.file("short_header"), {0, 0, 8, 3, 0, 0, 0, 2, 0, 0});
  require_error<RE>(images(dir.file("short_header")), {dir.file("short_header"), "truncated header"});

  std::vector<uint8_t> cut = idx_bytes({2, 3, 3}, pixels);
  cut.resize(cut.size() - 5);
  write_file_bytes(dir.file("truncated"), cut);
  require_error<RE>(images(dir.file("truncated")), {dir.file("truncated"), "truncated data", "2x3x3 = 18 bytes", "13"});

  std::vector<uint8_t> longer = idx_bytes({2, 3, 3}, pixels);
  longer.push_back(0);
  write_file_bytes(dir.file("longer"), longer);
  require_error<RE>(images(dir.file("longer")), {dir.file("longer"), "longer than the header"});

#if LOCKSTEP_HAS_ZLIB
  // gzip: cut in the middle, cut right after the magic, and corrupted compressed bytes.
  std::vector<uint8_t> gz = gzip(idx_bytes({2, 3, 3}, pixels));
  write_file_bytes(dir.file("cut.gz"), {gz.begin(), gz.begin() + static_cast<long>(gz.size() / 2)});
  require_error<RE>(images(dir.file("cut.gz")), {dir.file("cut.gz"), "truncated gzip"});
  write_file_bytes(dir.file("magic_only.gz"), {0x1f, 0x8b});
  require_error<RE>(images(dir.file("magic_only.gz")), {dir.file("magic_only.gz"), "gzip"});
  std::vector<uint8_t> bad = gz;
  for (size_t i = 12; i < bad.size() - 8; ++i) bad[i] ^= 0x5a;
  write_file_bytes(dir.file("corrupt.gz"), bad);
  require_error<RE>(images(dir.file("corrupt.gz")), {dir.file("corrupt.gz"), "corrupt gzip"});
  // A valid gzip stream whose CRC-32 trailer is wrong is corrupt too.
  std::vector<uint8_t> crc = gz;
  crc[crc.size() - 6] ^= 0xff;
  write_file_bytes(dir.file("crc.gz"), crc);
  require_error<RE>(images(dir.file("crc.gz")), {dir.file("crc.gz"), "corrupt gzip"});
#endif

  write_file_bytes(dir.file("labels"), idx_bytes({4}, {1, 2, 12, 3}));
  require_error<RE>([&] { read_idx_labels(dir.file("labels"), 10); },
                    {dir.file("labels"), "label 12 at index 2", "[0, 10)"});
  REQUIRE(read_idx_labels(dir.file("labels")).numel() == 4);  // no class count: no check
}

#if LOCKSTEP_HAS_ZLIB
TEST_CASE("mnist: a directory of small files loads, mismatches name both files", "[data]") {
  TempDir dir("mnist_small");
  const std::string d = dir.path.string();
  write_file_bytes(d + "/train-images-idx3-ubyte.gz", gzip(idx_bytes({3, 28, 28}, iota_bytes(3 * 784))));
  write_file_bytes(d + "/train-labels-idx1-ubyte.gz", gzip(idx_bytes({3}, {4, 0, 9})));
  write_file_bytes(d + "/t10k-images-idx3-ubyte", idx_bytes({2, 28, 28}, iota_bytes(2 * 784)));  // not gzipped
  write_file_bytes(d + "/t10k-labels-idx1-ubyte", idx_bytes({3}, {1, 2, 3}));                    // one too many
  REQUIRE(mnist_available(d));
  REQUIRE_FALSE(mnist_available(dir.file("nowhere")));

  auto train = load_mnist(d, MnistSplit::train);
  REQUIRE(train->size() == 3);
  REQUIRE(train->sample_shape() == Shape{1, 28, 28});
  REQUIRE(train->labels().to_vector<int64_t>() == std::vector<int64_t>{4, 0, 9});
  Example e = train->get(1);
  REQUIRE(e.label == 0);
  REQUIRE(e.image.data<float>()[1] == static_cast<float>((784 + 1) * 7 % 256) / 255.0f);

  require_error<std::runtime_error>([&] { load_mnist(d, MnistSplit::test); },
                                    {"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "2 images", "3 labels"});
  write_file_bytes(d + "/train-labels-idx1-ubyte.gz", gzip(idx_bytes({3}, {4, 10, 9})));
  require_error<std::runtime_error>([&] { load_mnist(d, MnistSplit::train); },
                                    {"train-labels-idx1-ubyte.gz", "label 10 at index 1"});
  require_error<std::runtime_error>([&] { load_mnist(dir.file("nowhere")); }, {"nowhere", "cannot open"});
}
#else
TEST_CASE("idx: a build without zlib names the gzip file and says to gunzip it", "[data][errors]") {
  TempDir dir("no_zlib");
  write_file_bytes(dir.file("img.gz"), {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3});  // a gzip header
  require_error<std::runtime_error>([&] { read_idx_images(dir.file("img.gz")); },
                                    {dir.file("img.gz"), "no zlib", "gunzip it first"});
}
#endif

TEST_CASE("csv: header, label column, blank lines and CRLF", "[data]") {
  TempDir dir("csv_ok");
  write_text(dir.file("a.csv"), "f0,f1,label\r\n1.5, -2 ,3\r\n\r\n0,1e-3,0\r\n+4,5,1\n\n");
  CsvOptions opt;
  opt.header = true;
  opt.label_column = -1;
  opt.num_classes = 4;
  auto ds = read_csv(dir.file("a.csv"), opt);
  REQUIRE(ds->size() == 3);
  REQUIRE(ds->sample_shape() == Shape{2});
  REQUIRE(ds->images().to_vector<float>() == std::vector<float>{1.5f, -2.f, 0.f, 1e-3f, 4.f, 5.f});
  REQUIRE(ds->labels().to_vector<int64_t>() == std::vector<int64_t>{3, 0, 1});

  write_text(dir.file("b.csv"), "7;1;2;3;4\n2;5;6;7;8\n");
  CsvOptions o2;
  o2.delimiter = ';';
  o2.sample_shape = {1, 2, 2};
  auto img = read_csv(dir.file("b.csv"), o2);
  REQUIRE(img->sample_shape() == Shape{1, 2, 2});
  REQUIRE(img->get(1).label == 2);
  REQUIRE(img->get(1).image.to_vector<float>() == std::vector<float>{5, 6, 7, 8});
}

TEST_CASE("csv: malformed files name the file and the line", "[data]") {
  TempDir dir("csv_bad");
  using RE = std::runtime_error;
  auto csv = [&](const std::string& name, const std::string& text, CsvOptions opt = {}) {
    write_text(dir.file(name), text);
    return [path = dir.file(name), opt] { read_csv(path, opt); };
  };
  require_error<RE>(csv("ragged.csv", "1,2,3\n4,5,6\n7,8\n"), {dir.file("ragged.csv") + ":3:", "expected 3 fields", "got 2"});
  require_error<RE>(csv("text.csv", "1,2,3\n4,abc,6\n"), {dir.file("text.csv") + ":2:", "field 2 'abc' is not a number"});
  require_error<RE>(csv("partial.csv", "1,2.5x,3\n"), {dir.file("partial.csv") + ":1:", "'2.5x'"});
  require_error<RE>(csv("emptyfield.csv", "1,,3\n"), {dir.file("emptyfield.csv") + ":1:", "field 2"});
  require_error<RE>(csv("nan.csv", "1,nan,3\n"), {dir.file("nan.csv") + ":1:", "'nan'"});
  require_error<RE>(csv("empty.csv", ""), {dir.file("empty.csv"), "empty file"});
  CsvOptions hdr;
  hdr.header = true;
  require_error<RE>(csv("header_only.csv", "a,b,c\n", hdr), {dir.file("header_only.csv"), "no data rows"});
  require_error<RE>(csv("frac_label.csv", "1.5,2,3\n"), {dir.file("frac_label.csv") + ":1:", "not a non-negative integer"});
  CsvOptions ten;
  ten.num_classes = 10;
  require_error<RE>(csv("range.csv", "1,2\n10,3\n", ten), {dir.file("range.csv") + ":2:", "label 10 is out of range"});
  CsvOptions far;
  far.label_column = 5;
  require_error<RE>(csv("col.csv", "1,2\n", far), {dir.file("col.csv"), "label column 5"});
  CsvOptions shape;
  shape.sample_shape = {3};
  require_error<std::invalid_argument>(csv("shape.csv", "1,2,3\n", shape), {dir.file("shape.csv"), "sample_shape"});
  require_error<RE>([&] { read_csv(dir.file("missing.csv")); }, {dir.file("missing.csv"), "cannot open"});
}

TEST_CASE("datasets: TensorDataset checks, Subset, normalisation", "[data]") {
  Tensor images = Tensor::arange(12).reshape({4, 3});
  Tensor labels = Tensor::from_vector(std::vector<int64_t>{0, 1, 2, 1}, {4});
  auto ds = std::make_shared<TensorDataset>(images, labels, 3);
  REQUIRE(ds->get(2).image.to_vector<float>() == std::vector<float>{6, 7, 8});
  REQUIRE_THROWS_AS(TensorDataset(images, labels, 2), std::invalid_argument);  // label 2 >= 2
  REQUIRE_THROWS_AS(TensorDataset(images, Tensor::from_vector(std::vector<int64_t>{0, 1}, {2})), std::invalid_argument);
  REQUIRE_THROWS_AS(ds->get(4), std::invalid_argument);

  Subset sub(ds, {3, 0});
  REQUIRE(sub.size() == 2);
  REQUIRE(sub.get(0).label == 1);
  REQUIRE(sub.get(1).image.to_vector<float>() == std::vector<float>{0, 1, 2});
  REQUIRE_THROWS_AS(Subset(ds, {4}), std::invalid_argument);

  Tensor bytes = Tensor::from_vector(std::vector<uint8_t>{0, 51, 255}, {3});
  REQUIRE(normalize_bytes(bytes).to_vector<float>() == std::vector<float>{0.f, 0.2f, 1.f});
  auto z = normalize_bytes(bytes, Normalize{true, 0.5f, 0.25f}).to_vector<float>();
  REQUIRE(z == std::vector<float>{(0.f - 0.5f) / 0.25f, (0.2f - 0.5f) / 0.25f, (1.f - 0.5f) / 0.25f});
  REQUIRE_THROWS_AS(normalize_bytes(bytes, Normalize{true, 0.f, 0.f}), std::invalid_argument);

  // Held as bytes: each sample normalised as it is read, the bits of normalize_bytes.
  Tensor px = Tensor::from_vector(std::vector<uint8_t>{0, 51, 255, 7, 128, 200}, {2, 3});
  const Normalize norm{true, 0.2860f, 0.3530f};
  TensorDataset held(px, Tensor::from_vector(std::vector<int64_t>{1, 0}, {2}), 2, norm);
  REQUIRE(held.holds_bytes());
  const std::vector<float> all = normalize_bytes(px, norm).to_vector<float>();
  REQUIRE(held.images().to_vector<float>() == all);
  float row[3];
  REQUIRE(held.read_into(1, row) == 0);
  REQUIRE(std::memcmp(row, all.data() + 3, sizeof row) == 0);
  REQUIRE_THROWS_AS(TensorDataset(images, labels, 3, norm), std::invalid_argument);  // float32 given as bytes
  const Tensor two = Tensor::from_vector(std::vector<int64_t>{0, 1}, {2});
  REQUIRE_THROWS_AS(TensorDataset(px, two, 2, Normalize{true, 0.f, 0.f}), std::invalid_argument);  // std 0
}

TEST_CASE("datasets: permutations and splits are pure functions of the seed", "[data][deterministic]") {
  const uint64_t s = stream_id("shuffle");
  std::vector<int64_t> p = permutation(1000, 7, s, 3);
  REQUIRE((p == permutation(1000, 7, s, 3)));
  REQUIRE((p != permutation(1000, 7, s, 4)));
  REQUIRE((p != permutation(1000, 8, s, 3)));
  std::vector<int64_t> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 1000; ++i) REQUIRE(sorted[i] == i);
  REQUIRE(permutation(0, 1, s).empty());
  REQUIRE(permutation(1, 1, s) == std::vector<int64_t>{0});

  // Fisher–Yates with unbiased draws: all 6 orders of 3 items about equally often.
  std::map<std::vector<int64_t>, int> counts;
  for (uint64_t e = 0; e < 6000; ++e) counts[permutation(3, 11, s, e)]++;
  REQUIRE(counts.size() == 6);
  for (auto& kv : counts) CHECK(std::abs(kv.second - 1000) < 150);
  for (uint32_t bound : {1u, 2u, 7u, 0x80000001u, 0xffffffffu})
    for (uint64_t pos = 0; pos < 200; ++pos) REQUIRE(uniform_below(bound, 1, s, pos) < bound);

  auto ds = std::make_shared<TensorDataset>(Tensor::zeros({100, 2}), Tensor::zeros({100}, DType::i64));
  Split a = random_split(ds, 20, 5), b = random_split(ds, 20, 5), c = random_split(ds, 20, 6);
  REQUIRE(a.train->size() == 80);
  REQUIRE(a.validation->size() == 20);
  REQUIRE((a.validation->indices() == b.validation->indices()));
  REQUIRE((a.validation->indices() != c.validation->indices()));
  std::set<int64_t> all(a.train->indices().begin(), a.train->indices().end());
  all.insert(a.validation->indices().begin(), a.validation->indices().end());
  REQUIRE(all.size() == 100);  // disjoint and covering
  REQUIRE(std::is_sorted(a.train->indices().begin(), a.train->indices().end()));
  REQUIRE_THROWS_AS(random_split(ds, 101, 5), std::invalid_argument);
}

TEST_CASE("mnist: the installed Fashion-MNIST files", "[data]") {
  if (!mnist_available()) {
    WARN("Fashion-MNIST not found in " << kFashionMnistDir << " (scripts/setup.sh installs it); skipped");
    return;
  }
  auto train = load_mnist(kFashionMnistDir, MnistSplit::train);
  auto test = load_mnist(kFashionMnistDir, MnistSplit::test, kFashionMnistNormalize);
  REQUIRE(train->size() == 60000);
  REQUIRE(test->size() == 10000);
  REQUIRE(train->images().shape() == Shape{60000, 1, 28, 28});
  for (auto [ds, per_class] : {std::pair{train, 6000}, std::pair{test, 1000}}) {
    std::vector<int> counts(10, 0);
    for (int64_t l : ds->labels().to_vector<int64_t>()) counts[static_cast<size_t>(l)]++;
    for (int c = 0; c < 10; ++c) REQUIRE(counts[c] == per_class);
  }
  // Pixels in [0, 1]; the documented mean/std are the training set's to 4 digits.
  double sum = 0, sum2 = 0, lo = 1, hi = 0;
  const Tensor train_images = train->images();  // normalised from the bytes now
  const float* x = train_images.data<float>();
  const int64_t n = train_images.numel();
  for (int64_t i = 0; i < n; ++i) sum += x[i], sum2 += double(x[i]) * x[i], lo = std::min(lo, double(x[i])), hi = std::max(hi, double(x[i]));
  const double mean = sum / n, std = std::sqrt(sum2 / n - mean * mean);
  REQUIRE(lo == 0.0);
  REQUIRE(hi == 1.0);
  CHECK(std::abs(mean - kFashionMnistNormalize.mean) < 5e-5);
  CHECK(std::abs(std - kFashionMnistNormalize.std) < 5e-5);
  // The standardised test set is the same pixels through (x - mean) / std.
  const float t0 = test->images().data<float>()[300];
  auto raw = read_idx_images(mnist_file(kFashionMnistDir, MnistSplit::test, false));
  REQUIRE(t0 == (static_cast<float>(raw.data<uint8_t>()[300]) / 255.0f - 0.2860f) / 0.3530f);
  // Held as bytes, normalised per sample: the same bits as normalising the whole split.
  REQUIRE(test->holds_bytes());
  const Tensor all = normalize_bytes(raw, kFashionMnistNormalize);
  std::vector<float> sample(784);
  for (int64_t i : {int64_t{0}, int64_t{4321}, int64_t{9999}}) {
    test->read_into(i, sample.data());
    REQUIRE(std::memcmp(sample.data(), all.data<float>() + i * 784, sizeof(float) * 784) == 0);
  }
}

// Regression tests for hostile headers and file types found by the reliability campaign
// (issue 23): sizes whose product wraps, a label beyond int64, directories and FIFOs.
TEST_CASE("idx: sizes whose product would wrap are rejected before any allocation", "[data][errors]") {
  TempDir dir("idx_wrap");
  using RE = std::runtime_error;
  // 16 bytes: magic 0x00000803 and 65536 x 16777216 x 16777216 images (2^64 bytes: wraps to 0)
  write_file_bytes(dir.file("wrap"), idx_bytes({65536, 16777216, 16777216}, {}));
  require_error<RE>([&] { read_idx_images(dir.file("wrap")); }, {dir.file("wrap"), "more than 2^40 bytes"});
  // a zero size holds no bytes, but the other sizes' strides would still overflow
  write_file_bytes(dir.file("zero"), idx_bytes({0, 4294967295u, 4294967295u}, {}));
  require_error<RE>([&] { read_idx_images(dir.file("zero")); }, {dir.file("zero"), "more than 2^40 bytes"});
}

TEST_CASE("idx: a directory or a FIFO is refused by type, without reading it", "[data][errors]") {
  TempDir dir("idx_type");
  using RE = std::runtime_error;
  fs::create_directories(dir.file("images-dir"));
  require_error<RE>([&] { read_idx_images(dir.file("images-dir")); }, {dir.file("images-dir"), "is a directory"});
  REQUIRE(::mkfifo(dir.file("fifo").c_str(), 0600) == 0);
  require_error<RE>([&] { read_idx_images(dir.file("fifo")); }, {dir.file("fifo"), "not a regular file"});
}

#if LOCKSTEP_HAS_ZLIB
TEST_CASE("idx: the gzip size trailer is a capped hint", "[data]") {
  std::vector<uint8_t> z = gzip(iota_bytes(1000));
  REQUIRE(gzip_reservation(z) == 1000);  // an honest trailer is used as it is
  const size_t n = z.size();
  z[n - 4] = z[n - 3] = z[n - 2] = 0xff, z[n - 1] = 0x3f;  // claims ~1 GiB
  REQUIRE(gzip_reservation(z) == 16 * n);
  REQUIRE(gzip_reservation({0x1f, 0x8b}) == 0);
}
#endif

TEST_CASE("csv: a label beyond int64's range is an error, not a conversion", "[data][errors]") {
  TempDir dir("csv_huge");
  write_text(dir.file("huge.csv"), "1e30,1\n");
  require_error<std::runtime_error>([&] { read_csv(dir.file("huge.csv")); },
                                    {dir.file("huge.csv") + ":1:", "not a non-negative integer"});
  write_text(dir.file("nan.csv"), "nan,1\n");
  require_error<std::runtime_error>([&] { read_csv(dir.file("nan.csv")); },
                                    {dir.file("nan.csv") + ":1:", "'nan' is not a number"});
}
