#!/usr/bin/env bash
# Installs dependencies, builds everything (Release) and runs every test through ctest --
# each reader fuzzed for 15 s included (label fuzz) -- then the CUDA suite on the CUDA
# emulation (build-emu, label cuda-emu), a clang build of the library and the unit tests,
# and the sanitizer jobs' CI selection (scripts/sanitize.sh; ASan builds the program with clang).
# docs/reliability.md says what each stage covers and how to run the long versions.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
jobs=$(nproc 2>/dev/null || echo 2)
# Every stage runs even when an earlier one failed, so one CI run reports them all; the
# script fails at the end if any did.
times=()
failed=()
stage() {  # stage NAME COMMAND...: runs it and keeps its wall time and result for the summary
  local name="$1" start=$SECONDS rc=0
  shift
  "$@" || rc=$?
  [ "$rc" -eq 0 ] || failed+=("$name")
  local result=ok
  [ "$rc" -eq 0 ] || result="FAILED ($rc)"
  times+=("$(printf '%-14s %5d s  %s' "$name" $((SECONDS - start)) "$result")")
}

build_gcc() {
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
  cmake --build build -j "$jobs"
}
build_gcc  # nothing else can run without it
stage "gcc ctest" ctest --test-dir build --output-on-failure -j "$jobs" --timeout 600
# ctest shows a passing test's output only in its log: print the cross-architecture table
# (cross_check: every architecture's and SIMD level's weights_sha256 of the same run).
sed -n '/^arch  *asked  *ran/,/^cross_check: /p' build/Testing/Temporary/LastTest.log 2>/dev/null || true

# The CUDA backend on the CUDA emulation (docs/cuda.md): the CUDA suite against the CPU,
# bit for bit, under three schedule seeds, every __global__ launched; no nvcc or GPU needed.
cuda_emu_stage() {
  cmake -S . -B build-emu -DCMAKE_BUILD_TYPE=Release -DLOCKSTEP_CUDA_EMU=ON -DLOCKSTEP_BENCH=OFF \
    -DLOCKSTEP_TOOLS=OFF -DCMAKE_DISABLE_FIND_PACKAGE_MPI=ON &&
    cmake --build build-emu -j "$jobs" --target lockstep_cuda_tests &&
    ctest --test-dir build-emu --output-on-failure -j "$jobs" -L cuda-emu --timeout 1800
}
stage "cuda-emu" cuda_emu_stage

# clang: the library and the tests must build optimized, and the unit and deterministic tests
# pass (CUDA off: nvcc would need a host compiler of its own; MPI is the gcc build's). The
# program is built with clang by the ASan stage below (the fuzz build's configuration).
# (layering reads the sources: the gcc ctest has run it; install_find_package is gcc's too.)
clang_stage() {  # chained with &&: set -e is off inside a command that stage() tests
  cmake -S . -B build-clang -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Release -DLOCKSTEP_CUDA=OFF \
    -DLOCKSTEP_BENCH=OFF -DCMAKE_DISABLE_FIND_PACKAGE_MPI=ON -DCMAKE_UNITY_BUILD=ON &&
    cmake --build build-clang -j "$jobs" --target lockstep_tests &&
    ctest --test-dir build-clang --output-on-failure -j "$jobs" --timeout 600 -L 'unit|deterministic' -LE install \
      -E '^layering$'
}
stage "clang" clang_stage

# ASan + UBSan in the fuzz harnesses' build of the gcc ctest (tests/fuzz/run_fuzz.sh: the same
# clang configuration), so the instrumented library is compiled once for both.
stage "asan+ubsan" env LOCKSTEP_ASAN_BUILD="$PWD/build/tests/fuzz/fuzz_build" scripts/sanitize.sh asan
stage "tsan" scripts/sanitize.sh tsan
printf 'test.sh: %s\n' "${times[@]}"
[ ${#failed[@]} -eq 0 ] || { echo "test.sh: failed: ${failed[*]}" >&2; exit 1; }
