// Inverted dropout (kernels/dropout.h): y = x * (keep ? 1/(1-p) : 0), keep a pure function
// of (seed, stream, step, element index); dx = dy * the same factor from the saved mask.
#include "core/autograd.h"
#include "core/ops/dispatch.h"
#include "core/tensor.h"
#include "kernels/dropout.h"

namespace lockstep {

Tensor dropout(const Tensor& x_in, double p, bool training, uint64_t seed, uint64_t stream, uint64_t step,
               uint64_t index_offset) {
  const char* op = "dropout";
  LS_CHECK_ARG(x_in.defined(), op, "expected a defined input");
  LS_CHECK_ARG(p >= 0.0 && p <= 1.0, op, "expected a probability in [0, 1], got ", p);
  LS_CHECK_ARG(is_floating(x_in.dtype()), op, "expected a float input, got ", dtype_name(x_in.dtype()));
  LS_CHECK_ARG(step < (uint64_t{1} << 24) && index_offset + static_cast<uint64_t>(x_in.numel()) <= (uint64_t{1} << 40),
               op, "step must be < 2^24 and index_offset + elements at most 2^40, got step ", step, ", offset ",
               index_offset, " and ", x_in.numel(), " elements");
  if (!training || p == 0.0) return x_in;
  Tensor x = x_in.contiguous().detach();
  const int64_t n = x.numel();
  const float pf = static_cast<float>(p);
  const Device dev = x.device();
  Tensor y = Tensor::empty(x.shape(), x.dtype(), dev);
  Tensor mask = Tensor::empty(x.shape(), DType::u8, dev);
  dispatch_float(op, dev, x.dtype(), [&](auto on, auto t) {
    using T = decltype(t);
    uint8_t* m = mask.data<uint8_t>();
    LS_KERNEL(on, dropout_forward, y.data<T>(), m, x.data<T>(), n, pf, seed, stream, step, index_offset);
  });
  if (should_record({&x_in})) {
    record(y, op, {x_in}, [mask, pf, n, dt = x.dtype(), dev](const Tensor& g_in) {
      Tensor g = g_in.contiguous();
      Tensor dx = Tensor::empty(g.shape(), dt, g.device());
      dispatch_float("dropout_backward", dev, dt, [&](auto on, auto t) {
        using T = decltype(t);
        LS_KERNEL(on, dropout_backward, dx.data<T>(), g.data<T>(), mask.data<uint8_t>(), n, pf);
      });
      return std::vector<Tensor>{dx};
    });
  }
  return y;
}

}  // namespace lockstep
