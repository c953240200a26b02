#!/bin/bash
# Bad flags, a missing data directory, and damaged checkpoints: a message naming what was
# wrong and a non-zero exit, never a crash. inspect/hash accept the intact file.
source "$(dirname "$0")/lib.sh"
expect_fail "--batch-size" "$LOCKSTEP" train $SMALL --batch-size 0
expect_fail "--optimizer" "$LOCKSTEP" train $SMALL --optimizer rmsprop
expect_fail "--mode" "$LOCKSTEP" train $SMALL --mode fastest
expect_fail "--hidden" "$LOCKSTEP" train $SMALL --hidden 256,x
expect_fail "--lr" "$LOCKSTEP" train $SMALL --lr -1
expect_fail "--dropout" "$LOCKSTEP" train $SMALL --dropout 1.5
expect_fail "--momentum" "$LOCKSTEP" train $SMALL --momentum 0.9
expect_fail "--no-such-flag" "$LOCKSTEP" train --no-such-flag
expect_fail "$WORK/nowhere" "$LOCKSTEP" train --subset 1024 --data "$WORK/nowhere"
expect_fail "--device cuda" "$LOCKSTEP" train $SMALL --device cuda
need_data
out=t.txt; train --max-steps 3 --save ck
f=ck/ckpt-000000000003.safetensors
"$LOCKSTEP" inspect "$f" > inspect.txt || fail "inspect of an intact file"
grep -q "model.0.weight *float32 *256x784" inspect.txt || fail "inspect listing: $(cat inspect.txt)"
grep -q "user.optimizer *adamw" inspect.txt || fail "inspect metadata"
head -c 100000 "$f" > trunc.safetensors
expect_fail "trunc.safetensors" "$LOCKSTEP" inspect trunc.safetensors
expect_fail "trunc.safetensors" "$LOCKSTEP" hash trunc.safetensors
cp "$f" flip.safetensors
printf '\x5a' | dd of=flip.safetensors bs=1 seek=400000 conv=notrunc 2> /dev/null
expect_fail "checksum" "$LOCKSTEP" hash flip.safetensors
expect_fail "checksum" "$LOCKSTEP" inspect flip.safetensors
head -c 8 "$f" > header_only.safetensors
expect_fail "header_only.safetensors" "$LOCKSTEP" inspect header_only.safetensors
expect_fail "missing.safetensors" "$LOCKSTEP" hash missing.safetensors
# --export-init and --export-order: the initial weights and the sample order, both checked.
out=e.txt; train --max-steps 10 --export-init init.safetensors --export-order order.safetensors
"$LOCKSTEP" inspect init.safetensors | grep -q "^  0.weight *float32 *256x784" || fail "export-init"
"$LOCKSTEP" inspect order.safetensors > order.txt || fail "export-order unreadable"
grep -q "indices *int64 *1280 " order.txt && grep -q "batch_sizes *int64 *10 " order.txt || fail "$(cat order.txt)"
echo PASS
