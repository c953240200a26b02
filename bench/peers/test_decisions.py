#!/usr/bin/env python3
"""Checks of decisions.py (ctest peers_decisions; exit 77 without torch): pool_index is PyTorch's
max_pool2d index, ties going to the first; forward() with the run's own decisions imposed gives
the model's output and gradients bit for bit; imposing one flipped max-pool tie moves the
gradient to the other input and compare() reports it with its float64 margin, as a tie only
when the margin is within the bound."""
import os
import sys

try:
    import numpy as np
    import torch
    import torch.nn as nn
except ImportError as e:
    print(f"test_decisions: skipped, no PyTorch/numpy in {sys.executable}: {e}")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import decisions  # noqa: E402


def check(cond, what):
    if not cond:
        print(f"test_decisions: FAIL: {what}")
        sys.exit(1)


def main():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(3, 2, 6, 4, generator=g, dtype=torch.float64)
    x[0, 0, 0, 0] = x[0, 0, 1, 1] = 5.0  # an exact tie: the first in window order wins
    _, ti = torch.nn.functional.max_pool2d(x, 2, return_indices=True)
    check(np.array_equal(decisions.pool_index(x.numpy(), 2), ti.numpy()), "pool_index differs from PyTorch's indices")

    torch.manual_seed(5)  # the model's initialisation too: an unseeded one made the flipped window a tie at times
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(3 * 3 * 2, 4), nn.ReLU(), nn.Linear(4, 2)).double()
    check(decisions.decision_layers(model) == [1, 2, 5], "decision layers")
    y_ref = model(x)
    out, own, inputs = decisions.forward(model, x)
    check(torch.equal(out, y_ref), "forward() without decisions differs from the model")
    out2, _, _ = decisions.forward(model, x, own)
    model.zero_grad()
    out2.sum().backward()
    g_forced = model[0].weight.grad.clone()
    model.zero_grad()
    model(x).sum().backward()
    check(torch.equal(out2, y_ref) and torch.equal(g_forced, model[0].weight.grad),
          "imposing the run's own decisions changed the output or the gradient")

    # Flip one window of the pool to its second-largest input and impose it.
    kind, idx = own[2]
    # The first window (in index order) whose two largest inputs are both positive and apart, so
    # that the flip changes the output and its margin is not zero.
    pool_in = inputs[2]
    site = order = plane = None
    for n, c, r, q in np.ndindex(*idx.shape):
        p = pool_in[n, c].reshape(-1)
        win = [(2 * r + dr) * pool_in.shape[3] + 2 * q + dq for dr in (0, 1) for dq in (0, 1)]
        o = sorted(win, key=lambda i: -p[i])
        if p[o[1]] > 0 and p[o[0]] - p[o[1]] > 1e-3:
            site, order, plane = (n, c, r, q), o, p
            break
    check(site is not None, "no window with two positive, distinct inputs")
    check(idx[site] == order[0], "the window's own choice is its maximum")
    flipped = idx.copy()
    flipped[site] = order[1]
    forced = {2: ("pool", flipped)}
    out3, _, in3 = decisions.forward(model, x, forced)
    margin = float(plane[order[0]] - plane[order[1]])
    check(float((out3 - y_ref).detach().abs().max()) > 0 or margin == 0, "the flipped window changed nothing")
    t32 = {i: v + 1e-7 for i, v in inputs.items()}  # a float32 run 1e-7 away everywhere
    flips = decisions.compare(own, inputs, forced, t32, factor=8.0)
    check(len(flips) == 1 and flips[0]["site"] == site and flips[0]["kind"] == "pool", f"compare() found {flips}")
    check(abs(flips[0]["margin"] - margin) < 1e-15, "compare() margin")
    check(flips[0]["tie"] == (margin <= 8e-7), "compare() tie verdict")
    # the verdict turns on the bound: a bound above the margin makes it a tie, below it not
    wide = {i: v + margin for i, v in inputs.items()}
    check(decisions.compare(own, inputs, forced, wide, factor=2.0)[0]["tie"], "a margin within the bound is a tie")
    check(not decisions.compare(own, inputs, forced, wide, factor=0.5)[0]["tie"], "a margin beyond the bound is one")
    print("test_decisions: PASS")


if __name__ == "__main__":
    main()
