// A block of device memory shared by tensors that alias it.
#pragma once
#include <cstddef>
#include <memory>

#include "base/dtype.h"

namespace lockstep {

class Storage {
 public:
  Storage(size_t nbytes, Device device);  // uninitialised memory; throws on failure
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
};

}  // namespace lockstep
