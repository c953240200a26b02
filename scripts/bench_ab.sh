#!/usr/bin/env bash
# Paired A/B run of two builds of one Google Benchmark binary: rounds alternate A, B, B, A,
# ... so a slow spell of a shared machine falls on both, and the ratio is taken from the
# per-round medians of each benchmark. Prints one table (markdown) to stdout.
#
# usage: scripts/bench_ab.sh BEFORE_BINARY AFTER_BINARY [ROUNDS] [extra benchmark flags...]
#   e.g. scripts/bench_ab.sh build-old/bench/bench_mlp_step build/bench/bench_mlp_step 6 \
#          --benchmark_filter='train_step' --benchmark_min_time=0.5
set -euo pipefail
a=$1 b=$2 rounds=${3:-6}
shift $(( $# >= 3 ? 3 : $# ))
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for ((r = 0; r < rounds; ++r)); do
  # alternate the order each round: A B, B A, A B, ...
  if (( r % 2 == 0 )); then order="a b"; else order="b a"; fi
  for side in $order; do
    bin=$a; [ "$side" = b ] && bin=$b
    "$bin" --benchmark_format=json "$@" > "$out/$side.$r.json"
  done
done
python3 - "$out" "$rounds" <<'EOF'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
times = {"a": {}, "b": {}}
for side in "ab":
    for r in range(rounds):
        for bm in json.load(open(f"{out}/{side}.{r}.json"))["benchmarks"]:
            if bm.get("run_type", "iteration") != "iteration":
                continue
            scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[bm.get("time_unit", "ns")]
            times[side].setdefault(bm["name"], []).append(bm["real_time"] * scale)
unit = "ms"
print(f"| benchmark | before ({unit}, median of {rounds}) | after | after / before |")
print("|---|---|---|---|")
for name in times["a"]:
    if name not in times["b"]:
        continue
    ta, tb = statistics.median(times["a"][name]), statistics.median(times["b"][name])
    print(f"| {name} | {ta:.3f} | {tb:.3f} | {tb / ta:.3f} |")
EOF
