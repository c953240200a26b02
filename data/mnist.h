// MNIST / Fashion-MNIST from a directory holding the four IDX files (gzipped or not):
// train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz],
// t10k-labels-idx1-ubyte[.gz]. The default directory is where the Debian package
// dataset-fashion-mnist installs them.
#pragma once
#include <memory>
#include <string>

#include "data/dataset.h"

namespace lockstep::data {

inline const char* const kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

enum class MnistSplit { train, test };

// The path of one of the four files in dir: the ".gz" name if that file exists (and the
// build has zlib), else the plain name (which may not exist; the reader then names it).
std::string mnist_file(const std::string& dir, MnistSplit split, bool labels);

// True when all four files are present in dir.
bool mnist_available(const std::string& dir = kFashionMnistDir);

// One split as a dataset with 10 classes: images [N, 1, 28, 28] normalised by `norm`
// (pixels / 255, then optionally (x - mean) / std) as each sample is read, held as bytes
// (TensorDataset's uint8 form), labels int64 [N]. Throws
// std::runtime_error naming the file when a file is missing or malformed, when a label is
// outside [0, 10), or when the image and label files disagree on N.
std::shared_ptr<TensorDataset> load_mnist(const std::string& dir = kFashionMnistDir,
                                          MnistSplit split = MnistSplit::train, const Normalize& norm = {});

}  // namespace lockstep::data
