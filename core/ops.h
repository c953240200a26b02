// Tensor operations. Each op checks its arguments once (throwing std::invalid_argument
// "[op] expected ..., got ..." with both shapes), makes inputs contiguous, allocates the
// output and dispatches on device and mode (base/mode.h) to a kernel in kernels/.
//
// Deterministic mode (default): bitwise reproducible across runs, thread counts, SIMD paths
// and batch composition; reductions follow the canonical orders of kernels/reduce_order.h.
// Fast mode: faster paths (library GEMM, completion-order reductions, autotuning) that give
// results within the tolerances stated in docs/determinism.md, but not reproducible bits.
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "base/reduction.h"
#include "kernels/conv2d_algo.h"

namespace lockstep {

class Tensor;

// ---- matrix products (core/ops/matmul.cpp, bmm.cpp) ----
// a: M x K (K x M if trans_a), b: K x N (N x K if trans_b) -> M x N; float32 or float64.
// With more than 2 dims (torch.matmul's batching; core/ops/bmm.cpp): a [..., M, K], b
// [..., K, N] with broadcast batch dims -> [..., M, N], one canonical GEMM per batch entry;
// the trans flags transpose the last two dims. [..., M, K] x [K, N] is one 2-D product of
// the rows. 1-d operands are not supported.
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false);
// a: B x M x K, b: B x K x N -> B x M x N (matmul with equal batch sizes).
Tensor bmm(const Tensor& a, const Tensor& b);
// x: [..., in], weight: out x in, bias: out (or undefined) -> [..., out] = x weight^T + bias
// (the leading dims are rows of one 2-D product).
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias);
// grad_weight (+)= grad_out^T x with the batch-order reduction (K = batch).
// grad_out: B x out, x: B x in, grad_weight: out x in (accumulated into when accumulate).
void linear_grad_weight(Tensor& grad_weight, const Tensor& grad_out, const Tensor& x, bool accumulate);

// ---- convolution (core/ops/conv.cpp; kernels/conv2d.h) ----
// Stride, padding and dilation as (h, w); groups divides both channel counts (groups = C
// with C/groups = 1 input channel per output: depthwise).
struct Conv2dArgs {
  int64_t stride[2] = {1, 1};
  int64_t padding[2] = {0, 0};
  int64_t dilation[2] = {1, 1};
  int64_t groups = 1;
  Conv2dArgs() = default;
  Conv2dArgs(int64_t stride_hw, int64_t padding_hw, int64_t dilation_hw = 1, int64_t groups_ = 1)
      : stride{stride_hw, stride_hw}, padding{padding_hw, padding_hw}, dilation{dilation_hw, dilation_hw},
        groups(groups_) {}
};
// x: N x C x H x W, weight: O x C/groups x kH x kW, bias: O (or undefined) -> N x O x OH x OW,
// OH = (H + 2 padding - dilation (kH - 1) - 1) / stride + 1. float32 or float64.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dArgs& args = {});
// Fast mode's forward algorithm: Conv2dAlgo::autotune (the default: time them per shape,
// cudnn.benchmark) or one pinned; deterministic mode ignores it and runs canonical.
void set_conv2d_algo(Conv2dAlgo algo);
Conv2dAlgo conv2d_algo();
Conv2dAlgo conv2d_last_algo();  // what the last conv2d forward ran

// ---- elementwise, with NumPy broadcasting (core/ops/elementwise.cpp) ----
// Float dtypes; both operands the same dtype and device.
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, double s);
Tensor mul(const Tensor& a, double s);
Tensor scale(const Tensor& a, double s);             // a * s
Tensor axpy(double alpha, const Tensor& x, const Tensor& y);  // fma(alpha, x, y), one rounding
// Comparisons: uint8 0/1 results.
Tensor gt(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);  // cond uint8

// ---- unary (core/ops/unary.cpp); exp/log/tanh are the project's own (base/math.h) ----
Tensor neg(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor gelu(const Tensor& x);  // tanh form: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
Tensor silu(const Tensor& x);  // x * sigmoid(x)

// ---- views and copies (core/ops/shape.cpp: Tensor's members as free functions) ----
Tensor reshape(const Tensor& x, const std::vector<int64_t>& shape);           // view when contiguous
Tensor transpose(const Tensor& x, int64_t d0, int64_t d1);                    // strided view
Tensor permute(const Tensor& x, const std::vector<int64_t>& dims);            // strided view
Tensor contiguous(const Tensor& x);                                           // packed copy if strided

// ---- indexing (core/ops/index.cpp; orders in kernels/index.h) ----
// Ids are int64 in [0, size of the indexed dim), else std::invalid_argument naming the op,
// the id, its position and the range. Sums into one destination (the backward of
// index_select / embedding / gather, and index_add / scatter_add) use the batch order over
// the source positions: no atomics, the same bits for any thread count and on CUDA.
// weight: V x C, ids: any shape -> [ids.shape..., C]; backward: dweight[v] = the batch-order
// sum of the gradient rows whose id is v (torch.nn.functional.embedding).
Tensor embedding(const Tensor& weight, const Tensor& ids);
// y = x with dim `dim` replaced by index's entries (index: 0-d or 1-d int64).
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
// y = x; y[.., index[i], ..] += src[.., i, ..] (src has x's shape with index.numel() at dim).
Tensor index_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);
// y[.., j, ..] = x[.., index[.., j, ..], ..]; index has x's rank and sizes but at dim.
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
// y = x; y[.., index[.., j, ..], ..] += src[.., j, ..]; src has index's shape.
Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);

// ---- reductions (core/ops/reduce.cpp) ----
// sum of all elements in the contiguous order -> 0-d tensor.
Tensor sum(const Tensor& x);
Tensor mean(const Tensor& x);
// Over one dim: the last dim uses the contiguous order, any other dim the batch order.
Tensor sum(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor mean(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor max(const Tensor& x, int64_t dim, bool keepdim = false);  // NaN propagates
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);  // int64; first maximum

// ---- softmax family over the last dim (core/ops/softmax.cpp) ----
Tensor softmax(const Tensor& x);
Tensor log_softmax(const Tensor& x);

// ---- normalisation over the last dim (core/ops/layernorm.cpp; kernels/layernorm.h) ----
// x: [..., C]; weight, bias: C or undefined. One row at a time (batch-invariant); the
// weight/bias gradients are batch-order sums over the rows.
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps = 1e-5);
Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps = 1e-6);

// ---- attention (core/ops/attention.cpp; kernels/attention.h) ----
// q: [..., Tq, D], k, v: [..., Tk, D] (4-d: B x H x T x D) -> [..., Tq, D];
// softmax(q k^T * scale) v, scale <= 0 meaning 1/sqrt(D); causal: query t sees keys
// j <= t + Tk - Tq (Tq == Tk: the usual lower triangle). Each query row is computed alone
// in a fixed key order: batch-invariant, and bitwise equal to the KV-cache path.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal = false,
                                    double scale = 0.0);
// The same on a packed projection: qkv [B, T, 3C] holds q, k, v side by side, each [B, T,
// C] with C = n_head heads of D; -> [B, T, C] (the heads merged back). Equal bit for bit to
// splitting qkv into B x H x T x D tensors, scaled_dot_product_attention and merging.
Tensor attention_qkv(const Tensor& qkv, int64_t n_head, bool causal = true, double scale = 0.0);
// Inference over a KV cache (core/kv_cache.h): q: B x H x Tq x D, the cache k, v: B x H x
// capacity x D of which row b holds kv_len[b] positions; q's rows are the last Tq of them.
// No gradient.
Tensor attention_cached(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                        const std::vector<int64_t>& kv_len, bool causal = true, double scale = 0.0);

// ---- neural-network functions (core/ops/loss.cpp, batchnorm.cpp, dropout.cpp) ----
// Cross-entropy from logits (N x C) and int64 class targets (N), PyTorch semantics with
// optional label smoothing; the mean and sum use the batch order (kernels/loss.h).
Tensor cross_entropy(const Tensor& logits, const Tensor& target, Reduction reduction = Reduction::mean,
                     double label_smoothing = 0.0);
// Mean squared error; x and target have the same shape; the target gets no gradient.
Tensor mse_loss(const Tensor& x, const Tensor& target, Reduction reduction = Reduction::mean);
// BatchNorm over x: N x C. training: batch statistics, and running_mean/running_var (when
// defined) are updated in place; otherwise the running statistics normalise.
// weight/bias: C or undefined (no affine).
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps);
// Inverted dropout; the mask is a pure function of (seed, stream, step, element index)
// (kernels/dropout.h). Identity when !training or p == 0. index_offset: the global index of
// x's first element when x is a worker's rows of a larger batch (0: x is the whole batch).
Tensor dropout(const Tensor& x, double p, bool training, uint64_t seed, uint64_t stream, uint64_t step,
               uint64_t index_offset = 0);
// Training-mode batch_norm over this process's rows of a batch of global_rows rows split
// across processes at kBatchChunk boundaries. `combine` maps this process's batch-order
// partial sums (float32 [k]) to the whole batch's sums, identically on every process
// (distributed/batch_tree.h). y, dx and the running statistics then equal batch_norm(training) on
// the whole batch bit for bit; the weight and bias gradients are this process's partial
// sums, combined afterwards like every other gradient. float32, CPU.
using BatchSumCombine = std::function<Tensor(const Tensor& local_sums)>;
Tensor batch_norm_synced(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                         const Tensor& bias, double momentum, double eps, int64_t global_rows,
                         const BatchSumCombine& combine);

// ---- convolutional-network layers over NCHW (core/ops/pool2d.cpp, batchnorm2d.cpp) ----
using Size2 = std::array<int64_t, 2>;  // (height, width)
// Max pooling, PyTorch semantics (floor mode, padding <= kernel / 2, no dilation): x: N x C x H x W
// -> N x C x OH x OW; ties go to the first element in window order, NaN propagates
// (kernels/pool2d.h). The indices (int64, ih * W + iw within the plane) come with _with_indices.
// Backward is a gather: each input element sums the gradients of the windows that chose it.
std::pair<Tensor, Tensor> max_pool2d_with_indices(const Tensor& x, Size2 kernel, Size2 stride, Size2 padding);
Tensor max_pool2d(const Tensor& x, Size2 kernel, Size2 stride, Size2 padding);
// Average pooling; count_include_pad: divide by the padded window's size (PyTorch's default).
Tensor avg_pool2d(const Tensor& x, Size2 kernel, Size2 stride, Size2 padding, bool count_include_pad = true);
// Adaptive average pooling to output_size (PyTorch's windows).
Tensor adaptive_avg_pool2d(const Tensor& x, Size2 output_size);
// BatchNorm2d: batch_norm with per-channel statistics over N x H x W (kernels/batchnorm2d.h).
Tensor batch_norm2d(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                    const Tensor& bias, bool training, double momentum, double eps);
// batch_norm_synced for N x C x H x W: global_rows is the global batch's sample count.
Tensor batch_norm2d_synced(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                           const Tensor& weight, const Tensor& bias, double momentum, double eps, int64_t global_rows,
                           const BatchSumCombine& combine);

// ---- operators ----
Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a);
Tensor operator+(const Tensor& a, double s);
Tensor operator*(const Tensor& a, double s);
Tensor operator*(double s, const Tensor& a);

// ---- whole-tensor comparisons (core/tensor.cpp) ----
bool equal_bits(const Tensor& a, const Tensor& b);  // same shape, dtype and bytes
std::string hash_hex(const Tensor& t);              // FNV-1a 64 of the bytes, for reports

}  // namespace lockstep
