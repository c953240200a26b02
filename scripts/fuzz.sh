#!/usr/bin/env bash
# Fuzzes every reader for longer than CI does (CI: ctest label fuzz, 15 s each).
#
#   scripts/fuzz.sh [SECONDS] [NAME...]      default: 600 s for each harness, all of them
#
# Builds the harnesses (tests/fuzz/run_fuzz.sh: clang, libFuzzer, ASan + UBSan) in
# ${LOCKSTEP_FUZZ_BUILD:-build-fuzz}, then runs them one after another. What a run adds to
# the corpus stays in <build>/corpus/NAME, so later runs start from there; a
# crash leaves its input in <build>/artifacts/NAME/ (reproduce: <build>/tests/fuzz/fuzz_NAME
# FILE) and makes the script fail after the others have run. Logs: <build>/logs/NAME.log.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
seconds="${1:-600}"
[ $# -gt 0 ] && shift
names=("$@")
[ ${#names[@]} -gt 0 ] ||
  read -r -a names <<< "$(sed -n 's/^set(LOCKSTEP_FUZZERS \(.*\))$/\1/p' tests/fuzz/CMakeLists.txt)"
out="${LOCKSTEP_FUZZ_BUILD:-$root/build-fuzz}"

tests/fuzz/run_fuzz.sh build "$out"
mkdir -p "$out/logs"
failed=()
printf '%-12s %12s %10s %8s  %s\n' harness execs exec/s corpus result
for n in "${names[@]}"; do
  rc=0
  tests/fuzz/run_fuzz.sh run "$out" "$n" "$seconds" > "$out/logs/$n.log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/logs/$n.log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$out/logs/$n.log" | tail -1)
  corpus=$(find "$out/corpus/$n" "tests/fuzz/corpus/$n" -type f | wc -l)
  result=ok
  if [ "$rc" -ne 0 ]; then result="FAILED (exit $rc, $out/logs/$n.log)"; failed+=("$n"); fi
  printf '%-12s %12s %10s %8s  %s\n' "$n" "${execs:-?}" "${rate:-?}" "$corpus" "$result"
done
[ ${#failed[@]} -eq 0 ] || { echo "fuzz: findings in ${failed[*]}" >&2; exit 1; }
