#!/bin/bash
# lockstep train --trace-ops and lockstep diff on op traces: tracing leaves the weights alone;
# two thread counts give identical op traces; a planted one-ulp change of the first linear op's
# output (the hidden --debug-perturb-op flag) is named as the culprit op, with its layer,
# step, element and distance in ulps; without values the op is still named; a weight nudged
# between steps is reported as a difference that entered between ops.
source "$(dirname "$0")/lib.sh"
need_data
out=plain.txt; train --max-steps 3
out=a.txt; train --max-steps 3 --trace-ops a.ops --trace-ops-values
out=b.txt; train --max-steps 3 --trace-ops b.ops --trace-ops-values --threads 3 --workers 2
out=c.txt; train --max-steps 3 --trace-ops c.ops --trace-ops-values --debug-perturb-op linear
out=d.txt; train --max-steps 3 --trace-ops d.ops --debug-perturb-op linear
[ "$(weights_of plain.txt)" = "$(weights_of a.txt)" ] || fail "tracing changed the weights"
[ "$(weights_of a.txt)" != "$(weights_of c.txt)" ] || fail "the planted difference changed nothing"
grep -q '"dir":"bwd","op":"linear","layer":"0:Linear"' a.ops || fail "no backward record of layer 0's linear"
"$LOCKSTEP" diff a.ops b.ops > same.txt; rc=$?
[ $rc -eq 0 ] && grep -q "^identical: .* op records (steps 1 to 3)" same.txt ||
  fail "1 vs 3 threads: exit $rc, $(cat same.txt)"
"$LOCKSTEP" diff a.ops c.ops > d1.txt; rc=$?
cat d1.txt
[ $rc -eq 1 ] || fail "planted difference: exit $rc"
grep -q "^culprit op: linear (forward) in layer 0:Linear at step 1 " d1.txt || fail "wrong culprit"
grep -q "first differing element: index 0 \[0, 0\]:.*(1 ulp)" d1.txt || fail "wrong element"
"$LOCKSTEP" diff a.ops d.ops > d2.txt; rc=$?
[ $rc -eq 1 ] && grep -q "^culprit op: linear (forward) in layer 0:Linear at step 1 " d2.txt &&
  grep -q "no values stored" d2.txt || fail "without values: exit $rc, $(cat d2.txt)"
# 0.weight[0] nudged one ulp after step 1 (outside any op; a border pixel's weight, so
# every op output still matches): the first difference is layer 0's input 1 at step 2.
out=n.txt; train --max-steps 3 --trace-ops n.ops --debug-nudge 1
"$LOCKSTEP" diff a.ops n.ops > d3.txt; rc=$?
first="^first difference: input 1 (float32 256x784) of linear (forward) in layer 0:Linear at step 2, made by no"
[ $rc -eq 1 ] && grep -q "$first" d3.txt &&
  grep -q "^every op output matched" d3.txt || fail "difference from outside the ops: exit $rc, $(cat d3.txt)"
"$LOCKSTEP" diff a.ops a.jsonl 2> err.txt; rc=$?
[ $rc -eq 2 ] || fail "missing file: exit $rc"
head -n 1 a.ops > head.ops; echo '{"step":1}' >> head.ops
"$LOCKSTEP" diff head.ops a.ops 2> err.txt; rc=$?
[ $rc -eq 2 ] && grep -q "head.ops:2: field \"i\"" err.txt || fail "malformed op trace: exit $rc, $(cat err.txt)"
expect_fail "expected --trace-ops FILE" "$LOCKSTEP" train $SMALL --max-steps 1 --trace-ops-values
# --trace-ops-steps 1: the first step's records only (steps 2 and 3 still run: same weights).
out=s.txt; train --max-steps 3 --trace-ops s.ops --trace-ops-values --trace-ops-steps 1
[ "$(weights_of plain.txt)" = "$(weights_of s.txt)" ] || fail "--trace-ops-steps changed the weights"
grep -q '"step":1,' s.ops && ! grep -q '"step":2,' s.ops || fail "--trace-ops-steps 1 kept other steps"
[ "$(grep -c '"step":1,' s.ops)" = "$(grep -c '"step":1,' a.ops)" ] || fail "--trace-ops-steps 1 lost records"
expect_fail "\[train\] --trace-ops-steps: expected an integer >= 0 and --trace-ops FILE" "$LOCKSTEP" train $SMALL \
  --max-steps 1 --trace-ops-steps 2
expect_fail "\[train\] --trace-ops-steps: expected an integer >= 0" "$LOCKSTEP" train $SMALL --max-steps 1 \
  --trace-ops x.ops --trace-ops-steps -1
echo PASS
