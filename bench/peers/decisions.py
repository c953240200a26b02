"""Discrete decisions of a forward pass (ReLU on/off, max-pool routing), for parity.py.

A ReLU unit whose input lies within rounding of 0, or a max-pool window whose two largest
inputs lie within rounding of each other, can be decided one way by a float32 run and the
other way by the float64 reference. The gradient then jumps (the unit's derivative is 0 or
1; the window's gradient goes to one input or the other): a kink, not an error of either run.
parity.py judges such a step against the float64 step taken with lockstep's own decisions,
after checking that every decision it adopts is a tie in float64 (margin within float32
rounding, see `tie_bound`).

- `lockstep_decisions(ops_path, step, model)`: lockstep's decisions at a step, read from its
  op trace (`lockstep train --trace-ops FILE --trace-ops-values`): the sign of each ReLU's
  input and the first maximum (window order, as lockstep and PyTorch break ties) of each
  2 x 2 max-pool window, from the values lockstep computed.
- `forward(model, x, decisions)`: runs an nn.Sequential, with the given layers' decisions
  imposed (ReLU: y = x * mask; MaxPool2d: y = x at the given index), and returns the output,
  the decisions the run made on its own values and the inputs of the decision layers.
- `compare(ref_own, ref_inputs, forced, t32_inputs)`: which of the imposed decisions differ
  from the float64 run's own, with each one's float64 margin and the bound it is held to.
"""
import json

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def _layer_index(label):
    head = label.split(":", 1)[0]
    return int(head) if head.isdigit() else None


def read_forward_values(ops_path, step):
    """{layer index: float64 array} of the forward outputs at `step` (needs --trace-ops-values)."""
    records = []
    with open(ops_path) as f:
        header = json.loads(f.readline())
        for line in f:
            r = json.loads(line)
            if r.get("step") == step and r.get("dir") == "fwd":
                records.append(r)
    if header.get("values") is None:
        raise SystemExit(f"decisions: {ops_path} has no values (run lockstep with --trace-ops-values)")
    out = {}
    with open(ops_path + ".values", "rb") as v:
        for r in records:
            li = _layer_index(r.get("layer", ""))
            o = r["out"][0]
            if li is None or o is None or o[0] not in ("float32", "float64"):
                continue
            dt = np.dtype(np.float32 if o[0] == "float32" else np.float64)
            n = int(np.prod(o[1])) if o[1] else 1
            v.seek(o[3])
            out[li] = np.frombuffer(v.read(n * dt.itemsize), dt).reshape(o[1]).astype(np.float64)
    return out


def pool_index(x, k):
    """First-maximum flat index within the plane of each k x k, stride k window of x (N, C, H, W)."""
    n, c, h, w = x.shape
    oh, ow = h // k, w // k
    win = x[:, :, :oh * k, :ow * k].reshape(n, c, oh, k, ow, k).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, oh, ow, k * k)
    j = np.argmax(win, axis=-1)  # the first maximum, as lockstep's and PyTorch's `v > best` scan
    rows = np.arange(oh)[None, None, :, None] * k + j // k
    cols = np.arange(ow)[None, None, None, :] * k + j % k
    return rows * w + cols


def _pool_ok(mod):
    k, s = mod.kernel_size, mod.stride
    return (isinstance(k, int) and (s == k or s is None) and mod.padding == 0 and mod.dilation == 1
            and not mod.ceil_mode)


def decision_layers(model):
    return [i for i, m in enumerate(model) if isinstance(m, nn.ReLU) or (isinstance(m, nn.MaxPool2d) and _pool_ok(m))]


def lockstep_decisions(ops_path, step, model):
    """{layer index: ("relu", mask) or ("pool", index)} from lockstep's forward values at `step`."""
    vals = read_forward_values(ops_path, step)
    out = {}
    for i in decision_layers(model):
        if i - 1 not in vals:
            raise SystemExit(f"decisions: {ops_path}: no forward values of layer {i - 1} at step {step}")
        x = vals[i - 1]
        if isinstance(model[i], nn.ReLU):
            out[i] = ("relu", x > 0)
        else:
            out[i] = ("pool", pool_index(x, model[i].kernel_size))
    return out


def forward(model, x, decisions=None):
    """Runs `model` on x with `decisions` imposed; returns (output, own decisions, decision inputs)."""
    decisions = decisions or {}
    own, inputs = {}, {}
    h = x
    for i, m in enumerate(model):
        is_pool = isinstance(m, nn.MaxPool2d) and _pool_ok(m)
        if isinstance(m, nn.ReLU) or is_pool:
            xin = h.detach().double().numpy()
            inputs[i] = xin
            if isinstance(m, nn.ReLU):
                own[i] = ("relu", xin > 0)
            else:
                own[i] = ("pool", pool_index(xin, m.kernel_size))
        if i in decisions:
            kind, d = decisions[i]
            if kind == "relu":
                h = h * torch.from_numpy(d).to(h.dtype)
            else:
                n, c = h.shape[:2]
                idx = torch.from_numpy(d).reshape(n, c, -1)
                h = h.reshape(n, c, -1).gather(2, idx).reshape(d.shape)
        else:
            h = m(h)
    return h, own, inputs


def tie_bound(t32_input, ref_input):
    """The largest float32 rounding of a decision layer's input in PyTorch's own float32 run (absolute)."""
    return float(np.abs(t32_input - ref_input).max())


def compare(ref_own, ref_inputs, forced, t32_inputs, factor=8.0):
    """The imposed decisions that differ from the float64 run's own, each with its float64 margin.

    Returns a list of dicts {layer, kind, site, margin, bound, tie}; `tie` is True when the float64
    margin is within `factor` x the float32 rounding PyTorch makes in that tensor at this step.
    """
    flips = []
    for i, (kind, d) in forced.items():
        own = ref_own[i][1]
        x = ref_inputs[i]
        bound = factor * tie_bound(t32_inputs[i], x)
        for site in np.argwhere(own != d):
            site = tuple(int(v) for v in site)
            if kind == "relu":
                margin = abs(float(x[site]))
            else:
                n, c = site[0], site[1]
                plane = x[n, c].reshape(-1)
                margin = float(plane[own[site]] - plane[d[site]])
            flips.append({"layer": i, "kind": kind, "site": site, "margin": margin, "bound": bound,
                          "tie": margin <= bound})
    return flips
