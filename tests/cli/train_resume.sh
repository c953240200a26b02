#!/bin/bash
# Resume invariance: a run saved at step 13 (odd, mid-epoch) and resumed in a new process with
# other thread and worker counts ends with the weights of the straight run; `hash` of the
# final checkpoint equals train's weights_sha256; resuming with another seed is refused.
source "$(dirname "$0")/lib.sh"
need_data
out=straight.txt; train --max-steps 30 --save full --save-every 13 --keep 0
ref=$(weights_of straight.txt)
[ -f full/ckpt-000000000013.safetensors ] || fail "no checkpoint at step 13: $(ls full)"
[ "$("$LOCKSTEP" hash full/ckpt-000000000030.safetensors | cut -d' ' -f1)" = "$ref" ] || fail "hash != weights_sha256"
mkdir part && cp full/ckpt-000000000013.safetensors part/
out=resumed.txt; train --max-steps 30 --resume part --threads 3 --workers 2
grep -q '"resumed_from":13' resumed.txt || fail "did not resume at 13: $(tail -n 1 resumed.txt)"
[ "$(weights_of resumed.txt)" = "$ref" ] || fail "resumed $(weights_of resumed.txt), straight $ref"
# The train_loss of the last epoch is carried across the resume as well.
[ "$(grep -o '"train_loss":[^,]*' resumed.txt)" = "$(grep -o '"train_loss":[^,]*' straight.txt)" ] || fail "train_loss"
# --max-steps counts from the start of training, and a resumed run keeps the schedule the
# checkpoint planned (T_max 30): resuming at 13 with --max-steps 26 stops on the weights of
# the straight run's step-26 checkpoint.
out=to26.txt; train --max-steps 26 --resume part --workers 3
want26=$("$LOCKSTEP" hash full/ckpt-000000000026.safetensors | cut -d' ' -f1)
[ "$(weights_of to26.txt)" = "$want26" ] || fail "resumed to 26: $(weights_of to26.txt), straight $want26"
grep -q '"steps":26,' to26.txt || fail "steps: $(tail -n 1 to26.txt)"
expect_fail "seed=0" "$LOCKSTEP" train $SMALL --resume part --seed 5
expect_fail "batch_size=128" "$LOCKSTEP" train $SMALL --resume part --batch-size 64
expect_fail "no such directory" "$LOCKSTEP" train $SMALL --resume "$WORK/absent"
mkdir empty
expect_fail "no checkpoint" "$LOCKSTEP" train $SMALL --resume empty
echo PASS
