// The cross-process combine of synchronised BatchNorm's sums (batch_norm_synced,
// batch_norm2d_synced): runs `combine` on this process's sums and checks that it kept their
// length and type, so that a wrong combine cannot make the op write past its C channels.
#pragma once

#include "core/ops.h"
#include "core/tensor.h"

namespace lockstep {

// op names the calling op in the error; what names the sums ("sum x", ...).
inline Tensor combined_batch_sums(const char* op, const BatchSumCombine& combine, const Tensor& local,
                                  const char* what) {
  Tensor total = combine(local).contiguous();
  LS_CHECK_ARG(total.dtype() == DType::f32 && total.numel() == local.numel(), op, "combine of ", what,
               " returned ", total.str(), ", expected ", local.numel(), " float32 values");
  return total;
}

}  // namespace lockstep
