#!/usr/bin/env python3
"""The PyTorch twin of `lockstep train`: the same model, data, batch order and hyper-parameters.

Model (--model): mlp, nn.Sequential(Linear(784, h1), BatchNorm1d(h1), ReLU(), Dropout(p),
Linear(h1, h2), BatchNorm1d(h2), ReLU(), Dropout(p), Linear(h2, 10)), the state-dict keys of
lockstep's nn::make_mlp; cnn, lockstep's nn::make_cnn (Unflatten to 1x28x28, per --channels
entry Conv2d(3x3, padding 1, no bias), BatchNorm2d, ReLU, MaxPool2d(2); Flatten; per --hidden
entry Dropout, Linear, ReLU; Dropout, Linear(., 10)); lenet5, nn::make_lenet5 (Conv2d(1, 6, 5,
padding 2), ReLU, MaxPool2d(2), Conv2d(6, 16, 5), ReLU, MaxPool2d(2), Flatten, Linear(400, 120),
ReLU, Linear(120, 84), ReLU, Linear(84, 10)). Both take the same N x 784 batches.
Initial weights from lockstep's --export-init (safetensors, read with numpy), or
PyTorch's own initialisation under torch.manual_seed(--seed) without it.
Data: Fashion-MNIST IDX files read and normalised exactly as lockstep does (peer_io.py).
Batches: the order lockstep used (--order, its --export-order file: "indices" into the
training file, "batch_sizes" per step), or a torch.randperm shuffle per epoch without it.
Optimiser: torch.optim.AdamW / Adam / SGD(momentum) over one parameter group, with
CosineAnnealingLR(T_max = planned steps or --max-steps, eta_min 0) stepped after every optimizer step.
Loss: F.cross_entropy (mean).

Outputs: --trace FILE, JSON Lines per step {"step", "loss" (%.9g), "loss_bits" (float32 hex),
"lr"}; --weights-out FILE, the final state dict as safetensors; the last stdout line is one
JSON object: steps, epoch, train_loss (mean of the last epoch's step losses), last_loss,
test_accuracy, samples_per_sec (training steps only:
forward, backward, optimizer and scheduler; the batch gather and evaluation are excluded),
epoch_samples_per_sec (the whole training loop, gather included), peak_rss_mib (VmHWM of
/proc/self/status, as `lockstep train --json` reports it: the peak resident set of this
process's own address space; getrusage's ru_maxrss would include the high-water mark of a
parent that started this process through vfork + exec, as Python's subprocess does).
"""
import argparse
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer_io  # noqa: E402


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--init", help="lockstep --export-init safetensors (initial weights)")
    p.add_argument("--order", help="lockstep --export-order safetensors (batch order)")
    p.add_argument("--model", choices=["mlp", "cnn", "lenet5"], default="mlp")
    p.add_argument("--channels", default="32,64", help="--model cnn: conv channels")
    p.add_argument("--hidden", default="256,128")
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--optimizer", choices=["sgd", "adam", "adamw"], default="adamw")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--momentum", type=float, default=0.0, help="SGD momentum")
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--betas", default="0.9,0.999")
    p.add_argument("--eps", type=float, default=1e-8)
    p.add_argument("--no-schedule", action="store_true", help="constant lr instead of cosine annealing")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: no limit)")
    p.add_argument("--subset", type=int, default=0, help="first N training images (0: all)")
    p.add_argument("--test-subset", type=int, default=0, help="first N test images (0: all)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--deterministic", action="store_true", help="torch.use_deterministic_algorithms(True)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--float64", action="store_true", help="train in float64 (a reference for float32 rounding)")
    p.add_argument("--trace", help="per-step losses, JSON Lines")
    p.add_argument("--weights-out", help="final state dict, safetensors")
    p.add_argument("--no-eval", action="store_true", help="skip the test-set evaluation")
    return p.parse_args(argv)


def make_cnn(channels, hidden, dropout):
    layers, c_in, side = [nn.Unflatten(1, (1, 28, 28))], 1, 28
    for c in channels:
        layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(), nn.MaxPool2d(2)]
        c_in, side = c, side // 2
    layers.append(nn.Flatten())
    width = c_in * side * side
    for h in hidden:
        layers += [nn.Dropout(dropout), nn.Linear(width, h), nn.ReLU()]
        width = h
    layers += [nn.Dropout(dropout), nn.Linear(width, 10)]
    return nn.Sequential(*layers)


def make_lenet5():
    return nn.Sequential(nn.Unflatten(1, (1, 28, 28)), nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120),
                         nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def make_model(hidden, dropout, model="mlp", channels=()):
    if model == "cnn":
        return make_cnn(channels, hidden, dropout)
    if model == "lenet5":
        return make_lenet5()
    layers, width = [], 784
    for h in hidden:
        layers += [nn.Linear(width, h), nn.BatchNorm1d(h), nn.ReLU(), nn.Dropout(dropout)]
        width = h
    layers.append(nn.Linear(width, 10))
    return nn.Sequential(*layers)


def load_init(model, path):
    tensors = peer_io.read_safetensors(path)
    sd = model.state_dict()
    missing = sorted(set(sd) - set(tensors))
    extra = sorted(set(tensors) - set(sd))
    if missing or extra:
        raise SystemExit(f"torch_twin: {path}: keys differ from the model's: missing {missing}, unexpected {extra}")
    for k, v in sd.items():
        if tuple(tensors[k].shape) != tuple(v.shape):
            raise SystemExit(f"torch_twin: {path}: {k} has shape {tensors[k].shape}, the model expects {tuple(v.shape)}")
        sd[k] = torch.from_numpy(tensors[k].copy()).to(v.dtype)
    model.load_state_dict(sd)


def batch_plan(args, n_train, epochs_steps):
    """List of index arrays, one per step."""
    if args.order:
        order = peer_io.read_safetensors(args.order)
        idx, sizes = order["indices"].astype(np.int64), order["batch_sizes"].astype(np.int64)
        if int(sizes.sum()) != idx.size:
            raise SystemExit(f"torch_twin: {args.order}: batch_sizes sum to {int(sizes.sum())}, indices has {idx.size}")
        if idx.size and (idx.min() < 0 or idx.max() >= n_train):
            raise SystemExit(f"torch_twin: {args.order}: indices outside [0, {n_train})")
        bounds = np.concatenate([[0], np.cumsum(sizes)])
        return [idx[bounds[i]:bounds[i + 1]] for i in range(sizes.size)]
    g = torch.Generator().manual_seed(args.seed)
    plan = []
    for _ in range(args.epochs):
        perm = torch.randperm(n_train, generator=g).numpy()
        plan += [perm[i:i + args.batch_size] for i in range(0, n_train, args.batch_size)]
    return plan


def f32_bits(x):
    return struct.unpack("<I", struct.pack("<f", x))[0]


def peak_rss_mib():
    """VmHWM of /proc/self/status in MiB (one decimal), or None where /proc is missing."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def main(argv):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.deterministic:
        torch.use_deterministic_algorithms(True)
    torch.manual_seed(args.seed)
    hidden = [int(h) for h in args.hidden.split(",") if h]
    channels = [int(c) for c in args.channels.split(",") if c]
    model = make_model(hidden, args.dropout, args.model, channels)
    if args.init:
        load_init(model, args.init)

    x_np, y_np = peer_io.load_split(args.data, "train")  # indices refer to the full file
    n_train = args.subset if args.subset > 0 else x_np.shape[0]
    x_all, y_all = torch.from_numpy(x_np), torch.from_numpy(y_np)
    if args.float64:
        model, x_all = model.double(), x_all.double()
    plan = batch_plan(args, n_train, args.epochs)
    if args.max_steps > 0:
        plan = plan[:args.max_steps]
    steps_per_epoch = math.ceil(n_train / args.batch_size)

    params = list(model.parameters())
    if args.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay)
    else:
        b1, b2 = (float(b) for b in args.betas.split(","))
        cls = torch.optim.AdamW if args.optimizer == "adamw" else torch.optim.Adam
        opt = cls(params, lr=args.lr, betas=(b1, b2), eps=args.eps, weight_decay=args.weight_decay)
    # T_max as lockstep train sets it: epochs x batches per epoch, or --max-steps if smaller
    t_max = args.epochs * steps_per_epoch
    if 0 < args.max_steps < t_max:
        t_max = args.max_steps
    sched = None if args.no_schedule else torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=t_max, eta_min=0.0)

    trace = open(args.trace, "w") if args.trace else None
    model.train()
    step_time, loss_value, epoch_losses = 0.0, float("nan"), []
    loop_start = time.perf_counter()
    for step, rows in enumerate(plan, start=1):
        idx = torch.from_numpy(rows)
        xb, yb = x_all.index_select(0, idx), y_all.index_select(0, idx)
        t0 = time.perf_counter()
        lr = opt.param_groups[0]["lr"]
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        if sched:
            sched.step()
        loss_value = loss.item()
        step_time += time.perf_counter() - t0
        if (step - 1) % steps_per_epoch == 0:
            epoch_losses = []
        epoch_losses.append(loss_value)
        if trace:
            trace.write(json.dumps({"step": step, "loss": float("%.9g" % loss_value),
                                    "loss_bits": "%08x" % f32_bits(loss_value), "lr": lr}) + "\n")
    loop_time = time.perf_counter() - loop_start
    if trace:
        trace.close()
    samples = int(sum(r.size for r in plan))

    accuracy = None
    if not args.no_eval:
        xt, yt = peer_io.load_split(args.data, "test", args.test_subset)
        model.eval()
        with torch.no_grad():
            xt = torch.from_numpy(xt)
            pred = model(xt.double() if args.float64 else xt).argmax(dim=1).numpy()
        accuracy = float((pred == yt).mean())
    if args.weights_out:
        peer_io.write_safetensors(args.weights_out, {k: v.detach().numpy() for k, v in model.state_dict().items()})
    summary = {
        "steps": len(plan),
        "epoch": math.ceil(len(plan) / steps_per_epoch) if steps_per_epoch else 0,
        "train_loss": float(np.mean(epoch_losses)) if epoch_losses else None,  # mean over the last epoch
        "last_loss": loss_value,
        "test_accuracy": accuracy,
        "samples_per_sec": samples / step_time if step_time > 0 else None,
        "epoch_samples_per_sec": samples / loop_time if loop_time > 0 else None,
        "peak_rss_mib": peak_rss_mib(),
        "threads": args.threads,
        "deterministic": args.deterministic,
        "torch": torch.__version__,
        "model": args.model,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main(sys.argv[1:])
