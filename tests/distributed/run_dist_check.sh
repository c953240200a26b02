#!/usr/bin/env bash
# The data-parallel promise under mpirun (ctest label mpi): usage run_dist_check.sh BIN CASE
#   worlds       weights hash after 12 steps at -np 1, 2, 3, 4 == the single-process trainer's
#   per-rank-bn  plain BatchNorm per rank at -np 2 gives a DIFFERENT hash (the broken variant)
#   resume       -np 2 writes checkpoints, rank 1 is made to fail: the job ends non-zero naming
#                rank 1; the last checkpoint resumes at -np 3 and -np 1 to the reference hash
# Exit 77 (skipped) when mpirun is absent. One kernel thread per process, --oversubscribe.
set -u
BIN=$1; CASE=$2
command -v mpirun >/dev/null || { echo "mpirun not found: skipped"; exit 77; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 LOCKSTEP_NUM_THREADS=1 OMPI_MCA_btl=self,vader
MPI=(mpirun --oversubscribe --bind-to none -x LOCKSTEP_NUM_THREADS)
hash_of() { grep '^hash ' | cut -d' ' -f2; }
fail() { echo "FAIL: $*"; exit 1; }

REF=$("$BIN" reference | hash_of)
[ -n "$REF" ] || fail "the reference run printed no hash"
echo "reference $REF"
case "$CASE" in
  worlds)
    for np in 1 2 3 4; do
      H=$("${MPI[@]}" -np $np "$BIN" train --check | hash_of)
      echo "np $np: $H"
      [ "$H" = "$REF" ] || fail "np $np gave $H, expected $REF"
    done ;;
  per-rank-bn)
    H=$("${MPI[@]}" -np 2 "$BIN" train --per-rank-bn | hash_of)
    echo "per-rank BatchNorm np 2: $H"
    [ -n "$H" ] || fail "no hash"
    [ "$H" != "$REF" ] || fail "per-rank BatchNorm gave the synced hash: the test cannot tell them apart" ;;
  resume)
    DIR=$(mktemp -d); trap 'rm -rf "$DIR"' EXIT
    OUT=$(LOCKSTEP_DIST_FAIL_RANK=1 LOCKSTEP_DIST_FAIL_STEP=8 "${MPI[@]}" -x LOCKSTEP_DIST_FAIL_RANK \
          -x LOCKSTEP_DIST_FAIL_STEP -np 2 "$BIN" train --save "$DIR" --every 3 2>&1)
    RC=$?
    echo "$OUT" | grep -q "rank 1 aborted the job: injected failure before step 8" || { echo "$OUT"; fail "no message naming rank 1"; }
    [ $RC -ne 0 ] || fail "the failed job exited 0"
    echo "failed job: exit $RC, message names rank 1"
    for np in 3 1; do
      H=$("${MPI[@]}" -np $np "$BIN" train --resume "$DIR" | hash_of)
      echo "resumed from step 6 at np $np: $H"
      [ "$H" = "$REF" ] || fail "resume at np $np gave $H, expected $REF"
    done ;;
  *) fail "unknown case $CASE" ;;
esac
echo PASS
