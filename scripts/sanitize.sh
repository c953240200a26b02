#!/usr/bin/env bash
# Sanitizer builds of lockstep and the tests run under them (docs/reliability.md).
#
#   scripts/sanitize.sh [--full] [asan] [tsan]      (no job named: both)
#
# asan: clang, -fsanitize=address,undefined with every UBSan check fatal, in the fuzz
#       harnesses' configuration (tests/fuzz/run_fuzz.sh configure: -fsanitize=fuzzer-no-link
#       as well, so one build directory serves both; scripts/test.sh points LOCKSTEP_ASAN_BUILD
#       at the fuzz build of the gcc ctest and the library is compiled once); builds the test
#       binary and the `lockstep` program and runs the ctest labels unit, deterministic, cli
#       and lab. Left out, because they cannot run instrumented: install_find_package (the
#       downstream project links the installed, instrumented libraries without the
#       sanitizer runtime), the mpi label (ranks under mpirun with an uninstrumented
#       Open MPI; MPI is not searched for here) and cuda (CUDA is off: device code is not
#       instrumented); layering and isa_symbols check sources and optimized objects, not
#       behaviour. The fast-mode tests run too (Eigen's OpenMP is fine under ASan).
# tsan: gcc, -fsanitize=thread; runs the thread-pool, loader, data-parallel, resume and
#       determinism test cases of the Catch2 binary with a pool of 4 threads. Deterministic
#       mode only: fast mode's OpenMP (libgomp, Eigen's GEMM) is not instrumented, so its
#       synchronisation is invisible to TSan; the [fast] cases are left out rather than
#       suppressed, and no suppression file is used.
#
# Without --full (CI, scripts/test.sh) each job runs a smaller selection, chosen to keep CI
# short; --full runs everything above. Build directories: ${LOCKSTEP_SANITIZE_BUILD}-asan and
# -tsan (default build-asan, build-tsan; LOCKSTEP_ASAN_BUILD overrides the first); JOBS sets
# the build's parallelism. Both builds use -O1 -g1 -DNDEBUG and leave CUDA out. Exit status: non-zero on any sanitizer report.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

full=0
jobs_to_run=()
for arg in "$@"; do
  case "$arg" in
    --full) full=1 ;;
    asan|tsan) jobs_to_run+=("$arg") ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "sanitize: expected --full, asan or tsan, got '$arg'" >&2; exit 2 ;;
  esac
done
[ ${#jobs_to_run[@]} -gt 0 ] || jobs_to_run=(asan tsan)
prefix="${LOCKSTEP_SANITIZE_BUILD:-$root/build}"
jobs="${JOBS:-$(nproc 2>/dev/null || echo 2)}"

# configure DIR FLAGS [SOURCES_REGEX]: a gcc build with FLAGS on every compile and link, no
# CUDA, no MPI, no benchmarks (TSan; ASan is configured by tests/fuzz/run_fuzz.sh); with
# SOURCES_REGEX, only the test files whose text matches it are compiled.
configure() {
  cmake -S "$root" -B "$1" -DCMAKE_CXX_COMPILER=g++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" -DCMAKE_CXX_FLAGS="$2" \
    -DCMAKE_EXE_LINKER_FLAGS="$2" -DLOCKSTEP_CUDA=OFF -DLOCKSTEP_BENCH=OFF \
    -DLOCKSTEP_TEST_SOURCES_MATCHING="${3:-}" \
    -DCMAKE_DISABLE_FIND_PACKAGE_MPI=ON -DCMAKE_UNITY_BUILD=ON > "$1.configure.log" 2>&1 \
    || { cat "$1.configure.log"; return 1; }
}

run_asan() {
  local dir="${LOCKSTEP_ASAN_BUILD:-$prefix-asan}" rc=0
  echo "sanitize: ASan+UBSan build (clang) in $dir"
  "$root/tests/fuzz/run_fuzz.sh" configure "$dir" || rc=$?
  [ "$rc" -eq 77 ] && { echo "sanitize: asan needs clang++ with its sanitizer runtimes (scripts/setup.sh)" >&2; return 1; }
  [ "$rc" -eq 0 ] || return "$rc"
  cmake --build "$dir" -j "$jobs" --target lockstep_tests lockstep_cli
  # detect_leaks: LeakSanitizer at exit; print_stacktrace: where UBSan's report comes from.
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:strict_init_order=1:detect_stack_use_after_return=1"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  # Not instrumented code but checks of the sources and objects, run by the main ctest:
  # layering (the include graph) and isa_symbols (weak symbols of the optimized build; at
  # -O1 std::function's destructor stays out of line and is one).
  local skip='^(layering|isa_symbols)$'
  if [ "$full" = 0 ]; then
    # CI: all but the slowest entries, which repeat paths the rest covers: the GEMM at 1-8
    # threads on large sizes, the CLI's SIMD and thread invariance runs, and the lab
    # scenarios that train many times over.
    skip+='|^det:gemm_cpu: bitwise identical for 1, 2, 3 and 8 threads$|^cli_train_invariance$'
    skip+='|^lab:(seed-variance|world-size|full-world-size|registry-and-reports)$'
  fi
  ctest --test-dir "$dir" --output-on-failure -j "$jobs" --timeout 900 -L 'unit|deterministic|cli|lab' \
    -LE 'mpi|cuda|install|peers|fuzz' -E "$skip"
}

run_tsan() {
  local dir="$prefix-tsan"
  local tags=(parallel data dist)
  [ "$full" = 1 ] && tags+=(resume deterministic)
  # Only the test files that hold a case with one of the tags are compiled (a Catch2 tag is
  # a string literal in its TEST_CASE line); the run below selects the cases by the same tags.
  local files_with_tags
  files_with_tags="\\[($(IFS='|'; echo "${tags[*]}"))\\]"
  echo "sanitize: TSan build in $dir (test files matching $files_with_tags)"
  configure "$dir" "-fsanitize=thread" "$files_with_tags"
  cmake --build "$dir" -j "$jobs" --target lockstep_tests
  # halt_on_error: the first race fails the run; second_deadlock_stack: both lock orders.
  export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:history_size=4"
  # Catch2: "[a]~[fast],[b]~[fast]" is (a and not fast) or (b and not fast). The [fast]
  # cases are left out (see the top); the pool gets 4 threads on any machine.
  local spec
  spec="$(printf '[%s]~[fast],' "${tags[@]}")"
  LOCKSTEP_NUM_THREADS=4 "$dir/tests/lockstep_tests" "${spec%,}" --warn NoTests
}

for j in "${jobs_to_run[@]}"; do
  "run_$j"
done
echo "sanitize: ${jobs_to_run[*]} clean"
