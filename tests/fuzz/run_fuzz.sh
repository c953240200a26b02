#!/usr/bin/env bash
# Builds and runs the libFuzzer harnesses (tests/fuzz/CMakeLists.txt lists them).
#   tests/fuzz/run_fuzz.sh configure BUILD_DIR             configure only (also scripts/sanitize.sh asan)
#   tests/fuzz/run_fuzz.sh build BUILD_DIR                 configure and build all harnesses
#   tests/fuzz/run_fuzz.sh run BUILD_DIR NAME [SECONDS]    fuzz NAME for SECONDS (default 20)
# The build is clang with -fsanitize=fuzzer-no-link,address,undefined on the whole library
# (every UBSan check fatal), CUDA and MPI off. It is also the ASan + UBSan build of
# scripts/sanitize.sh (the tests and the program, built in the same directory: in CI the
# library is compiled once for both). A run starts from the committed seeds
# (corpus/NAME) and keeps what it finds in BUILD_DIR/corpus/NAME; a crash leaves its input
# in BUILD_DIR/artifacts/NAME/ and fails. Exit 77 (ctest: skipped) when clang++ or its
# libFuzzer runtime is missing. Environment: CLANGXX (default clang++), JOBS (build).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cxx="${CLANGXX:-clang++}"
usage() { sed -n '3,4p' "$0" >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd="$1" out="$2"

if [ "$cmd" = build ] || [ "$cmd" = configure ]; then
  if ! command -v "$cxx" > /dev/null; then echo "run_fuzz: $cxx not found, skipped"; exit 77; fi
  mkdir -p "$out"
  probe="$out/probe.cpp"
  echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' > "$probe"
  if ! "$cxx" -fsanitize=fuzzer "$probe" -o "$out/probe" 2> /dev/null; then
    echo "run_fuzz: $cxx cannot link -fsanitize=fuzzer (libFuzzer runtime missing), skipped"; exit 77
  fi
  flags="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
  cmake -S "$root" -B "$out" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" -DCMAKE_CXX_FLAGS="$flags" -DLOCKSTEP_FUZZ=ON \
    -DLOCKSTEP_CUDA=OFF -DLOCKSTEP_BENCH=OFF -DCMAKE_DISABLE_FIND_PACKAGE_MPI=ON -DCMAKE_UNITY_BUILD=ON \
    > "$out/configure.log" 2>&1 || { cat "$out/configure.log"; exit 1; }
  [ "$cmd" = build ] || exit 0
  targets=()
  for f in $(sed -n 's/^set(LOCKSTEP_FUZZERS \(.*\))$/\1/p' "$here/CMakeLists.txt"); do targets+=("fuzz_$f"); done
  exec cmake --build "$out" -j "${JOBS:-$(nproc 2>/dev/null || echo 2)}" --target "${targets[@]}"
fi

[ "$cmd" = run ] && [ $# -ge 3 ] || usage
name="$3" seconds="${4:-20}"
bin="$out/tests/fuzz/fuzz_$name"
if [ ! -x "$bin" ]; then
  # No harness: the build was skipped (no clang) or failed (reported by fuzz_build).
  [ -f "$out/configure.log" ] || { echo "run_fuzz: no fuzz build in $out, skipped"; exit 77; }
  echo "run_fuzz: $bin missing (see the fuzz_build test)"; exit 1
fi
mkdir -p "$out/corpus/$name" "$out/artifacts/$name"
# -rss_limit_mb: a header may ask for memory up to its data size, never more; -timeout: a
# single input that takes longer than 10 s is a hang. The new inputs go to the first
# directory, the committed seeds are read only.
exec "$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len=8192 -print_final_stats=1 \
  -artifact_prefix="$out/artifacts/$name/" "$out/corpus/$name" "$here/corpus/$name"
