#!/bin/bash
# `lockstep train --device cuda` (issue 8): in deterministic mode two GPU runs and a CPU run
# with the same flags end with the same weights_sha256; a GPU checkpoint resumes on the CPU
# (and a CPU one on the GPU) to the straight run's weights; --trace works with device
# tensors; fast mode runs and its hash is reported, not checked. Exit 77 (skipped) without
# a usable CUDA device; --distributed with --device cuda is refused either way.
source "$(dirname "$0")/lib.sh"
expect_fail "expected --device cpu" "$LOCKSTEP" train $SMALL --device cuda --distributed
need_data
if ! "$LOCKSTEP" train $SMALL --device cuda --max-steps 1 > probe.txt 2> probe.err; then
  grep -q "no usable CUDA device" probe.err || { cat probe.err >&2; fail "--device cuda failed for another reason"; }
  echo "no CUDA device: skipped ($(head -n 1 probe.err))"
  exit 77
fi
out=gpu1.txt; train --max-steps 30 --device cuda --save gck --save-every 13 --keep 0 --trace gpu.jsonl
out=gpu2.txt; train --max-steps 30 --device cuda
out=cpu.txt; train --max-steps 30 --threads 2 --workers 2
ref=$(weights_of cpu.txt)
[ "$(weights_of gpu1.txt)" = "$ref" ] || fail "gpu run 1 $(weights_of gpu1.txt), cpu $ref"
[ "$(weights_of gpu2.txt)" = "$ref" ] || fail "gpu run 2 $(weights_of gpu2.txt), cpu $ref"
grep -q '"device":"cuda"' gpu1.txt || fail "json lacks the device: $(tail -n 1 gpu1.txt)"
[ "$(grep -o '"test_accuracy":[^,]*' gpu1.txt)" = "$(grep -o '"test_accuracy":[^,]*' cpu.txt)" ] || fail "accuracy"
[ "$(wc -l < gpu.jsonl)" -ge 30 ] || fail "trace has $(wc -l < gpu.jsonl) lines"
# A GPU checkpoint resumed on the CPU, and the CPU's own checkpoint resumed on the GPU.
mkdir g13 && cp gck/ckpt-000000000013.safetensors g13/
out=g2c.txt; train --max-steps 30 --resume g13 --device cpu
[ "$(weights_of g2c.txt)" = "$ref" ] || fail "gpu checkpoint resumed on the cpu: $(weights_of g2c.txt), $ref"
out=cpu13.txt; train --max-steps 13 --save c13
out=c2g.txt; train --max-steps 30 --resume c13 --device cuda
[ "$(weights_of c2g.txt)" = "$ref" ] || fail "cpu checkpoint resumed on the gpu: $(weights_of c2g.txt), $ref"
out=fast.txt; train --max-steps 30 --device cuda --mode fast
echo "fast mode on the GPU: weights_sha256 $(weights_of fast.txt) (deterministic: $ref; a difference is expected)"
echo PASS
