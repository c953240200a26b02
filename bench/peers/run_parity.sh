#!/bin/sh
# ctest entry point of the PyTorch parity check: finds a Python that can import torch and
# numpy (scripts/setup-peers.sh's virtual environment first, then /usr/bin/python3 and
# python3) and runs parity.py with it. Exit 77 (reported as skipped) without one.
# Usage: run_parity.sh LOCKSTEP_PROGRAM [parity.py options]
# ($PEERS_SCRIPT, default parity.py: the script of bench/peers to run, e.g. test_decisions.py.)
here=$(dirname "$0")
if ! "$1" --help 2>/dev/null | grep -q "^ *train "; then
  echo "parity: skipped, $1 has no train subcommand"
  exit 77
fi
for py in "$LOCKSTEP_PEERS_PYTHON" "${LOCKSTEP_PEERS_VENV:-/opt/lockstep-peers}/bin/python" /usr/bin/python3 python3; do
  [ -n "$py" ] || continue
  if "$py" -c "import torch, numpy" >/dev/null 2>&1; then
    prog=$1
    shift
    exec "$py" "$here/${PEERS_SCRIPT:-parity.py}" --lockstep "$prog" "$@"
  fi
done
echo "parity: skipped, no Python with torch and numpy (scripts/setup-peers.sh installs PyTorch)"
exit 77
