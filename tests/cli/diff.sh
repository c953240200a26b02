#!/bin/bash
# lockstep diff: identical traces exit 0; a planted one-ulp change of 0.weight[0] after step 7
# (the hidden --debug-nudge flag) is found at step 7, tensor param.0.weight, element 0, 1 ulp,
# exit 1, in traces and in checkpoints; missing or garbage files exit 2.
source "$(dirname "$0")/lib.sh"
need_data
out=a.txt; train --max-steps 9 --trace a.jsonl --trace-values --save ca
out=b.txt; train --max-steps 9 --trace b.jsonl --trace-values --threads 3 --workers 2
out=c.txt; train --max-steps 9 --trace c.jsonl --trace-values --debug-nudge 7 --save cc
"$LOCKSTEP" diff a.jsonl b.jsonl > same.txt; rc=$?
[ $rc -eq 0 ] || { cat same.txt; fail "identical traces: exit $rc"; }
grep -q "identical: 9 steps" same.txt || fail "$(cat same.txt)"
"$LOCKSTEP" diff a.jsonl c.jsonl > d.txt; rc=$?
cat d.txt
[ $rc -eq 1 ] || fail "planted difference: exit $rc"
grep -q "traces differ at step 7 " d.txt || fail "wrong step"
grep -q "the first in trace order: param.0.weight" d.txt || fail "wrong tensor"
grep -q "index 0 \[0, 0\]:.*(1 ulp)" d.txt || fail "wrong element"
"$LOCKSTEP" diff ca/ckpt-000000000009.safetensors cc/ckpt-000000000009.safetensors > k.txt; rc=$?
cat k.txt
[ $rc -eq 1 ] || fail "checkpoints: exit $rc"
grep -q "files differ at tensor model.0.weight" k.txt || fail "checkpoints: wrong tensor"
"$LOCKSTEP" diff ca/ckpt-000000000009.safetensors ca/ckpt-000000000009.safetensors > /dev/null || fail "same file"
"$LOCKSTEP" diff a.jsonl missing.jsonl 2> err.txt; rc=$?
[ $rc -eq 2 ] && grep -q "missing.jsonl" err.txt || fail "missing file: exit $rc, $(cat err.txt)"
echo "not a trace" > garbage
"$LOCKSTEP" diff garbage a.jsonl 2> err.txt; rc=$?
[ $rc -eq 2 ] && grep -q "garbage" err.txt || fail "garbage file: exit $rc, $(cat err.txt)"
head -c 300 a.jsonl > cut.jsonl
"$LOCKSTEP" diff cut.jsonl a.jsonl 2> err.txt; rc=$?
[ $rc -eq 2 ] && grep -q "cut.jsonl:1" err.txt || fail "truncated trace: exit $rc, $(cat err.txt)"
echo PASS
