#!/bin/bash
# The GPT speed table (docs/benchmarks.md): training tokens/s of the default GPT (4 layers,
# width 128, context 128, batch 16) at 1 and 2 threads, lockstep deterministic and fast vs
# PyTorch eager; batch-1 greedy generation tokens/s (127 tokens after a 1-token prompt,
# KV cache on both sides). One run, the rows interleaved by thread count.
# Usage: gpt_speed.sh LOCKSTEP_PROGRAM GPT_CHECKPOINT_DIR [PYTHON]
set -eu
L=$1 CK=$2 PY=${3:-/opt/lockstep-peers/bin/python}
here=$(dirname "$0")
num() { grep -o "\"$1\": *[0-9.e+-]*" | tail -1 | cut -d: -f2 | tr -d " "; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
echo "| threads | what | lockstep deterministic | lockstep fast | PyTorch $("$PY" -c 'import torch; print(torch.__version__)') | det / PyTorch | det / fast |"
echo "|---|---|---|---|---|---|---|"
for t in 1 2; do
  td=$("$L" train --model gpt --max-steps 5 --threads $t --json | tail -1 | num tokens_per_sec)
  tf=$("$L" train --model gpt --max-steps 5 --threads $t --mode fast --json | tail -1 | num tokens_per_sec)
  "$PY" "$here/gpt_twin.py" bench --threads $t --steps 5 --gen-tokens 128 > "$work/torch.txt"
  pt=$(grep '"train"' "$work/torch.txt" | num tokens_per_sec)
  pg=$(grep '"generate"' "$work/torch.txt" | num tokens_per_sec)
  gd=$("$L" generate --checkpoint "$CK" --prompt "A" --max-new-tokens 127 --threads $t --json | num tokens_per_sec)
  gf=$("$L" generate --checkpoint "$CK" --prompt "A" --max-new-tokens 127 --threads $t --mode fast --json | num tokens_per_sec)
  awk -v t=$t -v a="$td" -v b="$tf" -v c="$pt" 'BEGIN{printf "| %d | train tokens/s | %.0f | %.0f | %.0f | %.2f | %.2f |\n", t, a, b, c, a/c, a/b}'
  awk -v t=$t -v a="$gd" -v b="$gf" -v c="$pg" 'BEGIN{printf "| %d | batch-1 generation tokens/s | %.0f | %.0f | %.0f | %.2f | %.2f |\n", t, a, b, c, a/c, a/b}'
done
