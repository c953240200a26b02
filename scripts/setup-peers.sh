#!/usr/bin/env bash
# Bench set-up for the PyTorch comparison (bench/peers/): Debian's python3-torch and
# python3-numpy, for /usr/bin/python3. Not part of the test command: without them the
# peers_parity test is skipped. Idempotent.
set -euo pipefail
pkgs=(python3-torch python3-numpy)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup-peers: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
/usr/bin/python3 -c "import torch, numpy; print('setup-peers: torch', torch.__version__, 'numpy', numpy.__version__)"
