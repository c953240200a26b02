#!/bin/bash
# train --json: the same weights_sha256 for 1, 2 and 3 threads, for 0, 2 and 3 workers and
# for every SIMD level (LOCKSTEP_SIMD=scalar, avx2; the reference runs at the highest).
source "$(dirname "$0")/lib.sh"
need_data
out=ref.txt; train --max-steps 30 --threads 1 --workers 0
ref=$(weights_of ref.txt)
[ ${#ref} -eq 64 ] || fail "no weights_sha256 in: $(tail -n 1 ref.txt)"
for run in "--threads 2" "--threads 3" "--threads 1 --workers 2" "--threads 2 --workers 3"; do
  out=run.txt; train --max-steps 30 $run
  got=$(weights_of run.txt)
  [ "$got" = "$ref" ] || fail "$run: weights_sha256 $got, with 1 thread and 0 workers $ref"
  echo "ok: $run -> $got"
done
for level in scalar avx2; do
  out=simd.txt; LOCKSTEP_SIMD=$level train --max-steps 30 --threads 2
  grep -q "\"simd\":\"$level\"" simd.txt || echo "note: LOCKSTEP_SIMD=$level ran at $(grep -o '"simd":"[a-z0-9]*"' simd.txt) (not available here)"
  got=$(weights_of simd.txt)
  [ "$got" = "$ref" ] || fail "LOCKSTEP_SIMD=$level: weights_sha256 $got, at the highest level $ref"
  echo "ok: LOCKSTEP_SIMD=$level -> $got"
done
# A different seed must give different weights, or the comparison above proves nothing.
out=seed.txt; train --max-steps 30 --seed 1
[ "$(weights_of seed.txt)" != "$ref" ] || fail "--seed 1 gave the weights of --seed 0"
grep -q '"steps":30,' ref.txt || fail "steps is not 30: $(tail -n 1 ref.txt)"
echo PASS
