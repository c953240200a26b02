#!/bin/bash
# lockstep train --distributed under mpirun (ctest label mpi):
#   - the weights_sha256 of -np 1, 2, 3, 4 equals plain `lockstep train` with the same flags
#     (and a short last batch, --hidden 64 and --batch-size 96, at -np 3 with the replica check:
#     the last batch's 2 chunks leave rank 2 without rows);
#   - rank 0 alone prints: one header line, one JSON line;
#   - rank 1 made to fail before step 8 at -np 2: the job exits non-zero naming rank 1, and
#     its last checkpoint (step 6) resumes at -np 3 to the straight run's weights; a plain
#     run's checkpoint resumes at -np 2, a distributed one in the plain trainer;
#   - --trace at -np 3 (rank 0 writes it) equals plain --trace: `lockstep diff` exits 0.
# Exit 77 (skipped) without mpirun, without the dataset, or in a build without MPI.
source "$(dirname "$0")/lib.sh"
need_data
command -v mpirun >/dev/null || { echo "mpirun not found: skipped"; exit 77; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 LOCKSTEP_NUM_THREADS=1 OMPI_MCA_btl=self,vader
MPI=(mpirun --oversubscribe --bind-to none -x LOCKSTEP_NUM_THREADS)
STEPS="--max-steps 12"
# dtrain NP FLAGS...: `mpirun -np NP lockstep train --distributed $SMALL FLAGS --json`, output in $out.
dtrain() {
  local np=$1; shift
  "${MPI[@]}" -np "$np" "$LOCKSTEP" train --distributed $SMALL "$@" --json > "$out" 2> "$out.err" \
    || { cat "$out.err" >&2; fail "mpirun -np $np train --distributed $*"; }
}

out=np1.txt
if ! "${MPI[@]}" -np 1 "$LOCKSTEP" train --distributed $SMALL $STEPS --json > "$out" 2> "$out.err"; then
  grep -q "built without MPI" "$out.err" && { echo "lockstep built without MPI: skipped"; exit 77; }
  cat "$out.err" >&2; fail "mpirun -np 1 train --distributed"
fi
out=plain.txt; train $STEPS --save plain --save-every 5 --keep 0
ref=$(weights_of plain.txt)
[ ${#ref} -eq 64 ] || fail "no weights_sha256 in: $(tail -n 1 plain.txt)"
[ "$(weights_of np1.txt)" = "$ref" ] || fail "np 1: $(weights_of np1.txt), plain train $ref"
echo "ok: plain and np 1 -> $ref"
for np in 2 3 4; do
  out=np$np.txt; dtrain $np $STEPS
  [ "$(weights_of np$np.txt)" = "$ref" ] || fail "np $np: $(weights_of np$np.txt), plain train $ref"
  echo "ok: np $np -> $ref"
done
# The same losses too (the JSON's train_loss and last_loss), and rank 0 alone printing.
for key in train_loss last_loss; do
  [ "$(grep -o "\"$key\":[^,]*" np3.txt)" = "$(grep -o "\"$key\":[^,]*" plain.txt)" ] || fail "np 3 $key differs"
done
[ "$(grep -c '^{' np3.txt)" = 1 ] || fail "np 3 printed $(grep -c '^{' np3.txt) JSON lines, expected 1"
[ "$(grep -c '^lockstep train:' np3.txt)" = 1 ] || fail "np 3 printed the header $(grep -c '^lockstep train:' np3.txt) times"
grep -q '"world":3}' np3.txt || fail "no world 3 in: $(tail -n 1 np3.txt)"
echo "ok: np 3 prints one header and one JSON line"

# Another model and a short last batch (1024 = 10 x 96 + 64: 2 chunks for 3 ranks), replicas
# checked after each step.
out=h64.txt; train $STEPS --hidden 64 --batch-size 96
out=h64np3.txt; dtrain 3 $STEPS --hidden 64 --batch-size 96 --debug-check-replicas
[ "$(weights_of h64np3.txt)" = "$(weights_of h64.txt)" ] || fail "--hidden 64 --batch-size 96 at np 3 differs"
echo "ok: --hidden 64 --batch-size 96 np 3 -> $(weights_of h64.txt)"
# A different seed must change the hash, or the equalities above prove nothing.
out=seed.txt; dtrain 2 $STEPS --seed 1
[ "$(weights_of seed.txt)" != "$ref" ] || fail "--seed 1 gave the weights of --seed 0"

# Failure: rank 1 throws before step 8; checkpoints at 3 and 6 were written by rank 0.
LOCKSTEP_DIST_FAIL_RANK=1 LOCKSTEP_DIST_FAIL_STEP=8 "${MPI[@]}" -x LOCKSTEP_DIST_FAIL_RANK -x LOCKSTEP_DIST_FAIL_STEP \
  -np 2 "$LOCKSTEP" train --distributed $SMALL $STEPS --save failed --save-every 3 --keep 0 > failed.txt 2>&1
rc=$?
[ $rc -ne 0 ] || fail "the failed job exited 0"
grep -q "rank 1 aborted the job: injected failure before step 8" failed.txt || { cat failed.txt >&2; fail "no message naming rank 1"; }
[ "$(ls failed)" = "$(printf 'ckpt-000000000003.safetensors\nckpt-000000000006.safetensors')" ] || fail "checkpoints: $(ls failed)"
echo "ok: failed job exit $rc, message names rank 1"
out=resumed3.txt; dtrain 3 $STEPS --resume failed
grep -q '"resumed_from":6' resumed3.txt || fail "did not resume at 6: $(tail -n 1 resumed3.txt)"
[ "$(weights_of resumed3.txt)" = "$ref" ] || fail "saved at np 2, resumed at np 3: $(weights_of resumed3.txt), straight $ref"
out=resumed_plain.txt; train $STEPS --resume failed
[ "$(weights_of resumed_plain.txt)" = "$ref" ] || fail "saved at np 2, resumed by plain train: $(weights_of resumed_plain.txt)"
mkdir from_plain && cp plain/ckpt-000000000005.safetensors from_plain/
out=from_plain.txt; dtrain 2 $STEPS --resume from_plain
[ "$(weights_of from_plain.txt)" = "$ref" ] || fail "saved by plain train, resumed at np 2: $(weights_of from_plain.txt)"
echo "ok: resumed at np 3 and by plain train from np 2's checkpoint, at np 2 from plain's -> $ref"

# --trace under --distributed: rank 0's trace (whole batches, gathered layer outputs) is the
# plain run's, tensor for tensor.
out=tplain.txt; train --max-steps 9 --trace plain.jsonl
out=tnp3.txt; dtrain 3 --max-steps 9 --trace np3.jsonl
"$LOCKSTEP" diff plain.jsonl np3.jsonl > diff.txt || { cat diff.txt >&2; fail "diff of plain and np 3 traces"; }
echo "ok: np 3 trace equals the plain trace ($(wc -l < np3.jsonl) steps)"
expect_fail "expected seconds >= 0" "$LOCKSTEP" train $SMALL --distributed --dist-timeout -1
expect_fail "expected --distributed" "$LOCKSTEP" train $SMALL --debug-check-replicas
expect_fail "expected --mode deterministic" "$LOCKSTEP" train $SMALL --distributed --mode fast
echo PASS
