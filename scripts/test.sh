#!/usr/bin/env bash
# Installs dependencies, builds everything (Release) and runs every test through ctest --
# each reader fuzzed for 15 s included (label fuzz) -- then a clang build of the library,
# the program and the unit tests, and the sanitizer jobs' CI selection (scripts/sanitize.sh).
# docs/reliability.md says what each stage covers and how to run the long versions.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
jobs=$(nproc 2>/dev/null || echo 2)
times=()
stage() {  # stage NAME COMMAND...: runs it and keeps its wall time for the summary
  local name="$1" start=$SECONDS
  shift
  "$@"
  times+=("$(printf '%-22s %5d s' "$name" $((SECONDS - start)))")
}

build_gcc() {
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
  cmake --build build -j "$jobs"
}
stage "gcc build" build_gcc
stage "gcc ctest" ctest --test-dir build --output-on-failure -j "$jobs" --timeout 600

# clang: the library and the program must build, and the unit and deterministic tests pass
# (CUDA off: nvcc would need a host compiler of its own; MPI is the gcc build's).
build_clang() {
  cmake -S . -B build-clang -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Release -DLOCKSTEP_CUDA=OFF \
    -DLOCKSTEP_BENCH=OFF -DCMAKE_DISABLE_FIND_PACKAGE_MPI=ON
  cmake --build build-clang -j "$jobs" --target lockstep_cli lockstep_tests
}
stage "clang build" build_clang
stage "clang ctest" ctest --test-dir build-clang --output-on-failure -j "$jobs" --timeout 600 -L 'unit|deterministic' \
  -LE install

stage "asan+ubsan" scripts/sanitize.sh asan
stage "tsan" scripts/sanitize.sh tsan
printf 'test.sh: %s\n' "${times[@]}"
