#!/usr/bin/env python3
"""Parity of `lockstep train` and its PyTorch twin (torch_twin.py), step by step.

For each optimiser (SGD with momentum 0.9, AdamW), with Dropout off and BatchNorm in train
mode, lockstep trains --steps steps, exporting its initial weights, batch order, per-step
trace and a checkpoint after every step. Two comparisons follow.

1. Step by step (what fails the check). For every step s, PyTorch takes one step from
   lockstep's own state after step s-1 (its checkpoint: weights, BatchNorm statistics,
   optimiser state), on the same batch with the same learning rate, once in float64 (the
   reference) and once in float32. lockstep's state after step s must be as close to the
   float64 step as PyTorch's float32 step is: per tensor, relative 2-norm of the difference
   <= max(3 x PyTorch float32's, 1e-6); and its step-s loss likewise (floor 1e-6). This checks
   the semantics of every op and of the optimiser at every step, and is immune to chaos.
   It resolves a per-step difference of 1e-6 of a tensor's norm: weight decay off by 10%
   (2.5e-6 on SGD's first step, 5e-6 on AdamW's) fails it; lockstep's worst measured here
   is 5.6e-7 (AdamW step 1, where lr*g/(|g|+eps) magnifies rounding in tiny gradients).
   Kinks: a ReLU input within rounding of 0 or a max-pool window whose two largest inputs
   are within rounding of each other may be decided one way by lockstep's float32 and the
   other by float64, and the gradient jumps (CNN: about one such tie a step among ~10^6
   windows). A step that misses the bound is re-run in lockstep from checkpoint s-1 with
   its op values traced (--trace-ops-values --trace-ops-steps 1), lockstep's decisions are
   read from them (decisions.py), and the step is judged again against float64 and PyTorch
   float32 both taking lockstep's decisions -- only if every decision that differs from
   float64's is a tie: its float64 margin within TIE_FACTOR x the largest float32 rounding
   PyTorch makes in that tensor at that step. Each such step is printed as a kink, with the
   sites and margins; a differing decision that is not a tie fails the check. A step that
   still misses is judged once more against PyTorch float32's spread: the same step taken in
   float32 with the batch's rows in SPREAD_ORDERS other orders (the same mathematics, other
   roundings), each tensor's bound from the largest of those distances. One float32 sample
   can sit far below the others where a step magnifies rounding (AdamW step 2 on a BatchNorm
   bias whose gradient is mostly cancellation: 3.0e-7 to 2.6e-6 over 8 orders). Each such
   step is printed with the tensors whose bound it widened.
2. Free-running (reported; only the first 10 steps can fail). PyTorch replays the whole run
   in float32 and in float64 from the same initial weights. The issue's targets, reported
   as met or MISSED:
     - step 1 loss:        |l_torch - l_lockstep| <= 1e-5 * |l_lockstep|   (fails the check)
     - steps 1..10:        max relative loss difference <= 1e-3, against PyTorch float32
                           or against the float64 run (fails the check when both miss: after
                           a kink either float32 run may be the one that left float64)
     - steps 1..N (200):   max relative loss difference <= 1e-3          (reported)
   Over hundreds of steps two float32 runs part ways for a reason that has nothing to do
   with either being wrong: ReLU's derivative jumps at 0, so when a pre-activation lies
   within rounding of 0 (one element in ~10^7 per step), one run takes the step with that
   unit on and the other with it off. Measured here (seed 1, SGD): at step 24 one
   BatchNorm output is +3.5e-7 in float64 and in lockstep, -7.4e-8 in PyTorch float32 from
   the same state; from there the runs differ by 1e-5 and grow to 4e-2 by step 200.
   Which float32 run lands on which side is luck, so the long run is reported, not judged.
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
import decisions  # noqa: E402
import peer_io  # noqa: E402
import torch_twin  # noqa: E402

SPREAD_ORDERS = 8  # batch orders PyTorch float32 re-takes a step in, when lockstep misses the bound at it
TIE_FACTOR = 16.0  # a decision is a tie when its float64 margin is within this x PyTorch float32's rounding
RECIPES = {
    "sgd": ["--optimizer", "sgd", "--lr", "0.05", "--momentum", "0.9", "--weight-decay", "0.0005"],
    "adamw": ["--optimizer", "adamw", "--lr", "0.001", "--weight-decay", "0.05"],
}


def read_trace(path, field="loss"):
    values = {}
    with open(path) as f:
        for line in f:
            if line.strip():
                rec = json.loads(line)
                values[int(rec["step"])] = float(rec[field])
    return values


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


def load_torch_state(model, opt, state, name):
    """Loads a lockstep checkpoint's model.* and optimizer.state.* into a twin model and its optimiser."""
    sd = model.state_dict()
    for k in sd:
        sd[k] = torch.from_numpy(state["model." + k].copy()).to(sd[k].dtype)
    model.load_state_dict(sd)
    params = list(model.parameters())
    for i, p in enumerate(params):
        key = f"optimizer.state.{i}."
        if name == "sgd":
            if key + "momentum_buffer" in state:
                opt.state[p]["momentum_buffer"] = torch.from_numpy(state[key + "momentum_buffer"].copy()).to(p.dtype)
        elif key + "exp_avg" in state:
            opt.state[p]["step"] = torch.tensor(float(state[key + "step"]), dtype=torch.float32)
            opt.state[p]["exp_avg"] = torch.from_numpy(state[key + "exp_avg"].copy()).to(p.dtype)
            opt.state[p]["exp_avg_sq"] = torch.from_numpy(state[key + "exp_avg_sq"].copy()).to(p.dtype)


def twin_step(args, name, state, lr, xb, yb, dtype, forced=None, info=None):
    """One PyTorch step from a lockstep state; returns ({name: float64 array}, loss).

    forced: decisions.forward's decisions to impose; info (a dict): gets the run's own decisions
    ("own") and the decision layers' inputs ("inputs")."""
    hidden = [int(h) for h in args.hidden.split(",") if h]
    channels = [int(c) for c in args.channels.split(",") if c]
    model = torch_twin.make_model(hidden, 0.0, args.model, channels).to(dtype)
    params = list(model.parameters())
    hp = dict(zip(RECIPES[name][::2], RECIPES[name][1::2]))
    wd = float(hp["--weight-decay"])
    if name == "sgd":
        opt = torch.optim.SGD(params, lr=lr, momentum=float(hp["--momentum"]), weight_decay=wd)
    else:
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    load_torch_state(model, opt, state, name)
    model.train()
    out, own, inputs = decisions.forward(model, xb.to(dtype), forced)
    if info is not None:
        info.update(own=own, inputs=inputs, model=model)
    loss = torch.nn.functional.cross_entropy(out, yb)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return {k: v.detach().double().numpy() for k, v in model.state_dict().items()}, loss.item()


def f32_spread(args, name, prev, cur, lr, xb, yb, ref, ref_loss, forced, step):
    """{tensor: PyTorch float32's largest distance from the float64 step over SPREAD_ORDERS orders of the batch}.

    The same step on the same rows in another order is the same mathematics with other float32
    roundings (the batch sums of BatchNorm, the loss and every weight gradient run in another
    order), so these distances sample float32's rounding error at this step. One sample can be
    far below the others where a step magnifies rounding: AdamW's lr*m/(sqrt(v)+eps) on a
    gradient that is mostly cancellation (a BatchNorm bias at step 2: PyTorch float32 from
    3.0e-7 to 2.6e-6 over 8 orders, lockstep 1.6e-6). Orders come from a generator seeded
    with the step; imposed decisions (kinks) are permuted with the rows."""
    g = torch.Generator().manual_seed(step)
    spread = {}
    for _ in range(SPREAD_ORDERS):
        perm = torch.randperm(len(yb), generator=g)
        f = {i: (kind, d[perm.numpy()]) for i, (kind, d) in forced.items()} if forced else None
        t32, t32_loss = twin_step(args, name, prev, lr, xb[perm], yb[perm], torch.float32, f)
        for k, _, td in judge(ref, ref_loss, t32, t32_loss, cur, 0.0)[0]:
            spread[k] = max(spread.get(k, 0.0), td)
    return spread


def bound_of(td):
    """The step-by-step bound on lockstep's distance from float64, given PyTorch float32's."""
    return max(3 * td, 1e-6)


def judge(ref, ref_loss, t32, t32_loss, cur, loss):
    """[(tensor, lockstep's distance, PyTorch float32's distance)] and the exact mismatches of one step."""
    checks = [("loss", abs(loss - ref_loss) / abs(ref_loss), abs(t32_loss - ref_loss) / abs(ref_loss))]
    exact = []
    for k, r in ref.items():
        got = cur["model." + k]
        if got.dtype != np.float32:  # num_batches_tracked: exact
            if not np.array_equal(got, r.astype(got.dtype)):
                exact.append(f"{k} is {got} (PyTorch {r})")
            continue
        checks.append((k, rel_norm(got, r), rel_norm(t32[k].astype(np.float32), r)))
    return checks, exact


def lockstep_step_decisions(args, name, work, s, model):
    """lockstep's ReLU and max-pool decisions at step s: step s re-run from checkpoint s-1, op values traced."""
    with tempfile.TemporaryDirectory(prefix="lockstep-parity-step-") as tmp:
        cmd = [args.lockstep, "train", *train_args(args, name), "--trace-ops", os.path.join(tmp, "step.ops"),
               "--trace-ops-values", "--trace-ops-steps", "1", "--no-fsync", "--json"]
        if s > 1:
            os.makedirs(os.path.join(tmp, "from"))
            ckpt = os.path.join(work, "ckpt", f"ckpt-{s - 1:012d}.safetensors")
            os.symlink(ckpt, os.path.join(tmp, "from", os.path.basename(ckpt)))
            cmd += ["--resume", os.path.join(tmp, "from")]
        run(cmd, f"lockstep train (step {s} re-run with --trace-ops-values)")
        return decisions.lockstep_decisions(os.path.join(tmp, "step.ops"), s, model)


def replay(args, name, work, lloss, llr):
    """Comparison 1 of the module docstring: every step from lockstep's own previous state.

    A step that misses the bound is judged again against the float64 step that makes lockstep's
    own ReLU and max-pool decisions (decisions.py), provided every decision where lockstep and
    float64 differ is a tie: its float64 margin (|input| of a ReLU, top minus chosen value of a
    max-pool window) within TIE_FACTOR x the largest float32 rounding PyTorch makes in that tensor
    at that step. The float32 bound is then PyTorch float32 taking the same decisions."""
    ckpts = sorted(glob.glob(os.path.join(work, "ckpt", "ckpt-*.safetensors")))
    init = {"model." + k: v for k, v in peer_io.read_safetensors(os.path.join(work, "init.safetensors")).items()}
    order = peer_io.read_safetensors(os.path.join(work, "order.safetensors"))
    idx, sizes = order["indices"].astype(np.int64), order["batch_sizes"].astype(np.int64)
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    x_np, y_np = peer_io.load_split(args.data, "train")
    x_all, y_all = torch.from_numpy(x_np), torch.from_numpy(y_np)
    steps = sorted(lloss)
    if len(ckpts) != len(steps):
        print(f"parity [{name}]: {len(ckpts)} checkpoints for {len(steps)} steps")
        return False, {}
    worst = {"ratio": 0.0}
    failures, kinks, widened = [], [], []
    prev = init
    for s in steps:
        cur = peer_io.read_safetensors(ckpts[s - 1])
        rows = torch.from_numpy(idx[bounds[s - 1]:bounds[s]])
        xb, yb = x_all.index_select(0, rows), y_all.index_select(0, rows)
        i64, i32 = {}, {}
        ref, ref_loss = twin_step(args, name, prev, llr[s], xb, yb, torch.float64, info=i64)
        t32, t32_loss = twin_step(args, name, prev, llr[s], xb, yb, torch.float32, info=i32)
        checks, exact = judge(ref, ref_loss, t32, t32_loss, cur, lloss[s])
        missed = [c for c in checks if c[1] > bound_of(c[2])]
        forced_now = None
        if (missed and not exact and args.decisions) or s in args.decisions_at:
            forced = lockstep_step_decisions(args, name, work, s, i64["model"])
            flips = decisions.compare(i64["own"], i64["inputs"], forced, i32["inputs"], TIE_FACTOR)
            where = ", ".join(f"{f['kind']} {f['layer']} {list(f['site'])} margin {f['margin']:.1e}" for f in flips)
            if not flips:
                n = sum(d[1].size for d in forced.values())
                print(f"parity [{args.model} {name}] step {s}: lockstep's {n} ReLU and max-pool decisions are "
                      f"float64's")
            elif not all(f["tie"] for f in flips):
                failures.append(f"step {s}: decisions differ from float64 beyond a tie ({where}; ties are margins "
                                f"<= {TIE_FACTOR:g} x PyTorch float32's largest rounding, "
                                f"{max(f['bound'] for f in flips) / TIE_FACTOR:.1e})")
            elif not missed:
                print(f"parity [{args.model} {name}] step {s}: {len(flips)} tie(s) decided otherwise than float64 "
                      f"({where}); the step is within the bound as it is")
            else:
                ref, ref_loss = twin_step(args, name, prev, llr[s], xb, yb, torch.float64, forced)
                t32, t32_loss = twin_step(args, name, prev, llr[s], xb, yb, torch.float32, forced)
                checks, exact = judge(ref, ref_loss, t32, t32_loss, cur, lloss[s])
                forced_now = forced
                kinks.append(f"step {s}: {len(flips)} tie(s) decided otherwise than float64 ({where}); judged "
                             f"with lockstep's decisions (first miss was {missed[0][0]}: {missed[0][1]:.2e} vs "
                             f"{missed[0][2]:.2e})")
        failures += [f"step {s}: {e}" for e in exact]
        if any(ld > bound_of(td) for _, ld, td in checks):
            spread = f32_spread(args, name, prev, cur, llr[s], xb, yb, ref, ref_loss, forced_now, s)
            judged = [(k, ld, max(td, spread[k])) for k, ld, td in checks]
            widened.append(f"step {s}: " + ", ".join(
                f"{k} {td:.1e} -> {spread[k]:.1e}" for k, ld, td in checks if ld > bound_of(td)))
            checks = judged
        for k, ld, td in checks:
            bound = bound_of(td)
            ratio = ld / bound
            if ratio > worst["ratio"]:
                worst = {"ratio": ratio, "step": s, "tensor": k, "lockstep": ld, "torch32": td}
            if ld > bound:
                failures.append(f"step {s}: {k}: lockstep {ld:.2e} from float64, PyTorch float32 {td:.2e}")
        prev = cur
    print(f"parity [{args.model} {name}] step by step, {len(steps)} steps from lockstep's own state: worst "
          f"{worst.get('tensor')} at step {worst.get('step')}: lockstep {worst.get('lockstep', 0):.2e} from the "
          f"float64 step, PyTorch float32 {worst.get('torch32', 0):.2e} (bound max(3x, 1e-6): "
          f"{worst['ratio']:.2f} of it); {len(kinks)} step(s) with ties decided otherwise than float64; "
          f"{len(widened)} step(s) judged against PyTorch float32's spread over {SPREAD_ORDERS + 1} batch orders")
    for k in kinks:
        print(f"    kink {k}")
    for w in widened:
        print(f"    spread {w}")
    for f in failures[:10]:
        print(f"    MISSED {f}")
    worst["kinks"] = kinks
    worst["spread"] = widened
    return not failures, worst


def train_args(args, name):
    """The `lockstep train` options of a parity run (also the twin's, but --threads and --seed)."""
    return RECIPES[name] + ["--dropout", "0", "--batch-size", str(args.batch_size), "--epochs", str(args.epochs),
                            "--max-steps", str(args.steps), "--subset", str(args.subset),
                            "--test-subset", str(args.test_subset), "--hidden", args.hidden,
                            "--model", args.model, "--channels", args.channels, "--threads", "1",
                            "--seed", str(args.seed)]


def compare(args, name, work):
    common = train_args(args, name)[:-4]  # less --threads 1 --seed S
    f = lambda n: os.path.join(work, n)  # noqa: E731
    lres = run([args.lockstep, "train", *train_args(args, name),
                "--export-init", f("init.safetensors"), "--export-order", f("order.safetensors"),
                "--trace", f("lockstep.jsonl"), "--save", f("ckpt"), "--save-every", "1", "--keep", "0", "--no-fsync",
                "--json"], "lockstep train")
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
    # Steps 1-10 pass when lockstep is within 1e-3 of PyTorch float32 or of the float64 run: a
    # tie decided differently (a kink) sends two float32 runs apart, and PyTorch's own float32
    # run may be the one that left the float64 trajectory (CNN AdamW: torch 2.15 by 2e-3 at step 10).
    early_f64 = max_rel(lloss, dloss, steps[:10]).max()
    early = rel[:10].max() <= 1e-3 or early_f64 <= 1e-3

    ckpts = sorted(glob.glob(os.path.join(f("ckpt"), "*.safetensors")))
    step_ok, worst = replay(args, name, work, lloss, read_trace(f("lockstep.jsonl"), "lr"))
    lw = {k[len("model."):]: v for k, v in peer_io.read_safetensors(ckpts[-1]).items() if k.startswith("model.")}
    tw, dw = peer_io.read_safetensors(f("torch.safetensors")), peer_io.read_safetensors(f("f64.safetensors"))
    rows = []
    for k in sorted(lw):
        if lw[k].dtype != np.float32:  # num_batches_tracked: exact
            continue
        lt, ld, td = rel_norm(lw[k], tw[k]), rel_norm(lw[k], dw[k]), rel_norm(tw[k], dw[k])
        absmax = float(np.abs(lw[k].astype(np.float64) - tw[k]).max())
        rows.append((k, lt, absmax, ld, td))

    word = lambda ok: "met" if ok else "MISSED"  # noqa: E731
    print(f"parity [{args.model} {name}] free-running, {len(steps)} steps: loss rel diff lockstep vs torch: step 1 {rel[0]:.2e} "
          f"(target <= 1e-5: {word(target1)}), steps 1-10 max {rel[:10].max():.2e}, "
          f"steps 1-{len(steps)} max {rel.max():.2e} (target <= 1e-3: {word(target_n)}), median {np.median(rel):.2e}")
    print(f"    steps 1-10: lockstep vs PyTorch float32 {rel[:10].max():.2e}, vs the float64 run {early_f64:.2e}, "
          f"PyTorch float32 vs float64 {max_rel(tloss, dloss, steps[:10]).max():.2e} (fails when both of "
          f"lockstep's are > 1e-3)")
    print(f"    vs the float64 run, max rel loss diff: lockstep {l_ref:.2e}, PyTorch float32 {t_ref:.2e}")
    print(f"    {'tensor':22s} {'rel2 l-vs-t':>12s} {'max|l-t|':>10s} {'rel2 l-vs-f64':>14s} {'rel2 t-vs-f64':>14s}")
    for k, lt, absmax, ld, td in rows:
        print(f"    {k:22s} {lt:12.2e} {absmax:10.2e} {ld:14.2e} {td:14.2e}")
    summary = {"optimizer": name, "steps": len(steps), "step1_rel": float(rel[0]), "max_rel_10": float(rel[:10].max()),
               "max_rel_10_vs_f64": float(early_f64),
               "max_rel": float(rel.max()), "median_rel": float(np.median(rel)), "lockstep_vs_f64": float(l_ref),
               "torch_vs_f64": float(t_ref), "target_step1_met": bool(target1), "target_200_met": bool(target_n),
               "weights_rel2_max": max(r[1] for r in rows), "step_by_step_ok": bool(step_ok),
               "step_by_step_worst": worst,
               "lockstep_test_accuracy": lres.get("test_accuracy"), "torch_test_accuracy": tres.get("test_accuracy")}
    print(json.dumps(summary))
    ok = bool(target1 and early and step_ok)
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
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist", help="Fashion-MNIST directory (the twin's)")
    p.add_argument("--optimizers", default="sgd,adamw")
    p.add_argument("--keep", help="keep the run files in this directory")
    p.add_argument("--no-decisions", dest="decisions", action="store_false",
                   help="judge every step against float64's own ReLU and max-pool decisions (no kink analysis)")
    p.add_argument("--decisions-at", default="", help="steps (comma separated) whose decisions are compared with "
                   "float64's whether or not they miss the bound (a check of the re-run)")
    args = p.parse_args()
    args.decisions_at = {int(v) for v in args.decisions_at.split(",") if v}
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
