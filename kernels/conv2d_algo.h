// The forward algorithms of conv2d's fast mode (kernels/conv2d.h), as cuDNN's
// cudnnConvolutionFwdAlgo_t: the autotuner picks one by timing unless one is pinned
// (set_conv2d_algo, core/ops.h). Deterministic mode always runs `canonical`.
#pragma once

namespace lockstep {

enum class Conv2dAlgo {
  autotune,     // time the applicable algorithms once per shape and run the fastest
  canonical,    // the deterministic implicit GEMM (kernels/conv2d.h's order)
  im2col_gemm,  // im2col + the fast-mode library GEMM (Eigen)
  direct,       // direct loops, taps outermost, mul + add (no fma)
  winograd,     // Winograd F(2x2, 3x3): 3x3, stride 1, dilation 1 only
};

inline const char* conv2d_algo_name(Conv2dAlgo a) {
  switch (a) {
    case Conv2dAlgo::autotune: return "autotune";
    case Conv2dAlgo::canonical: return "canonical";
    case Conv2dAlgo::im2col_gemm: return "im2col_gemm";
    case Conv2dAlgo::direct: return "direct";
    case Conv2dAlgo::winograd: return "winograd";
  }
  return "?";
}

}  // namespace lockstep
