#!/usr/bin/env bash
# The same bits on other CPU architectures (docs/determinism.md, "Architectures").
#
#   scripts/cross_check.sh HOST_LOCKSTEP [TESTS]   # HOST_LOCKSTEP: an x86-64 build's `lockstep`
#
# Builds lockstep for aarch64 and riscv64 with Debian's cross compilers (cmake/toolchain-*.cmake),
# runs the determinism tests of each under qemu-user, then one small training run on every
# architecture and SIMD level -- x86-64 scalar, AVX2, AVX-512 (where this CPU has them),
# aarch64 portable and NEON, riscv64 portable -- and fails unless every weights_sha256 is the
# same. A checkpoint written on x86-64 and resumed on aarch64 (and the other way) must end on
# the straight run's hash too.
#
# Environment:
#   LOCKSTEP_CROSS_ARCHS   architectures to build (default "aarch64 riscv64")
#   LOCKSTEP_CROSS_TESTS   (else TESTS, else "deterministic"): "deterministic": every [deterministic] test case of the
#                          whole suite (lockstep_tests) under qemu; "kernels": the [deterministic]
#                          cases of the GEMM and reduction tests (lockstep_kernel_tests: NEON
#                          against the portable kernels), on aarch64 only, whose SIMD kernels are
#                          the only ones x86-64 cannot test (what ctest runs, to fit CI); "none"
#   LOCKSTEP_CROSS_BUILD   where the cross builds go (default build-cross/<arch> in the checkout)
#   LOCKSTEP_DATA          Fashion-MNIST directory (default /usr/share/datasets/fashion-mnist;
#                          without it every run trains on the same synthetic data)
# Exit 77 (ctest: skipped) when a cross compiler or qemu is missing (scripts/setup.sh installs
# g++-aarch64-linux-gnu, g++-riscv64-linux-gnu and qemu-user).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
host_lockstep="$(realpath "${1:?usage: scripts/cross_check.sh HOST_LOCKSTEP}")"
archs=(${LOCKSTEP_CROSS_ARCHS:-aarch64 riscv64})
tests="${LOCKSTEP_CROSS_TESTS:-${2:-deterministic}}"
build_root="${LOCKSTEP_CROSS_BUILD:-$root/build-cross}"
data_src="${LOCKSTEP_DATA:-/usr/share/datasets/fashion-mnist}"
jobs=$(nproc 2>/dev/null || echo 2)
start=$SECONDS

triple() { case "$1" in aarch64) echo aarch64-linux-gnu ;; riscv64) echo riscv64-linux-gnu ;; *) return 1 ;; esac; }
for a in "${archs[@]}"; do
  t=$(triple "$a") || { echo "cross_check: unknown architecture '$a' (aarch64, riscv64)" >&2; exit 2; }
  for tool in "$t-g++" "qemu-$a"; do
    command -v "$tool" >/dev/null || { echo "cross_check: $tool not found (scripts/setup.sh): skipped"; exit 77; }
  done
done

work="$(mktemp -d "${TMPDIR:-/tmp}/lockstep_cross_XXXXXX")"
trap 'rm -rf "$work"' EXIT
fail() { echo "cross_check: FAIL: $*" >&2; exit 1; }
run_on() {  # run_on ARCH CMD...: ARCH's binary under qemu-user (x86-64: directly)
  local a="$1"; shift
  if [ "$a" = x86-64 ]; then "$@"; else "qemu-$a" -L "/usr/$(triple "$a")" "$@"; fi
}
lockstep_of() { if [ "$1" = x86-64 ]; then echo "$host_lockstep"; else echo "$build_root/$1/tools/lockstep"; fi; }

# ---- the cross builds: the library, the program with its `train` command alone
# (LOCKSTEP_CLI_COMMANDS=train) and the test binary; no zlib, MPI, CUDA or benchmarks ----
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
for a in "${archs[@]}"; do
  b="$build_root/$a"
  targets=(lockstep_cli)
  case "$tests" in
    none) ;;
    kernels) [ "$a" = aarch64 ] && targets+=(lockstep_kernel_tests) ;;
    deterministic) targets+=(lockstep_tests) ;;
    *) echo "cross_check: LOCKSTEP_CROSS_TESTS=$tests (deterministic, kernels or none)" >&2; exit 2 ;;
  esac
  echo "== build $a (${targets[*]})"
  cmake -S "$root" -B "$b" -DCMAKE_BUILD_TYPE=Release -DCMAKE_TOOLCHAIN_FILE="$root/cmake/toolchain-$a.cmake" \
    -DLOCKSTEP_ZLIB=OFF -DLOCKSTEP_CUDA=OFF -DLOCKSTEP_BENCH=OFF -DLOCKSTEP_CLI_COMMANDS=train -DCMAKE_UNITY_BUILD=ON \
    -DLOCKSTEP_TESTS="$([ "$tests" = none ] && echo OFF || echo ON)" "${launcher[@]}" > "$work/configure-$a.log" || { cat "$work/configure-$a.log" >&2; fail "configure $a"; }
  cmake --build "$b" -j "$jobs" --target "${targets[@]}" > "$work/build-$a.log" 2>&1 || {
    tail -n 40 "$work/build-$a.log" >&2; fail "build $a"; }
  echo "   built in $((SECONDS - start)) s so far"
done

# ---- the determinism tests under qemu ----
if [ "$tests" != none ]; then
  binary=lockstep_tests
  [ "$tests" = kernels ] && binary=lockstep_kernel_tests
  for a in "${archs[@]}"; do
    [ "$tests" = kernels ] && [ "$a" != aarch64 ] && continue
    echo "== tests $a: $binary [deterministic] (under qemu-$a)"
    t0=$SECONDS
    run_on "$a" "$build_root/$a/tests/$binary" "[deterministic]" --warn NoTests > "$work/tests-$a.log" 2>&1 || {
      tail -n 60 "$work/tests-$a.log" >&2; fail "tests on $a"; }
    echo "   $(grep -E '^(All tests passed|test cases)' "$work/tests-$a.log" | tail -n 1) ($((SECONDS - t0)) s)"
  done
fi

# ---- one training run on every architecture and SIMD level ----
# The cross builds read plain IDX files (no zlib): every run, x86-64 included, reads the same
# gunzipped copy.
data="$work/data"
mkdir -p "$data"
if [ -e "$data_src/train-images-idx3-ubyte.gz" ] || [ -e "$data_src/train-images-idx3-ubyte" ]; then
  for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    if [ -e "$data_src/$f.gz" ]; then gzip -dc "$data_src/$f.gz" > "$data/$f"; else cp "$data_src/$f" "$data/$f"; fi
  done
else
  echo "note: no Fashion-MNIST in $data_src: every run trains on the same synthetic data"
fi
recipe=(--data "$data" --subset 1280 --test-subset 128 --batch-size 32 --hidden 64,32 --epochs 1
        --threads 2 --no-fsync --json)
weights_of() { tail -n 1 "$1" | grep -o '"weights_sha256":"[0-9a-f]\{64\}"' | cut -d'"' -f4; }
train_on() {  # train_on ARCH SIMD OUT ARGS...: one run at that SIMD level; fails on a non-zero exit
  local a="$1" level="$2" out="$3"; shift 3
  LOCKSTEP_SIMD="$level" run_on "$a" "$(lockstep_of "$a")" train "${recipe[@]}" "$@" > "$out" 2> "$out.err" || {
    cat "$out.err" >&2; fail "train on $a ($level) $*"; }
}

runs=("x86-64 scalar" "x86-64 avx2" "x86-64 avx512")
for a in "${archs[@]}"; do
  runs+=("$a scalar")
  [ "$a" = aarch64 ] && runs+=("aarch64 neon")
done
echo "== lockstep train ${recipe[*]} --max-steps 40"
printf '%-9s %-8s %-8s %s\n' arch asked ran weights_sha256
ref="" ok=1
for r in "${runs[@]}"; do
  read -r a level <<<"$r"
  out="$work/run-$a-$level.json"
  train_on "$a" "$level" "$out" --max-steps 40
  ran=$(grep -o '"simd":"[a-z0-9]*"' "$out" | cut -d'"' -f4)
  w=$(weights_of "$out")
  [ -n "$w" ] || fail "no weights_sha256 from $a ($level)"
  printf '%-9s %-8s %-8s %s\n' "$a" "$level" "$ran" "$w"
  [ -z "$ref" ] && ref="$w"
  [ "$w" = "$ref" ] || ok=0
done
[ "$ok" = 1 ] || fail "the architectures or SIMD levels disagree (table above)"

# ---- checkpoints cross architectures: the step-17 checkpoint of one's run to 40, resumed to
# 40 on the other (the checkpoint carries the schedule its run planned, so it comes from a
# run to 40, as in tests/cli/train_resume.sh) ----
if printf '%s\n' "${archs[@]}" | grep -qx aarch64; then
  for pair in "x86-64 aarch64" "aarch64 x86-64"; do
    read -r from to <<<"$pair"
    d="$work/ckpt-$from"
    train_on "$from" "" "$d.json" --max-steps 40 --save "$d" --save-every 17 --keep 0
    [ "$(weights_of "$d.json")" = "$ref" ] || fail "$from with checkpoints: $(weights_of "$d.json"), straight $ref"
    mkdir "$d.part" && cp "$d/ckpt-000000000017.safetensors" "$d.part/"
    train_on "$to" "" "$d.resumed.json" --max-steps 40 --resume "$d.part"
    grep -q '"resumed_from":17' "$d.resumed.json" || fail "did not resume at 17: $(tail -n 1 "$d.resumed.json")"
    w=$(weights_of "$d.resumed.json")
    echo "saved on $from at step 17, resumed on $to to step 40: $w"
    [ "$w" = "$ref" ] || fail "resumed across architectures: $w, straight run $ref"
  done
fi
echo "cross_check: PASS, one weights_sha256 for every architecture and SIMD level ($((SECONDS - start)) s)"
