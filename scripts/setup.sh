#!/usr/bin/env bash
# Installs lockstep's build and test dependencies from Debian packages.
# Idempotent: prints nothing and touches nothing when everything is present.
set -euo pipefail

pkgs=(build-essential cmake pkg-config
      libeigen3-dev catch2 libbenchmark-dev zlib1g-dev
      libcli11-dev nlohmann-json3-dev libopenblas-dev
      dataset-fashion-mnist fortunes clang libclang-rt-14-dev libomp-dev
      openmpi-bin libopenmpi-dev iproute2 chromium
      g++-aarch64-linux-gnu g++-riscv64-linux-gnu qemu-user)
# clang, libclang-rt-14-dev (libFuzzer, clang's sanitizers) and libomp-dev (clang's OpenMP)
# serve the clang and fuzz builds; gcc's ASan, UBSan and TSan runtimes come with gcc.
# g++-aarch64-linux-gnu, g++-riscv64-linux-gnu and qemu-user: scripts/cross_check.sh (ctest
# label cross) builds for aarch64 and riscv64 and runs them under qemu.
# fortunes (with fortunes-min): the GPT recipe's default text, /usr/share/games/fortunes (data/text.h).
# iproute2 (`ip netns`) makes the two hosts of the multi-host MPI test (tests/cli/train_distributed_netns.sh).
# chromium: headless, renders the lab's report.html in a test (tests/lab_report_html.sh).

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Optional: Python's safetensors and numpy let the checkpoint tests round-trip files through
# the reference implementation; without them those tests warn and skip that part.
if command -v python3 >/dev/null 2>&1 && ! python3 -c "import safetensors, numpy" 2>/dev/null; then
  echo "setup: installing Python safetensors and numpy (optional, for interoperability tests)"
  python3 -m pip install -q safetensors numpy >/dev/null 2>&1 || echo "setup: pip install failed; the Python round trip will be skipped"
fi
exit 0
