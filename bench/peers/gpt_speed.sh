#!/bin/bash
# The GPT speed table (docs/benchmarks.md, "GPT recipe against PyTorch eager"): training
# tokens/s of the default GPT (4 layers, width 128, context 128, batch 16, 5 steps) at 1 and
# 2 threads, lockstep deterministic and fast vs PyTorch eager (gpt_twin.py bench: 5 steps
# after a warm-up step); batch-1 greedy generation tokens/s (127 tokens after a 1-token
# prompt, KV cache on both sides). ROUNDS rounds (default 3), the programs interleaved
# within each round; each cell is the best of its rounds (the least disturbed run).
# Usage: gpt_speed.sh LOCKSTEP_PROGRAM [GPT_CHECKPOINT_DIR [PYTHON]]
# Without a checkpoint directory one is trained first (--max-steps 5; speed does not
# depend on the weights).
set -eu
L=$1 CK=${2:-} PY=${3:-/opt/lockstep-peers/bin/python}
R=${ROUNDS:-3}
here=$(dirname "$0")
num() { grep -o "\"$1\": *[0-9.e+-]*" | tail -1 | cut -d: -f2 | tr -d " "; }
best() { tr ' ' '\n' | grep . | sort -g | tail -1; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
if [ -z "$CK" ]; then
  CK=$work/ckpt
  "$L" train --model gpt --max-steps 5 --save "$CK" --json > /dev/null
fi
tv=$("$PY" -c 'import torch; print(torch.__version__)')
echo "| threads | what | lockstep deterministic | lockstep fast | PyTorch $tv | det / PyTorch | det / fast |"
echo "|---|---|---|---|---|---|---|"
for t in 1 2; do
  td="" tf="" pt="" pg="" gd="" gf=""
  for r in $(seq "$R"); do
    train() { "$L" train --model gpt --max-steps 5 --threads $t "$@" --json | tail -1 | num tokens_per_sec; }
    td="$td $(train)"
    tf="$tf $(train --mode fast)"
    "$PY" "$here/gpt_twin.py" bench --threads $t --steps 5 --gen-tokens 128 > "$work/torch.txt"
    pt="$pt $(grep '"train"' "$work/torch.txt" | num tokens_per_sec)"
    pg="$pg $(grep '"generate"' "$work/torch.txt" | num tokens_per_sec)"
    gen() {
      "$L" generate --checkpoint "$CK" --prompt "A" --max-new-tokens 127 --threads $t "$@" --json | num tokens_per_sec
    }
    gd="$gd $(gen)"
    gf="$gf $(gen --mode fast)"
  done
  row() {  # row WHAT DET FAST TORCH: the best of each cell's rounds and the two ratios
    awk -v t=$t -v w="$1" -v a="$(echo $2 | best)" -v b="$(echo $3 | best)" -v c="$(echo $4 | best)" \
      'BEGIN{printf "| %d | %s | %.0f | %.0f | %.0f | %.2f | %.2f |\n", t, w, a, b, c, a/c, a/b}'
  }
  row "train tokens/s" "$td" "$tf" "$pt"
  row "batch-1 generation tokens/s" "$gd" "$gf" "$pg"
  echo "(threads $t, every round: det train$td; fast train$tf; torch train$pt;" \
    "det gen$gd; fast gen$gf; torch gen$pg)" >&2
done
