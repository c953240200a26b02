#!/bin/sh
# ctest entry point of the GPT twin check (label peers): a tiny GPT trained by lockstep for a
# few steps, greedy generation with --logits-out, then bench/peers/gpt_twin.py check loads
# the checkpoint into PyTorch by name and compares every logits row. Exit 77 (skipped)
# without a Python that imports torch and numpy, or without the fortunes text.
# Usage: run_gpt_twin.sh LOCKSTEP_PROGRAM
here=$(dirname "$0")
text=/usr/share/games/fortunes/fortunes
[ -r "$text" ] || { echo "gpt twin: skipped, no $text"; exit 77; }
for py in "$LOCKSTEP_PEERS_PYTHON" "${LOCKSTEP_PEERS_VENV:-/opt/lockstep-peers}/bin/python" /usr/bin/python3 python3; do
  [ -n "$py" ] || continue
  "$py" -c "import torch, numpy" >/dev/null 2>&1 || continue
  work=$(mktemp -d "${TMPDIR:-/tmp}/lockstep_gpt_twin_XXXXXX")
  trap 'rm -rf "$work"' EXIT
  "$1" train --model gpt --text "$text" --context 64 --layers 2 --heads 2 --width 32 --batch-size 8 \
    --max-steps 5 --save "$work/run" --no-fsync > "$work/train.txt" || { cat "$work/train.txt"; exit 1; }
  printf '%s\n' '"A day for "' '{"prompt":"Q","id":1}' '"You will be "' > "$work/batch.jsonl"
  "$1" generate --checkpoint "$work/run" --batch "$work/batch.jsonl" --max-new-tokens 20 \
    --logits-out "$work/logits.safetensors" > /dev/null || exit 1
  exec "$py" "$here/gpt_twin.py" check --checkpoint "$work/run" --logits "$work/logits.safetensors"
done
echo "gpt twin: skipped, no Python with torch and numpy (scripts/setup-peers.sh installs PyTorch)"
exit 77
