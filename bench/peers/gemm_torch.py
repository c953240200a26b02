#!/usr/bin/env python3
"""bench_gemm's lockstep and OpenBLAS rows against torch.mm (oneMKL) on the same shapes and threads.

Each round runs bench_gemm once (the lockstep, lockstep_avx2 and openblas rows, JSON out)
and then this script as a torch worker in a fresh process (torch.mm into a preallocated
output, same shapes, same transposes, same thread counts, same timing: the mean wall time
of the calls after a warm-up, for about --min-time seconds). The rounds alternate so that a
slow spell of a shared machine falls on both; the table gives the median GFLOP/s over the
rounds and the ratios of those medians (> 1: faster than torch.mm). pct_peak is bench_gemm's,
against the measured FMA peak of the SIMD level each variant runs (AVX-512 for lockstep here).
Usage: gemm_torch.py --bench-gemm build/bench/bench_gemm [--rounds 3] [--min-time 0.5]
       [--json-out rows.json]      (run with the peers venv's python: scripts/setup-peers.sh)
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

NAME = re.compile(r"^(\w+)/M:(\d+)/N:(\d+)/K:(\d+)/op:(\w\w)/threads:(\d+)")


def torch_worker(cells, min_time):
    """GFLOP/s of torch.mm for each (M, N, K, op, threads) cell, one line of JSON."""
    import torch
    torch.manual_seed(0)
    out = []
    for m, n, k, op, threads in cells:
        torch.set_num_threads(threads)
        a = torch.rand(k, m) * 2 - 1 if op[0] == "t" else torch.rand(m, k) * 2 - 1
        b = torch.rand(n, k) * 2 - 1 if op[1] == "t" else torch.rand(k, n) * 2 - 1
        a_op = a.t() if op[0] == "t" else a
        b_op = b.t() if op[1] == "t" else b
        c = torch.empty(m, n)
        for _ in range(3):
            torch.mm(a_op, b_op, out=c)
        calls, t0 = 0, time.perf_counter()
        while True:
            torch.mm(a_op, b_op, out=c)
            calls += 1
            dt = time.perf_counter() - t0
            if dt >= min_time and calls >= 3:
                break
        out.append({"M": m, "N": n, "K": k, "op": op, "threads": threads,
                    "GFLOPS": 2.0 * m * n * k * calls / dt * 1e-9})
    print(json.dumps({"torch": torch.__version__, "mkl": torch.backends.mkl.is_available(), "rows": out}))


def run_bench_gemm(path, min_time, filt):
    env = dict(os.environ, OPENBLAS_THREAD_TIMEOUT="4", OMP_WAIT_POLICY="passive")
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        r = subprocess.run([path, f"--benchmark_filter={filt}", f"--benchmark_min_time={min_time}",
                            f"--benchmark_out={f.name}", "--benchmark_out_format=json"],
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            sys.exit(f"gemm_torch: {path} failed ({r.returncode}):\n{r.stderr[-2000:]}")
        return json.load(open(f.name))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bench-gemm", help="path of the bench_gemm binary")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--min-time", type=float, default=0.5)
    p.add_argument("--filter", default="^(lockstep|lockstep_avx2|openblas)/", help="bench_gemm rows to run")
    p.add_argument("--json-out", help="also write the table's rows as JSON here")
    p.add_argument("--torch-worker", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.torch_worker:
        return torch_worker(json.loads(args.torch_worker), args.min_time)
    if not args.bench_gemm:
        p.error("--bench-gemm is required")

    gflops = {}  # (lib, M, N, K, op, threads) -> [GFLOP/s per round]
    pct = {}
    context, torch_version = {}, "?"
    for r in range(args.rounds):
        res = run_bench_gemm(args.bench_gemm, args.min_time, args.filter)
        context = res["context"]
        cells = []
        for b in res["benchmarks"]:
            m = NAME.match(b["name"])
            if not m:
                continue
            lib, key = m.group(1), (int(m.group(2)), int(m.group(3)), int(m.group(4)), m.group(5), int(m.group(6)))
            gflops.setdefault((lib,) + key, []).append(b["GFLOPS"])
            pct.setdefault((lib,) + key, []).append(b["pct_peak"])
            if key not in cells:
                cells.append(key)
        w = subprocess.run([sys.executable, __file__, "--torch-worker", json.dumps(cells), "--min-time",
                            str(args.min_time)], check=True, capture_output=True, text=True)
        tw = json.loads(w.stdout.strip().splitlines()[-1])
        torch_version = tw["torch"]
        for row in tw["rows"]:
            key = (row["M"], row["N"], row["K"], row["op"], row["threads"])
            gflops.setdefault(("torch",) + key, []).append(row["GFLOPS"])
        print(f"gemm_torch: round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)

    med = {k: statistics.median(v) for k, v in gflops.items()}
    keys = sorted({k[1:] for k in med if k[0] == "torch"}, key=lambda k: (k[0] * k[1] * k[2], k[3], k[4]))
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, torch {torch_version} (torch.mm, oneMKL), OpenBLAS core "
          f"{context.get('openblas_core')} ({context.get('openblas_coretype_from')}), FMA peak GFLOP/s AVX-512 "
          f"{context.get('fma_peak_avx512_gflops_1t')} / {context.get('fma_peak_avx512_gflops_2t')} (1 / 2 threads), "
          f"AVX2 {context.get('fma_peak_avx2_gflops_1t')} / {context.get('fma_peak_avx2_gflops_2t')}, "
          f"{args.rounds} rounds, load average {os.getloadavg()[0]:.1f}")
    print("| M × N × K | op | threads | lockstep | lockstep % peak | OpenBLAS | torch.mm | lockstep / torch "
          "| OpenBLAS / torch | lockstep_avx2 / torch |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for k in keys:
        t = med[("torch",) + k]
        ls, ob, l2 = med.get(("lockstep",) + k), med.get(("openblas",) + k), med.get(("lockstep_avx2",) + k)
        pp = statistics.median(pct[("lockstep",) + k]) if ("lockstep",) + k in pct else None
        f = lambda v: f"{v:.1f}" if v is not None else "—"
        g = lambda v: f"{v / t:.2f}" if v is not None else "—"
        print(f"| {k[0]} × {k[1]} × {k[2]} | {k[3]} | {k[4]} | {f(ls)} | {f(pp)} | {f(ob)} | {t:.1f} | **{g(ls)}** "
              f"| {g(ob)} | {g(l2)} |")
        rows.append({"M": k[0], "N": k[1], "K": k[2], "op": k[3], "threads": k[4], "lockstep": ls,
                     "lockstep_pct_peak": pp, "openblas": ob, "lockstep_avx2": l2, "torch": t})
    if args.json_out:
        with open(args.json_out, "w") as fo:
            json.dump({"context": context, "torch": torch_version, "rows": rows}, fo, indent=1)


if __name__ == "__main__":
    main()
