#!/bin/bash
# train --model cnn|lenet5 --json (short runs: 1024 images, 8 steps, narrow CNN):
#   - cnn: one weights_sha256 for threads 1/2/3, workers 0/3, and a run stopped at step 5 and
#     resumed from its checkpoint; and under mpirun -np 1..4 --distributed (SyncBatchNorm on
#     4-D batches), when mpirun is there;
#   - lenet5: threads 1 and 3 agree;
#   - a checkpoint of one model is refused by another; a bad --model/--channels is an error.
source "$(dirname "$0")/lib.sh"
need_data
CNN="--model cnn --channels 8,16 --hidden 32 --max-steps 8 --batch-size 64"
out=ref.txt; train $CNN --threads 1 --workers 0 --save ck --save-every 5 --keep 0
ref=$(weights_of ref.txt)
[ ${#ref} -eq 64 ] || fail "no weights_sha256 in: $(tail -n 1 ref.txt)"
grep -q '"model":"cnn"' ref.txt || fail "no model cnn in: $(tail -n 1 ref.txt)"
for run in "--threads 2" "--threads 3 --workers 3"; do
  out=run.txt; train $CNN $run
  [ "$(weights_of run.txt)" = "$ref" ] || fail "cnn $run: weights_sha256 $(weights_of run.txt), 1 thread: $ref"
  echo "ok: cnn $run -> $ref"
done
# resume from step 5 (the rotation keeps ck/ckpt-000000000005 and the final one)
mkdir -p r5 && cp ck/ckpt-000000000005.safetensors r5/
out=res.txt; train $CNN --threads 2 --resume r5
[ "$(weights_of res.txt)" = "$ref" ] || fail "cnn resumed at step 5: $(weights_of res.txt), straight: $ref"
grep -q '"resumed_from":5' res.txt || fail "not resumed from step 5: $(tail -n 1 res.txt)"
echo "ok: cnn resumed at step 5 -> $ref"
expect_fail "recipe=cnn-fashion-mnist" "$LOCKSTEP" train $SMALL --max-steps 8 --batch-size 64 --hidden 32 --resume r5
expect_fail "\[train\] --model: expected mlp, cnn, lenet5 or gpt" "$LOCKSTEP" train $SMALL --model vgg
expect_fail "\[train\] --channels: expected counts in 1..4096" "$LOCKSTEP" train $SMALL --model cnn --channels 8,0

out=le1.txt; train --model lenet5 --max-steps 6 --threads 1
out=le3.txt; train --model lenet5 --max-steps 6 --threads 3 --workers 2
[ "$(weights_of le1.txt)" = "$(weights_of le3.txt)" ] || fail "lenet5: threads 1 vs 3 differ"
[ "$(weights_of le1.txt)" != "$ref" ] || fail "lenet5 gave the cnn's weights"
echo "ok: lenet5 threads 1 and 3 -> $(weights_of le1.txt)"

if command -v mpirun >/dev/null; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 LOCKSTEP_NUM_THREADS=1 OMPI_MCA_btl=self,vader
  for np in 1 2 3 4; do
    out=np$np.txt
    if ! mpirun --oversubscribe --bind-to none -x LOCKSTEP_NUM_THREADS -np $np "$LOCKSTEP" train --distributed \
        $SMALL $CNN --batch-size 128 --json > "$out" 2> "$out.err"; then
      grep -q "built without MPI" "$out.err" && { echo "built without MPI: mpirun part skipped"; break; }
      cat "$out.err" >&2; fail "mpirun -np $np train --distributed $CNN"
    fi
    [ $np -eq 1 ] && { out=plain128.txt; train $CNN --batch-size 128; dref=$(weights_of plain128.txt); }
    [ "$(weights_of np$np.txt)" = "$dref" ] || fail "cnn np $np: $(weights_of np$np.txt), plain train $dref"
    echo "ok: cnn mpirun -np $np -> $dref"
  done
else
  echo "note: no mpirun, the world-size part is skipped"
fi
echo PASS
