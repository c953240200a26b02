#!/usr/bin/env bash
# Installs lockstep's build and test dependencies from Debian packages.
# Idempotent: prints nothing and touches nothing when everything is present.
set -euo pipefail

pkgs=(build-essential cmake pkg-config
      libeigen3-dev catch2 libbenchmark-dev zlib1g-dev
      libcli11-dev nlohmann-json3-dev libopenblas-dev
      dataset-fashion-mnist clang libclang-rt-14-dev)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "setup: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
