#!/usr/bin/env bash
# Builds the safetensors fuzz target with clang (libFuzzer + AddressSanitizer) straight from
# the sources it needs and runs it for SECONDS seconds (default 20) on the seed corpus.
# Exit 77 (ctest: skipped) when clang++ or libFuzzer is not available.
#   tests/fuzz/run_fuzz.sh [SECONDS] [BUILD_DIR]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
seconds="${1:-20}"
out="${2:-${TMPDIR:-/tmp}/lockstep_fuzz_build}"
cxx="${CLANGXX:-clang++}"
if ! command -v "$cxx" > /dev/null; then echo "run_fuzz: $cxx not found, skipped"; exit 77; fi
mkdir -p "$out/include/lockstep" "$out/corpus"
probe="$out/probe.cpp"
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' > "$probe"
if ! "$cxx" -fsanitize=fuzzer "$probe" -o "$out/probe" 2> /dev/null; then
  echo "run_fuzz: $cxx cannot link -fsanitize=fuzzer (libFuzzer runtime missing), skipped"; exit 77
fi
version="$(sed -n 's/^project(lockstep VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")"
sed -e "s/@PROJECT_VERSION@/${version:-0}/" -e 's/#cmakedefine01 \(.*\)/#define \1 0/' \
  "$root/core/config.h.in" > "$out/include/lockstep/config.h"
# The reader needs the tensor core only (allocation, dtype, shapes, StateDict): the layers
# base, kernels (portable files) and core, and the two serialize files; no nn, optim or data.
srcs=("$root"/base/*.cpp "$root"/core/*.cpp "$root"/core/ops/*.cpp "$root"/kernels/*_cpu.cpp
      "$root"/kernels/memory_no_cuda.cpp "$root"/serialize/safetensors.cpp "$root"/serialize/atomic_file.cpp)
flags=(-std=c++17 -O1 -g -fsanitize=fuzzer,address -ffp-contract=off -I"$root" -I"$out/include")
if [ ! -x "$out/fuzz_safetensors" ] || [ -n "$(find "${srcs[@]}" "$here/fuzz_safetensors.cpp" -newer "$out/fuzz_safetensors" 2>/dev/null)" ]; then
  echo "run_fuzz: building $out/fuzz_safetensors"
  "$cxx" "${flags[@]}" "$here/fuzz_safetensors.cpp" "${srcs[@]}" -o "$out/fuzz_safetensors" -lz -lpthread -fopenmp \
    -I/usr/include/eigen3
fi
cp -n "$here"/corpus/* "$out/corpus/" 2> /dev/null || true
# -rss_limit_mb: a header may ask for tensors up to the data size, never more.
exec "$out/fuzz_safetensors" -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 \
  "$out/corpus" "$here/corpus"
