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
# Regression tests of issue 23: FIFOs are refused at once instead of blocking, a file
# without lockstep's checksums points at --no-checksum, sizes that cannot be counted are
# refused naming the flag, and an unwritable --save is found before training.
mkfifo pipe.safetensors
expect_fail "not a regular file" timeout 20 "$LOCKSTEP" inspect pipe.safetensors
expect_fail "not a regular file" timeout 20 "$LOCKSTEP" diff pipe.safetensors "$f"
# a safetensors file as another program writes it (no lockstep checksums), made with printf
# alone: the 8-byte little-endian header length, the JSON header, 8 zero bytes of data
hdr='{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'
{ printf "\\$(printf '%03o' ${#hdr})\\0\\0\\0\\0\\0\\0\\0"; printf '%s' "$hdr"; printf '\0\0\0\0\0\0\0\0'; } \
  > plain.safetensors
expect_fail "use --no-checksum" "$LOCKSTEP" inspect plain.safetensors
"$LOCKSTEP" inspect --no-checksum plain.safetensors > /dev/null || fail "inspect --no-checksum of a plain file"
expect_fail "--epochs" "$LOCKSTEP" train $SMALL --epochs 9223372036854775807
"$LOCKSTEP" train $SMALL --batch-size 9223372036854775807 --max-steps 1 --json > big.txt 2> big.err ||
  fail "a batch size larger than the data set: $(cat big.err)"
if [ "$(id -u)" = 0 ] && command -v setpriv > /dev/null; then
  mkdir -p readonly && chmod 555 readonly && chmod 755 "$WORK"
  expect_fail "cannot write there" setpriv --reuid=65534 --regid=65534 --clear-groups \
    "$LOCKSTEP" train $SMALL --max-steps 2 --save "$WORK/readonly"
elif [ "$(id -u)" != 0 ]; then
  mkdir -p readonly && chmod 555 readonly
  expect_fail "cannot write there" "$LOCKSTEP" train $SMALL --max-steps 2 --save readonly
fi
# --export-init and --export-order: the initial weights and the sample order, both checked.
out=e.txt; train --max-steps 10 --export-init init.safetensors --export-order order.safetensors
"$LOCKSTEP" inspect init.safetensors | grep -q "^  0.weight *float32 *256x784" || fail "export-init"
"$LOCKSTEP" inspect order.safetensors > order.txt || fail "export-order unreadable"
grep -q "indices *int64 *1280 " order.txt && grep -q "batch_sizes *int64 *10 " order.txt || fail "$(cat order.txt)"
echo PASS
