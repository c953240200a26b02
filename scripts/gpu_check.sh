#!/usr/bin/env bash
# The GPU checks of issue 7, in two halves:
#
#   scripts/gpu_check.sh prepare     on the build machine (Debian, no GPU needed): runs the
#       CUDA suite on the CUDA emulation (ctest -L cuda-emu in build-emu), builds
#       lockstep_cuda_tests, bench_cuda and the lockstep program, and fills .device-carry/gpu/
#       (git-ignored) with the binaries, the shared libraries the GPU machine lacks (Google Benchmark,
#       OpenBLAS, libgomp, libstdc++ ...; not the CUDA runtime or cuBLAS, which CUDA 13
#       there provides), a Fashion-MNIST subset (2560 training, 512 test images: enough for
#       the training test, tests/cli/train_cuda.sh and `lab --quick`) and the PyTorch peer.
#   scripts/gpu_check.sh run [STAGE...]   on the GPU machine, from the repository root with
#       .device-carry carried; STAGE is tests, train, lab, memcheck, racecheck, bench, torch
#       or all (default all). Writes device.txt, *.log and bench_cuda.json, torch_step.jsonl
#       under $OUT (or ./gpu_out). train: `lockstep train --device cuda` twice and on the CPU
#       with the same flags (same weights_sha256), cross-device resume, a fast-mode run
#       (tests/cli/train_cuda.sh); lab: `lockstep lab --quick --check cpu-vs-gpu conv-wgrad-atomics`.
#
# Each stage is sized to finish well inside a 10-minute command.
set -euo pipefail
cd "$(dirname "$0")/.."
G=.device-carry/gpu

prepare() {
  export CCACHE_BASEDIR=${CCACHE_BASEDIR:-/work} CCACHE_DIR=${CCACHE_DIR:-/work/.ccache}
  # First the same suite on the CUDA emulation (docs/cuda.md): a kernel that fails there
  # would waste the GPU's minutes.
  cmake -S . -B build-emu -DCMAKE_BUILD_TYPE=Release -DLOCKSTEP_CUDA_EMU=ON -DLOCKSTEP_BENCH=OFF \
    -DLOCKSTEP_TOOLS=OFF -DCMAKE_DISABLE_FIND_PACKAGE_MPI=ON >/dev/null
  cmake --build build-emu -j2 --target lockstep_cuda_tests
  ctest --test-dir build-emu --output-on-failure -j2 -L cuda-emu --timeout 1800
  cmake --build build -j2 --target lockstep_cuda_tests bench_cuda lockstep_cli
  rm -rf "$G" && mkdir -p "$G/bin" "$G/lib" "$G/data"
  cp build/tests/lockstep_cuda_tests build/bench/bench_cuda build/tools/lockstep "$G/bin/"
  cp bench/peers/torch_cuda_step.py "$G/"
  # Shared libraries: everything ldd resolves except glibc's own and the CUDA driver/toolkit.
  for bin in "$G"/bin/*; do
    ldd "$bin" | awk '/=> \// {print $3}'
  done | sort -u | grep -v -E '/(libc|libm|libpthread|libdl|librt|ld-linux[^/]*)\.so|libcuda\.so|libcudart|libcublas|libnvidia' |
    while read -r lib; do cp -L "$lib" "$G/lib/"; done
  # The first 2560 training images and labels and the first 512 test ones.
  python3 - "$G/data" <<'PY'
import gzip, struct, sys
src, dst = "/usr/share/datasets/fashion-mnist", sys.argv[1]
for split, n in (("train", 2560), ("t10k", 512)):
    with gzip.open(f"{src}/{split}-images-idx3-ubyte.gz") as f:
        magic, count, rows, cols = struct.unpack(">IIII", f.read(16))
        body = f.read(n * rows * cols)
    with gzip.open(f"{dst}/{split}-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">IIII", magic, n, rows, cols) + body)
    with gzip.open(f"{src}/{split}-labels-idx1-ubyte.gz") as f:
        magic, count = struct.unpack(">II", f.read(8))
        body = f.read(n)
    with gzip.open(f"{dst}/{split}-labels-idx1-ubyte.gz", "wb") as f:
        f.write(struct.pack(">II", magic, n) + body)
PY
  du -sh "$G"
  echo "carry .device-carry; run: scripts/gpu_check.sh run"
}

run() {
  local out=${OUT:-gpu_out}
  mkdir -p "$out"
  export LD_LIBRARY_PATH="$PWD/$G/lib:${LD_LIBRARY_PATH:-}"
  export LOCKSTEP_FASHION_MNIST_DIR="$PWD/$G/data" LOCKSTEP_REQUIRE_DATA=1
  local stages=("$@")
  [ ${#stages[@]} -eq 0 ] && stages=(all)
  local rc=0
  local sanitizer
  sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  for s in "${stages[@]}"; do
    case $s in
      all) run tests train lab memcheck racecheck bench torch || rc=1 ;;
      tests)
        { nvidia-smi; nvidia-smi --query-gpu=name,driver_version --format=csv; ldd --version | head -1; } \
          > "$out/device.txt" 2>&1 || true
        "$G/bin/lockstep_cuda_tests" -d yes 2>&1 | tee "$out/cuda_tests.log" || rc=1 ;;
      train)
        # Exit 77 (no usable device) counts as a failure here: this stage expects a GPU.
        LOCKSTEP_DATA="$PWD/$G/data" bash tests/cli/train_cuda.sh "$PWD/$G/bin/lockstep" \
          2>&1 | tee "$out/train_cuda.log" || rc=1 ;;
      lab)
        "$G/bin/lockstep" lab --quick --check cpu-vs-gpu conv-wgrad-atomics --data "$PWD/$G/data" --report "$out/lab" \
          2>&1 | tee "$out/lab_cpu_vs_gpu.log" || rc=1 ;;
      memcheck)
        # The training test is left out: under memcheck it would take far too long.
        "$sanitizer" --tool memcheck --error-exitcode 9 "$G/bin/lockstep_cuda_tests" "~[training]" \
          2>&1 | tee "$out/memcheck.log" || rc=1 ;;
      racecheck)
        # Shared-memory races: the kernels that use shared memory (GEMM tiles, max_abs).
        "$sanitizer" --tool racecheck --error-exitcode 9 "$G/bin/lockstep_cuda_tests" "[gemm],[optim]" \
          2>&1 | tee "$out/racecheck.log" || rc=1 ;;
      bench)
        "$G/bin/bench_cuda" --benchmark_out="$out/bench_cuda.json" --benchmark_out_format=json \
          --benchmark_min_time=0.2 2>&1 | tee "$out/bench_cuda.log" || rc=1 ;;
      torch)
        PYTHONUNBUFFERED=1 python3 "$G/torch_cuda_step.py" 2>&1 | tee "$out/torch_step.jsonl" || rc=1 ;;
      *) echo "gpu_check.sh: unknown stage '$s' (tests, train, lab, memcheck, racecheck, bench, torch, all)" >&2; return 2 ;;
    esac
  done
  return $rc
}

case ${1:-} in
  prepare) prepare ;;
  run) shift; run "$@" ;;
  *) echo "usage: scripts/gpu_check.sh prepare | run [tests|train|lab|memcheck|racecheck|bench|torch|all]..." >&2; exit 2 ;;
esac
