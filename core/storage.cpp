#include "core/storage.h"

#include "kernels/memory.h"

namespace lockstep {

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  data_ = device == Device::cpu ? host_alloc(nbytes) : cuda_alloc(nbytes);
}

Storage::~Storage() {
  if (device_ == Device::cpu)
    host_free(data_);
  else
    cuda_free(data_);
}

}  // namespace lockstep
