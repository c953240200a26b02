#!/usr/bin/env python3
"""Parity of `lockstep train` and its PyTorch twin (torch_twin.py), step by step.

For each optimiser (SGD with momentum 0.9, AdamW), with Dropout off and BatchNorm in train
mode: lockstep trains --steps steps and exports its initial weights, batch order, per-step
trace and a final checkpoint; the twin replays the same weights and batches in float32, and
once more in float64 (the reference: what the run is without float32 rounding).

The issue's targets, reported as met or MISSED:
  - step 1 loss:        |l_torch - l_lockstep| <= 1e-5 * |l_lockstep|
  - steps 1..N (200):   max relative loss difference <= 1e-3
What fails the check (exit 1):
  - step 1 above 1e-5, or steps 1..10 above 1e-3 (before rounding differences have grown);
  - over all N steps, lockstep further from the float64 reference than 3x PyTorch float32 is
    (loss: max relative difference, floor 1e-3; final weights: per tensor, relative 2-norm
    of the difference, floor 1e-4). Training amplifies last-bit differences chaotically
    (PyTorch with 2 threads drifts from itself with 1 thread by ~2e-2 in 200 steps here), so
    "agrees to float32 rounding" is measured against what float32 rounding does to PyTorch.
Exits 77 when PyTorch cannot be imported (the ctest entry reports that as skipped).
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch  # noqa: F401  (the twin needs it; check here to skip cleanly)
except ImportError as e:
    print(f"parity: skipped, no PyTorch/numpy in {sys.executable}: {e}")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import peer_io  # noqa: E402

RECIPES = {
    "sgd": ["--optimizer", "sgd", "--lr", "0.05", "--momentum", "0.9", "--weight-decay", "0.0005"],
    "adamw": ["--optimizer", "adamw", "--lr", "0.001", "--weight-decay", "0.05"],
}


def read_trace(path):
    losses = {}
    with open(path) as f:
        for line in f:
            if line.strip():
                rec = json.loads(line)
                losses[int(rec["step"])] = float(rec["loss"])
    return losses


def run(cmd, what):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sys.stderr.write(f"parity: {what} failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
        sys.exit(1)
    return json.loads(r.stdout.strip().splitlines()[-1])


def rel_norm(a, b):
    """||a - b|| / ||b|| in float64 (0 when both are 0)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    nb = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / nb) if nb > 0 else float(np.linalg.norm(a))


def max_rel(a, b, steps):
    return np.array([abs(a[s] - b[s]) / abs(b[s]) for s in steps])


def compare(args, name, work):
    common = RECIPES[name] + ["--dropout", "0", "--batch-size", str(args.batch_size), "--epochs", str(args.epochs),
                              "--max-steps", str(args.steps), "--subset", str(args.subset),
                              "--test-subset", str(args.test_subset), "--hidden", args.hidden,
                              "--model", args.model, "--channels", args.channels]
    f = lambda n: os.path.join(work, n)  # noqa: E731
    lres = run([args.lockstep, "train", *common, "--threads", "1", "--seed", str(args.seed),
                "--export-init", f("init.safetensors"), "--export-order", f("order.safetensors"),
                "--trace", f("lockstep.jsonl"), "--save", f("ckpt"), "--no-fsync", "--json"], "lockstep train")
    twin = [sys.executable, os.path.join(HERE, "torch_twin.py"), *common, "--threads", "1",
            "--init", f("init.safetensors"), "--order", f("order.safetensors")]
    tres = run(twin + ["--trace", f("torch.jsonl"), "--weights-out", f("torch.safetensors")], "torch_twin.py")
    run(twin + ["--float64", "--no-eval", "--trace", f("f64.jsonl"), "--weights-out", f("f64.safetensors")],
        "torch_twin.py --float64")
    lloss, tloss, dloss = read_trace(f("lockstep.jsonl")), read_trace(f("torch.jsonl")), read_trace(f("f64.jsonl"))
    steps = sorted(lloss)
    if steps != sorted(tloss) or steps != sorted(dloss) or len(steps) != args.steps:
        print(f"parity [{name}]: step lists differ: lockstep {len(lloss)}, torch {len(tloss)}, float64 {len(dloss)}")
        return False
    rel = max_rel(tloss, lloss, steps)
    l_ref, t_ref = max_rel(lloss, dloss, steps).max(), max_rel(tloss, dloss, steps).max()
    target1, target_n = rel[0] <= 1e-5, rel.max() <= 1e-3
    early = rel[:10].max() <= 1e-3
    loss_ok = l_ref <= max(3 * t_ref, 1e-3)

    ckpts = sorted(glob.glob(os.path.join(f("ckpt"), "*.safetensors")))
    lw = {k[len("model."):]: v for k, v in peer_io.read_safetensors(ckpts[-1]).items() if k.startswith("model.")}
    tw, dw = peer_io.read_safetensors(f("torch.safetensors")), peer_io.read_safetensors(f("f64.safetensors"))
    rows, weights_ok = [], True
    for k in sorted(lw):
        if lw[k].dtype != np.float32:  # num_batches_tracked: exact
            weights_ok &= bool(np.array_equal(lw[k], tw[k]))
            continue
        lt, ld, td = rel_norm(lw[k], tw[k]), rel_norm(lw[k], dw[k]), rel_norm(tw[k], dw[k])
        absmax = float(np.abs(lw[k].astype(np.float64) - tw[k]).max())
        weights_ok &= ld <= max(3 * td, 1e-4)
        rows.append((k, lt, absmax, ld, td))

    word = lambda ok: "met" if ok else "MISSED"  # noqa: E731
    print(f"parity [{args.model} {name}], {len(steps)} steps: loss rel diff lockstep vs torch: step 1 {rel[0]:.2e} "
          f"(target <= 1e-5: {word(target1)}), steps 1-10 max {rel[:10].max():.2e}, "
          f"steps 1-{len(steps)} max {rel.max():.2e} (target <= 1e-3: {word(target_n)}), median {np.median(rel):.2e}")
    print(f"    vs the float64 run, max rel loss diff: lockstep {l_ref:.2e}, PyTorch float32 {t_ref:.2e}")
    print(f"    {'tensor':22s} {'rel2 l-vs-t':>12s} {'max|l-t|':>10s} {'rel2 l-vs-f64':>14s} {'rel2 t-vs-f64':>14s}")
    for k, lt, absmax, ld, td in rows:
        print(f"    {k:22s} {lt:12.2e} {absmax:10.2e} {ld:14.2e} {td:14.2e}")
    summary = {"optimizer": name, "steps": len(steps), "step1_rel": float(rel[0]), "max_rel_10": float(rel[:10].max()),
               "max_rel": float(rel.max()), "median_rel": float(np.median(rel)), "lockstep_vs_f64": float(l_ref),
               "torch_vs_f64": float(t_ref), "target_step1_met": bool(target1), "target_200_met": bool(target_n),
               "weights_rel2_max": max(r[1] for r in rows), "weights_ok": bool(weights_ok),
               "lockstep_test_accuracy": lres.get("test_accuracy"), "torch_test_accuracy": tres.get("test_accuracy")}
    print(json.dumps(summary))
    ok = bool(target1 and early and loss_ok and weights_ok)
    print(f"parity [{name}]: {'PASS' if ok else 'FAIL'}")
    return ok


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lockstep", required=True, help="path of the lockstep program")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--subset", type=int, default=60000)
    p.add_argument("--test-subset", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--hidden", default="256,128")
    p.add_argument("--model", choices=["mlp", "cnn", "lenet5"], default="mlp")
    p.add_argument("--channels", default="32,64", help="--model cnn: conv channels")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--optimizers", default="sgd,adamw")
    p.add_argument("--keep", help="keep the run files in this directory")
    args = p.parse_args()
    torch.set_num_threads(1)
    ok = True
    for name in args.optimizers.split(","):
        if args.keep:
            work = os.path.join(args.keep, name)
            os.makedirs(work, exist_ok=True)
            ok &= compare(args, name, work)
        else:
            with tempfile.TemporaryDirectory(prefix="lockstep-parity-") as work:
                ok &= compare(args, name, work)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
