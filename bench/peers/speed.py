#!/usr/bin/env python3
"""One epoch of the default MLP recipe (full 60k training set), lockstep vs PyTorch, one run.

Cells: batch 128 and 512 x threads 1 and 2 x {lockstep deterministic, lockstep fast,
PyTorch default, PyTorch use_deterministic_algorithms(True)}, each its own process.
samples/s is each program's own count: training steps only (forward, backward, optimizer
and scheduler), the data loading and the test-set evaluation excluded. Peak RSS is what each
child reports as peak_rss_mib: VmHWM of its /proc/self/status, the peak resident set of its
own address space, measured the same way in both programs. (This script used to take the
child's ru_maxrss from os.wait4, which printed 562 MiB for lockstep: Python starts a child
with vfork + exec, and Linux carries the parent's high-water mark into the child's
ru_maxrss across the exec, so every cell reported at least this script's own peak, torch
imported.) Prints a markdown table with the ratios det/torch (same
threads, same batch) and det/fast, and the raw JSON per cell.
Usage: speed.py --lockstep build/tools/lockstep [--epochs 1] [--out table.md]
       [--model cnn|lenet5 --batches 128 --max-steps 60]   (the convolutional recipes, shorter)
       [--rounds 3 --cells det,torch]   (on a loaded machine: the cells of a (batch, threads)
       pair run in turn, round after round, and each cell reports its median samples/s, so a
       slow spell hits every program; cells not listed print as "-")
"""
import statistics
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def run_cell(cmd):
    """(last-line JSON, peak RSS in MiB as the child reports it, wall seconds) of one child process."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, stdout=out, stderr=err, text=True)
        wall = time.perf_counter() - t0
        out.seek(0), err.seek(0)
        text, etext = out.read(), err.read()
    if proc.returncode != 0:
        sys.exit(f"speed: {' '.join(cmd)} failed ({proc.returncode}):\n{text[-1000:]}{etext[-1000:]}")
    res = json.loads(text.strip().splitlines()[-1])
    return res, res.get("peak_rss_mib"), wall


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lockstep", required=True)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--out", help="also write the markdown table here")
    p.add_argument("--json-out", help="also write every cell's JSON (a list) here")
    p.add_argument("--model", choices=["mlp", "cnn", "lenet5"], default="mlp")
    p.add_argument("--batches", default="128,512", help="batch sizes, comma separated")
    p.add_argument("--max-steps", type=int, default=0, help="stop each run after this many steps (0: the epochs)")
    p.add_argument("--rounds", type=int, default=1, help="runs per cell, interleaved; the median is reported")
    p.add_argument("--cells", default="det,fast,torch,torch_det", help="cells to run, comma separated")
    args = p.parse_args()
    import torch  # the twin's interpreter: fail early and clearly without it

    rows, raw = [], []
    for batch in (int(b) for b in args.batches.split(",")):
        for threads in (1, 2):
            common = ["--batch-size", str(batch), "--epochs", str(args.epochs), "--threads", str(threads),
                      "--model", args.model, "--max-steps", str(args.max_steps), "--test-subset", "1000"]
            cells = {
                "det": [args.lockstep, "train", *common, "--mode", "deterministic", "--json"],
                "fast": [args.lockstep, "train", *common, "--mode", "fast", "--json"],
                "torch": [sys.executable, os.path.join(HERE, "torch_twin.py"), *common],
                "torch_det": [sys.executable, os.path.join(HERE, "torch_twin.py"), *common, "--deterministic"],
            }
            wanted = args.cells.split(",")
            runs = {name: [] for name in cells if name in wanted}
            for rnd in range(args.rounds):
                for name in runs:
                    out, rss, wall = run_cell(cells[name])
                    runs[name].append((out["samples_per_sec"], rss))
                    raw.append({"batch": batch, "threads": threads, "cell": name, "round": rnd,
                                "wall_s": round(wall, 2), **out})
                    print(json.dumps(raw[-1]), flush=True)
            res = {name: (statistics.median(r[0] for r in rs), max(r[1] for r in rs)) for name, rs in runs.items()}
            for name in cells:
                res.setdefault(name, (float("nan"), float("nan")))
            rows.append((batch, threads, res))

    lines = ["| batch | threads | lockstep det | lockstep fast | PyTorch | PyTorch deterministic | det / PyTorch "
             "| det / PyTorch det | det / fast | peak RSS lockstep det / PyTorch (MiB) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    def rate(x):  # samples/s: "-" for a cell not run, thousands above 10 k
        return "-" if x != x else f"{x/1e3:.1f} k" if x >= 1e4 else f"{x:.0f}"

    def ratio(a, b):
        return "-" if a != a or b != b else f"{a/b:.2f}"

    for batch, threads, r in rows:
        s = {k: v[0] for k, v in r.items()}
        lines.append(f"| {batch} | {threads} | {rate(s['det'])} | {rate(s['fast'])} | {rate(s['torch'])} | "
                     f"{rate(s['torch_det'])} | **{ratio(s['det'], s['torch'])}** | "
                     f"{ratio(s['det'], s['torch_det'])} | **{ratio(s['det'], s['fast'])}** | "
                     f"{r['det'][1]:.0f} / {r['torch'][1]:.0f} |")
    table = "\n".join(lines)
    head = (f"{time.strftime('%Y-%m-%d %H:%M')}, --model {args.model}, {platform.node()}, {os.cpu_count()} CPUs, "
            f"torch {torch.__version__}, {args.rounds} round(s), "
            f"load average {os.getloadavg()[0]:.1f}")
    print(head)
    print(table)
    if args.out:
        with open(args.out, "w") as f:
            f.write(head + "\n\n" + table + "\n")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(raw, f, indent=1)


if __name__ == "__main__":
    main()
