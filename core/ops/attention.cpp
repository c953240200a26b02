// Scaled dot-product attention (formulas and orders in kernels/attention.h):
//   S = q k^T * scale (scale = 1/sqrt(D) by default), causal: key j visible to query t when
//   j <= t + (Tk - Tq);  P = softmax(S) over the visible keys;  out = P v
// Backward: dP = dOut v^T;  dS = P * (dP - rowsum(P * dP)) * scale;  dq = dS k;  dk = dS^T q;
//   dv = P^T dOut, every sum in increasing key or query order. P is kept for the backward
//   (B x H x Tq x Tk) when a gradient is needed.
// attention_cached: the same forward over the first kv_len[b] rows of a KV cache (no gradient).
// attention_qkv: the same op on a packed [B, T, 3C] projection (a GPT's c_attn output), with
//   the head split and merge done as two permuted copies inside the op instead of six
//   index_select / transpose / contiguous copies around it; same kernels, same bits.
#include <cmath>

#include "core/autograd.h"
#include "core/ops/dispatch.h"
#include "core/tensor.h"
#include "kernels/attention.h"

namespace lockstep {
namespace {

struct Dims {
  int64_t B = 1, H = 1, Tq = 0, Tk = 0, D = 0;
};

// q: [..., Tq, D], k, v: [..., Tk, D] with the same leading dims; 4-d: B x H x T x D.
Dims check(const char* op, const Tensor& q, const Tensor& k, const Tensor& v) {
  LS_CHECK_ARG(q.defined() && k.defined() && v.defined(), op, "expected defined q, k and v");
  LS_CHECK_ARG(is_floating(q.dtype()), op, "expected float q, got ", dtype_name(q.dtype()));
  for (const Tensor* t : {&k, &v})
    LS_CHECK_ARG(t->dtype() == q.dtype() && t->device() == q.device(), op, "k and v must have q's dtype and device (",
                 q.str(), "), got ", t->str());
  LS_CHECK_ARG(q.dim() >= 2 && k.dim() == q.dim() && v.dim() == q.dim(), op,
               "expected q [..., Tq, D], k and v [..., Tk, D] of one rank, got q ", shape_str(q.shape()), ", k ",
               shape_str(k.shape()), ", v ", shape_str(v.shape()));
  Dims d;
  const int64_t n = q.dim();
  for (int64_t i = 0; i < n - 2; ++i) {
    LS_CHECK_ARG(k.size(i) == q.size(i) && v.size(i) == q.size(i), op, "leading dims differ: q ",
                 shape_str(q.shape()), ", k ", shape_str(k.shape()), ", v ", shape_str(v.shape()));
    if (n == 4 && i == 1)
      d.H = q.size(i);
    else
      d.B *= q.size(i);
  }
  d.Tq = q.size(-2), d.Tk = k.size(-2), d.D = q.size(-1);
  LS_CHECK_ARG(k.size(-1) == d.D && v.size(-1) == d.D && v.size(-2) == d.Tk, op,
               "expected k and v [..., Tk, D] with q's D = ", d.D, ", got k ", shape_str(k.shape()), ", v ",
               shape_str(v.shape()));
  return d;
}

double default_scale(double scale, int64_t D) { return scale > 0 ? scale : 1.0 / std::sqrt(static_cast<double>(D)); }

}  // namespace

Tensor scaled_dot_product_attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, bool causal,
                                    double scale_in) {
  const char* op = "scaled_dot_product_attention";
  const Dims d = check(op, q_in, k_in, v_in);
  const double scale = default_scale(scale_in, d.D);
  const Tensor q = q_in.contiguous().detach(), k = k_in.contiguous().detach(), v = v_in.contiguous().detach();
  const Device dev = q.device();
  const bool grad = should_record({&q_in, &k_in, &v_in});
  Tensor out = Tensor::empty(q.shape(), q.dtype(), dev);
  Tensor p = grad ? Tensor::empty({d.B, d.H, d.Tq, d.Tk}, q.dtype(), dev) : Tensor();
  if (out.numel() > 0)
    dispatch_float(op, dev, q.dtype(), [&](auto on, auto t) {
      using T = decltype(t);
      LS_KERNEL(on, attention_forward, out.data<T>(), p.defined() ? p.data<T>() : nullptr, q.data<T>(), k.data<T>(),
                v.data<T>(), nullptr, d.B, d.H, d.Tq, d.Tk, d.D, causal, static_cast<T>(scale));
    });
  if (grad) {
    const bool nq = q_in.requires_grad(), nk = k_in.requires_grad(), nv = v_in.requires_grad();
    record(out, op, {q_in, k_in, v_in}, [=](const Tensor& g_in) {
      const Tensor g = g_in.contiguous();
      Tensor dq = nq ? Tensor::empty(q.shape(), q.dtype(), dev) : Tensor();
      Tensor dk = nk ? Tensor::empty(k.shape(), q.dtype(), dev) : Tensor();
      Tensor dv = nv ? Tensor::empty(v.shape(), q.dtype(), dev) : Tensor();
      if (g.numel() > 0 || k.numel() > 0)
        dispatch_float("scaled_dot_product_attention_backward", dev, q.dtype(), [&](auto on, auto t) {
          using T = decltype(t);
          auto ptr = [](Tensor& x) { return x.defined() ? x.data<T>() : nullptr; };
          LS_KERNEL(on, attention_backward, ptr(dq), ptr(dk), ptr(dv), g.data<T>(), q.data<T>(), k.data<T>(),
                    v.data<T>(), p.data<T>(), nullptr, d.B, d.H, d.Tq, d.Tk, d.D, causal, static_cast<T>(scale));
        });
      return std::vector<Tensor>{dq, dk, dv};
    });
  }
  return out;
}

Tensor attention_qkv(const Tensor& qkv_in, int64_t n_head, bool causal, double scale_in) {
  const char* op = "attention_qkv";
  LS_CHECK_ARG(qkv_in.defined() && qkv_in.dim() == 3, op, "expected qkv: B x T x 3C, got ",
               qkv_in.defined() ? shape_str(qkv_in.shape()) : "undefined");
  LS_CHECK_ARG(is_floating(qkv_in.dtype()), op, "expected float qkv, got ", dtype_name(qkv_in.dtype()));
  LS_CHECK_ARG(n_head >= 1 && qkv_in.size(2) % (3 * n_head) == 0, op, "expected qkv's last dim (",
               qkv_in.size(2), ") a multiple of 3 * n_head (n_head ", n_head, ")");
  const int64_t B = qkv_in.size(0), T = qkv_in.size(1), C = qkv_in.size(2) / 3, H = n_head, D = C / H;
  const int64_t n = B * H * T * D;  // one of q, k, v
  const double scale = default_scale(scale_in, D);
  const Device dev = qkv_in.device();
  const DType dt = qkv_in.dtype();
  const bool cpu = dev == Device::cpu;
  // [B, T, 3, H, D] -> [3, B, H, T, D]: q, k and v, each B x H x T x D, one after the other.
  Tensor heads;
  if (cpu && n > 0) {
    const Tensor src = qkv_in.contiguous();
    heads = Tensor::empty({3, B, H, T, D}, dt, dev);
    dispatch_float(op, dev, dt, [&](auto, auto t) {
      using T_ = decltype(t);
      attention_heads_from_rows_cpu(Exec::current(), heads.data<T_>(), src.data<T_>(), 3, B, T, H, D);
    });
  } else {
    heads = qkv_in.detach().reshape({B, T, 3, H, D}).permute({2, 0, 3, 1, 4}).contiguous();
  }
  const bool grad = should_record({&qkv_in});
  Tensor o = Tensor::empty({B, H, T, D}, dt, dev);
  Tensor p = grad ? Tensor::empty({B, H, T, T}, dt, dev) : Tensor();
  if (n > 0)
    dispatch_float(op, dev, dt, [&](auto on, auto t) {
      using T_ = decltype(t);
      const T_* h = heads.data<T_>();
      LS_KERNEL(on, attention_forward, o.data<T_>(), p.defined() ? p.data<T_>() : nullptr, h, h + n, h + 2 * n,
                nullptr, B, H, T, T, D, causal, static_cast<T_>(scale));
    });
  // [B, H, T, D] -> [B, T, H, D] = [B, T, C]
  Tensor out;
  if (cpu && n > 0) {
    out = Tensor::empty({B, T, C}, dt, dev);
    dispatch_float(op, dev, dt, [&](auto, auto t) {
      using T_ = decltype(t);
      attention_rows_from_heads_cpu(Exec::current(), out.data<T_>(), o.data<T_>(), 1, B, T, H, D, false);
    });
  } else {
    out = o.permute({0, 2, 1, 3}).contiguous().reshape({B, T, C});
  }
  if (grad) {
    record(out, op, {qkv_in}, [=](const Tensor& g_in) {
      Tensor g;
      if (cpu && n > 0) {
        const Tensor gc = g_in.contiguous();
        g = Tensor::empty({B, H, T, D}, dt, dev);
        dispatch_float(op, dev, dt, [&](auto, auto t) {
          using T_ = decltype(t);
          attention_heads_from_rows_cpu(Exec::current(), g.data<T_>(), gc.data<T_>(), 1, B, T, H, D);
        });
      } else {
        g = g_in.contiguous().reshape({B, T, H, D}).permute({0, 2, 1, 3}).contiguous();
      }
      Tensor d3 = Tensor::empty({3, B, H, T, D}, dt, dev);
      if (n > 0)
        dispatch_float("attention_qkv_backward", dev, dt, [&](auto on, auto t) {
          using T_ = decltype(t);
          T_* d = d3.data<T_>();
          const T_* h = heads.data<T_>();
          LS_KERNEL(on, attention_backward, d, d + n, d + 2 * n, g.data<T_>(), h, h + n, h + 2 * n, p.data<T_>(),
                    nullptr, B, H, T, T, D, causal, static_cast<T_>(scale));
        });
      // [3, B, H, T, D] -> [B, T, 3, H, D]. The + 0 keeps the bits of the split it replaces
      // (index_select's backward added each part into zeros, turning -0 into +0).
      if (cpu && n > 0) {
        Tensor dqkv = Tensor::empty({B, T, 3 * C}, dt, dev);
        dispatch_float(op, dev, dt, [&](auto, auto t) {
          using T_ = decltype(t);
          attention_rows_from_heads_cpu(Exec::current(), dqkv.data<T_>(), d3.data<T_>(), 3, B, T, H, D, true);
        });
        return std::vector<Tensor>{dqkv};
      }
      return std::vector<Tensor>{add(d3.permute({1, 3, 0, 2, 4}).contiguous(), 0.0).reshape({B, T, 3 * C})};
    });
  }
  return out;
}

Tensor attention_cached(const Tensor& q_in, const Tensor& k_cache, const Tensor& v_cache,
                        const std::vector<int64_t>& kv_len, bool causal, double scale_in) {
  const char* op = "attention_cached";
  LS_CHECK_ARG(q_in.defined() && q_in.dim() == 4, op, "expected q: B x H x Tq x D, got ",
               q_in.defined() ? shape_str(q_in.shape()) : "undefined");
  const Dims d = check(op, q_in, k_cache, v_cache);
  LS_CHECK_ARG(static_cast<int64_t>(kv_len.size()) == d.B, op, "expected ", d.B, " key counts, got ", kv_len.size());
  for (size_t b = 0; b < kv_len.size(); ++b)
    LS_CHECK_ARG(kv_len[b] >= 0 && kv_len[b] <= d.Tk, op, "row ", b, " has ", kv_len[b],
                 " keys, outside the cache's [0, ", d.Tk, "]");
  const double scale = default_scale(scale_in, d.D);
  const Tensor q = q_in.contiguous().detach(), k = k_cache.contiguous().detach(), v = v_cache.contiguous().detach();
  Tensor out = Tensor::empty(q.shape(), q.dtype(), q.device());
  if (out.numel() > 0)
    dispatch_float(op, q.device(), q.dtype(), [&](auto on, auto t) {
      using T = decltype(t);
      LS_KERNEL(on, attention_forward, out.data<T>(), static_cast<T*>(nullptr), q.data<T>(), k.data<T>(), v.data<T>(),
                kv_len.data(), d.B, d.H, d.Tq, d.Tk, d.D, causal, static_cast<T>(scale));
    });
  return out;
}

}  // namespace lockstep
