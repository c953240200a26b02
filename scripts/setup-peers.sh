#!/usr/bin/env bash
# Bench set-up for the peer comparison (bench/peers/): a virtual environment with a current
# PyTorch 2.x (its CPU convolutions are oneDNN), JAX (CPU) and NumPy from PyPI, at
# $LOCKSTEP_PEERS_VENV (default /opt/lockstep-peers). Not part of the test command: without
# it the peers tests are skipped. bench/peers/run_parity.sh and speed.py find its python by
# that path. PyPI's torch wheel for Linux also pulls NVIDIA's CUDA libraries (a few GB of
# disk); the CPU runs do not use them. Idempotent; prints the versions it ends with.
set -euo pipefail
venv=${LOCKSTEP_PEERS_VENV:-/opt/lockstep-peers}
if ! python3 -c "import venv, ensurepip" >/dev/null 2>&1; then
  echo "setup-peers: installing python3-venv"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
fi
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
if ! "$venv/bin/python" -c "import torch, jax, numpy" >/dev/null 2>&1; then
  echo "setup-peers: installing torch, jax[cpu] and numpy into $venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q torch numpy "jax[cpu]"
fi
"$venv/bin/python" -c "import torch, jax, numpy; print('setup-peers:', '$venv', 'torch', torch.__version__, \
'jax', jax.__version__, 'numpy', numpy.__version__)"
