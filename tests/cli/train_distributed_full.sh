#!/bin/bash
# The README's `mpirun -np 4 lockstep train --distributed --json` on the whole default data
# set (ctest label mpi): 470 steps of the default recipe planned over 2 epochs, so the run
# crosses the epoch boundary after step 469, whose batch is the short last one (60000 =
# 468 x 128 + 96: 3 chunks, rank 3 owns no rows). The weights_sha256 must equal one
# process's. Exit 77 (skipped) without mpirun, the dataset or MPI in this build.
source "$(dirname "$0")/lib.sh"
need_data
command -v mpirun >/dev/null || { echo "mpirun not found: skipped"; exit 77; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 LOCKSTEP_NUM_THREADS=1 OMPI_MCA_btl=self,vader
FULL="--data $DATA --epochs 2 --max-steps 470 --test-subset 2000 --no-fsync"
mpirun --oversubscribe --bind-to none -x LOCKSTEP_NUM_THREADS -np 4 "$LOCKSTEP" train --distributed $FULL --json \
  > np4.txt 2> np4.err || { grep -q "built without MPI" np4.err && { echo "built without MPI: skipped"; exit 77; }
                            cat np4.err >&2; fail "mpirun -np 4 train --distributed"; }
"$LOCKSTEP" train $FULL --threads 2 --json > plain.txt 2> plain.err || { cat plain.err >&2; fail "plain train"; }
ref=$(weights_of plain.txt)
[ ${#ref} -eq 64 ] || fail "no weights_sha256 in: $(tail -n 1 plain.txt)"
grep -q '"steps":470' np4.txt || fail "np 4 did not run 470 steps: $(tail -n 1 np4.txt)"
grep -q '^epoch 1/2' np4.txt || fail "np 4 printed no end of epoch 1"
[ "$(weights_of np4.txt)" = "$ref" ] || fail "np 4: $(weights_of np4.txt), one process $ref"
for key in test_accuracy train_loss; do
  [ "$(grep -o "\"$key\":[^,]*" np4.txt)" = "$(grep -o "\"$key\":[^,]*" plain.txt)" ] || fail "np 4 $key differs"
done
echo "ok: full data, 470 steps across the epoch boundary, np 4 -> $ref (one process: the same)"
echo PASS
