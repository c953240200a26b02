#include "data/mnist.h"

#include <fstream>
#include <stdexcept>

#include "data/idx.h"
#include "lockstep/config.h"

namespace lockstep::data {

namespace {
bool exists(const std::string& path) { return std::ifstream(path).good(); }
}  // namespace

std::string mnist_file(const std::string& dir, MnistSplit split, bool labels) {
  std::string name = str_cat(dir, "/", split == MnistSplit::train ? "train" : "t10k",
                             labels ? "-labels-idx1-ubyte" : "-images-idx3-ubyte");
  // A build without zlib (LOCKSTEP_ZLIB=OFF) reads plain files only, so it never picks a ".gz".
  return LOCKSTEP_HAS_ZLIB && exists(name + ".gz") ? name + ".gz" : name;
}

bool mnist_available(const std::string& dir) {
  for (MnistSplit s : {MnistSplit::train, MnistSplit::test})
    for (bool labels : {false, true})
      if (!exists(mnist_file(dir, s, labels))) return false;
  return true;
}

std::shared_ptr<TensorDataset> load_mnist(const std::string& dir, MnistSplit split, const Normalize& norm) {
  const std::string image_path = mnist_file(dir, split, false), label_path = mnist_file(dir, split, true);
  Tensor bytes = read_idx_images(image_path);
  Tensor labels = read_idx_labels(label_path, 10);
  if (bytes.size(0) != labels.size(0))
    throw std::runtime_error(str_cat("[load_mnist] ", image_path, " has ", bytes.size(0), " images but ", label_path,
                                     " has ", labels.size(0), " labels"));
  if (bytes.size(1) != 28 || bytes.size(2) != 28)
    throw std::runtime_error(str_cat("[load_mnist] ", image_path, ": expected 28x28 images, got ", bytes.size(1),
                                     "x", bytes.size(2)));
  // Kept as bytes (47 MB for the training set instead of 188 as float32): read_into
  // normalises each sample through normalize_bytes's table, the same bits.
  return std::make_shared<TensorDataset>(bytes.reshape({bytes.size(0), 1, 28, 28}), labels, 10, norm);
}

}  // namespace lockstep::data
