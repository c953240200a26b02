// CPU loss kernels (kernels/loss.h). They are built from the softmax and reduction kernels,
// so cross_entropy(x, t) has the bits of nll(log_softmax(x), t) and every sum is the library's
// canonical one. Threads split the rows; a task's rows go to log_softmax / softmax in one
// call (a nested parallel_for runs on the calling thread), cross-entropy's in blocks of
// kLossScratch values, so it needs that much scratch per task, not N x C. The N per-row
// values are then summed in batch order (sum_cols_cpu on an N x 1 column).
#include "kernels/loss.h"

#include <algorithm>
#include <cassert>
#include <vector>

#include "base/parallel.h"
#include "kernels/reduce.h"
#include "kernels/softmax.h"

namespace lockstep {
namespace {

constexpr int64_t kLossGrainElems = 16384;  // elements per task, at least (MSE)
constexpr int64_t kLossGrainMath = 4096;    // logits per task, at least (one exp each)
constexpr int64_t kLossScratch = 16384;     // log-probabilities held per task (cross-entropy)

int64_t row_grain(int64_t cols) {
  return std::max<int64_t>(1, kLossGrainMath / std::max<int64_t>(cols, 1));
}

// out[0] = batch-order sum of v[0 .. n), divided by div when mean.
template <typename T>
void reduce_rows(const Exec& ex, T* out, const T* v, int64_t n, Reduction reduction, T div) {
  T total;
  sum_cols_cpu(ex, &total, v, n, 1, false);
  out[0] = reduction == Reduction::mean ? total / div : total;
}

template <typename T>
void ce_forward(const Exec& ex, T* out, const T* logits, const int64_t* target, int64_t N, int64_t C, T eps,
                Reduction red) {
  assert(C >= 1);
  std::vector<T> loss_buf(red == Reduction::none ? 0 : static_cast<size_t>(N));
  T* loss = red == Reduction::none ? out : loss_buf.data();
  const T a = T(1) - eps, b = eps / static_cast<T>(C);
  parallel_for(N, row_grain(C), [&](int64_t r0, int64_t r1) {
    // log_softmax of up to `rows` rows at a time (one call: per-row calls cost more than the
    // 10-class rows of the MLP), each row's bits independent of the others'.
    const int64_t rows = std::max<int64_t>(1, kLossScratch / C);
    std::vector<T> lp(static_cast<size_t>(std::min(rows, r1 - r0) * C));
    for (int64_t q0 = r0; q0 < r1; q0 += rows) {
      const int64_t q1 = std::min(r1, q0 + rows);
      log_softmax_forward_cpu(ex, lp.data(), logits + q0 * C, q1 - q0, C);
      for (int64_t i = q0; i < q1; ++i) {
        const int64_t t = target[i];
        assert(t >= 0 && t < C);
        const T* row = lp.data() + (i - q0) * C;
        const T nll = -row[t];
        if (eps == T(0)) {
          loss[i] = nll;
        } else {
          const T smooth = -sum_serial_cpu(ex, row, C);
          loss[i] = a * nll + smooth * b;
        }
      }
    }
  });
  if (red != Reduction::none) reduce_rows(ex, out, loss, N, red, static_cast<T>(N));
}

template <typename T>
void ce_backward(const Exec& ex, T* dlogits, const T* dout, const T* logits, const int64_t* target, int64_t N,
                 int64_t C, T eps, Reduction red) {
  assert(C >= 1);
  const T a = T(1) - eps, b = eps / static_cast<T>(C);
  T w_all = T(0);  // the weight shared by every row (mean, sum)
  if (red != Reduction::none) w_all = red == Reduction::mean ? dout[0] / static_cast<T>(N) : dout[0];
  parallel_for(N, row_grain(C), [&](int64_t r0, int64_t r1) {
    softmax_forward_cpu(ex, dlogits + r0 * C, logits + r0 * C, r1 - r0, C);  // all the task's rows at once
    for (int64_t i = r0; i < r1; ++i) {
      const int64_t t = target[i];
      assert(t >= 0 && t < C);
      const T w = red == Reduction::none ? dout[i] : w_all;
      T* g = dlogits + i * C;
      for (int64_t j = 0; j < C; ++j) g[j] = (g[j] - (j == t ? a + b : b)) * w;
    }
  });
}

template <typename T>
void mse_forward(const Exec& ex, T* out, const T* x, const T* y, int64_t N, int64_t D, Reduction red) {
  std::vector<T> sq_buf(red == Reduction::none ? 0 : static_cast<size_t>(N * D));
  T* sq = red == Reduction::none ? out : sq_buf.data();
  parallel_for(N * D, kLossGrainElems, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) {
      const T d = x[k] - y[k];
      sq[k] = d * d;
    }
  });
  if (red == Reduction::none) return;
  std::vector<T> row_sum(static_cast<size_t>(N));
  sum_rows_cpu(ex, row_sum.data(), sq, N, D);
  reduce_rows(ex, out, row_sum.data(), N, red, static_cast<T>(N * D));
}

template <typename T>
void mse_backward(T* dx, T* dy, const T* dout, const T* x, const T* y, int64_t N, int64_t D, Reduction red) {
  const T norm = red == Reduction::mean ? T(2) / static_cast<T>(N * D) : T(2);
  parallel_for(N * D, kLossGrainElems, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) {
      const T g = red == Reduction::none ? dout[k] : dout[0];
      const T v = (norm * (x[k] - y[k])) * g;
      dx[k] = v;
      if (dy) dy[k] = -v;
    }
  });
}

}  // namespace

template <typename T>
void cross_entropy_forward_cpu(const Exec& ex, T* out, const T* logits, const int64_t* target, int64_t N, int64_t C,
                               T label_smoothing, Reduction reduction) {
  ce_forward(ex, out, logits, target, N, C, label_smoothing, reduction);
}
template <typename T>
void cross_entropy_backward_cpu(const Exec& ex, T* dlogits, const T* dout, const T* logits, const int64_t* target,
                                int64_t N, int64_t C, T label_smoothing, Reduction reduction) {
  ce_backward(ex, dlogits, dout, logits, target, N, C, label_smoothing, reduction);
}
template <typename T>
void mse_forward_cpu(const Exec& ex, T* out, const T* x, const T* y, int64_t N, int64_t D, Reduction reduction) {
  mse_forward(ex, out, x, y, N, D, reduction);
}
template <typename T>
void mse_backward_cpu(const Exec&, T* dx, T* dy, const T* dout, const T* x, const T* y, int64_t N, int64_t D,
                      Reduction reduction) {
  mse_backward(dx, dy, dout, x, y, N, D, reduction);
}

#define LS_LOSS(T)                                                                                            \
  template void cross_entropy_forward_cpu<T>(const Exec&, T*, const T*, const int64_t*, int64_t, int64_t, T,  \
                                             Reduction);                                                      \
  template void cross_entropy_backward_cpu<T>(const Exec&, T*, const T*, const T*, const int64_t*, int64_t,   \
                                              int64_t, T, Reduction);                                         \
  template void mse_forward_cpu<T>(const Exec&, T*, const T*, const T*, int64_t, int64_t, Reduction);         \
  template void mse_backward_cpu<T>(const Exec&, T*, T*, const T*, const T*, const T*, int64_t, int64_t, Reduction);
LS_LOSS(float)
LS_LOSS(double)
#undef LS_LOSS

}  // namespace lockstep
