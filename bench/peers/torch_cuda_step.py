"""PyTorch peer of bench_cuda's BM_train_step: one training step of the same MLP
(784-256-128-10, BatchNorm1d, ReLU, Dropout 0.2, AdamW lr 1e-3) on the GPU at batch 128,
512 and 4096, with torch.use_deterministic_algorithms(True) and without.

Prints one JSON line per configuration: mode, batch, microseconds per step (median of
timed rounds, each ending with torch.cuda.synchronize()) and samples/s.
Usage: python3 torch_cuda_step.py [--rounds 50]
"""
import argparse
import json
import os
import statistics
import time

import torch
import torch.nn as nn


def make_mlp():
    return nn.Sequential(
        nn.Linear(784, 256), nn.BatchNorm1d(256), nn.ReLU(), nn.Dropout(0.2),
        nn.Linear(256, 128), nn.BatchNorm1d(128), nn.ReLU(), nn.Dropout(0.2),
        nn.Linear(128, 10))


def time_steps(batch, deterministic, rounds):
    torch.use_deterministic_algorithms(deterministic)
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.manual_seed(1)
    dev = torch.device("cuda")
    model = make_mlp().to(dev).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.rand(batch, 784, device=dev) * 2 - 1
    y = (torch.arange(batch, device=dev) * 7) % 10
    loss_fn = nn.CrossEntropyLoss()

    def step():
        loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(5):
        step()
    torch.cuda.synchronize()
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    us = statistics.median(times) * 1e6
    return {"peer": "pytorch", "torch": torch.__version__, "mode": "deterministic" if deterministic else "default",
            "batch": batch, "us_per_step": round(us, 1), "samples_per_s": round(batch / (us * 1e-6))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=50)
    args = ap.parse_args()
    # required by use_deterministic_algorithms for cuBLAS
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    print(json.dumps({"device": torch.cuda.get_device_name(0), "cuda": torch.version.cuda}))
    for deterministic in (True, False):
        for batch in (128, 512, 4096):
            print(json.dumps(time_steps(batch, deterministic, args.rounds)), flush=True)


if __name__ == "__main__":
    main()
