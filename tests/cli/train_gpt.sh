#!/bin/bash
# lockstep train --model gpt and lockstep generate on a tiny GPT (1 layer, width 32, context
# 32) over the fortunes text (skipped, 77, without it): one weights_sha256 for threads 1/2/3,
# workers 0/2, a run resumed from its step-3 checkpoint and mpirun -np 1..4 --distributed
# (when mpirun is there); generation: greedy and sampled requests give the same tokens and
# logits alone and inside a batch of other prompts; bad input (empty or non-UTF-8 text,
# token ids out of range, a prompt longer than the context, a checkpoint of another model,
# a resume on another text) is refused naming the file or the request.
source "$(dirname "$0")/lib.sh"
TEXT=/usr/share/games/fortunes/fortunes
[ -r "$TEXT" ] || { echo "no $TEXT (Debian's fortunes-min): skipped"; exit 77; }
GPT="--model gpt --text $TEXT --context 32 --layers 1 --heads 2 --width 32 --batch-size 8 --max-steps 6 --warmup 2 --no-fsync"
gpt() { "$LOCKSTEP" train $GPT "$@" --json > "$out" 2> "$out.err" || { cat "$out.err" >&2; fail "train $GPT $*"; }; }

out=t1.txt; gpt --threads 1 --save run --save-every 3
ref=$(weights_of t1.txt)
[ ${#ref} -eq 64 ] || fail "no weights_sha256 in: $(tail -n 1 t1.txt)"
grep -q '"val_loss":[0-9]' t1.txt || fail "no val_loss in: $(tail -n 1 t1.txt)"
for run in "--threads 2" "--threads 3 --workers 2"; do
  out=run.txt; gpt $run
  [ "$(weights_of run.txt)" = "$ref" ] || fail "$run: $(weights_of run.txt), with 1 thread $ref"
  echo "ok: gpt $run -> $ref"
done
rm run/ckpt-000000000006.safetensors
out=resumed.txt; gpt --threads 2 --resume run
grep -q '"resumed_from":3' resumed.txt || fail "not resumed from step 3: $(tail -n 1 resumed.txt)"
[ "$(weights_of resumed.txt)" = "$ref" ] || fail "resumed at 3: $(weights_of resumed.txt), straight $ref"
echo "ok: gpt resumed at step 3 -> $ref"
out=seed.txt; gpt --seed 1
[ "$(weights_of seed.txt)" != "$ref" ] || fail "--seed 1 gave the weights of --seed 0"

if command -v mpirun >/dev/null; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 LOCKSTEP_NUM_THREADS=1 OMPI_MCA_btl=self,vader
  for np in 1 2 3 4; do
    out=np$np.txt
    if ! mpirun --oversubscribe --bind-to none -x LOCKSTEP_NUM_THREADS -np $np "$LOCKSTEP" train --distributed \
        $GPT --json > "$out" 2> "$out.err"; then
      grep -q "built without MPI" "$out.err" && { echo "built without MPI: mpirun part skipped"; break; }
      cat "$out.err" >&2; fail "mpirun -np $np train --distributed $GPT"
    fi
    [ "$(weights_of np$np.txt)" = "$ref" ] || fail "gpt np $np: $(weights_of np$np.txt), plain train $ref"
    echo "ok: gpt mpirun -np $np -> $ref"
  done
else
  echo "note: no mpirun, the world-size part is skipped"
fi

# Generation: a request's tokens and logits alone = inside a batch (other lengths, sampling).
gen() { "$LOCKSTEP" generate --checkpoint run --max-new-tokens 12 --json "$@" > "$out" 2> "$out.err" ||
          { cat "$out.err" >&2; fail "generate $*"; }; }
req() { grep -o "{\"id\":$1,[^}]*}" "$2" | sed 's/"id":[0-9]*,//'; }
out=alone.txt; gen --batch <(echo '{"prompt":"A day ","id":7}')
out=alone_s.txt; gen --batch <(echo '{"prompt":"Q","id":9,"temperature":0.9,"seed":4}')
printf '%s\n' '"Abandon the search for "' '{"prompt":"Q","id":9,"temperature":0.9,"seed":4}' \
  '{"prompt":"A day ","id":7}' '{"tokens":[1,2,3],"id":11,"temperature":1.5}' > batch.jsonl
out=batch.txt; gen --batch batch.jsonl --threads 1
[ -n "$(req 7 alone.txt)" ] || fail "no request 7 in $(cat alone.txt)"
[ "$(req 7 alone.txt)" = "$(req 7 batch.txt)" ] || fail "greedy request alone vs in a batch: $(req 7 alone.txt) / $(req 7 batch.txt)"
[ "$(req 9 alone_s.txt)" = "$(req 9 batch.txt)" ] || fail "sampled request alone vs in a batch"
echo "ok: generate: requests alone = in a batch of 4 -> $(req 7 alone.txt | grep -o '"logits_sha256":"[0-9a-f]\{12\}')"

printf '' > empty.txt
printf 'caf\xe9\n' > latin1.txt
expect_fail "empty.txt: empty" "$LOCKSTEP" train $GPT --text empty.txt
expect_fail "latin1.txt: not UTF-8: byte 3" "$LOCKSTEP" train $GPT --text latin1.txt
expect_fail "request 0: token id 999 at position 1 is outside the vocabulary" \
  "$LOCKSTEP" generate --checkpoint run --batch <(echo '{"tokens":[1,999]}')
expect_fail "longer than the model's context of 32" \
  "$LOCKSTEP" generate --checkpoint run --prompt "$(head -c 40 $TEXT | tr -d '\n')xxxxxxxxxxxxxxx"
expect_fail "not in the vocabulary" "$LOCKSTEP" generate --checkpoint run --prompt "€"
printf 'zzzz yyyy xxxx wwww\n%.0s' {1..40} > other.txt
expect_fail "vocabulary" "$LOCKSTEP" train $GPT --text other.txt --resume run
if [ -e "$DATA/train-images-idx3-ubyte.gz" ] || [ -e "$DATA/train-images-idx3-ubyte" ]; then
  out=mlp.txt; train --max-steps 1 --save mlp
  expect_fail "a checkpoint of another model (user.recipe = mlp-fashion-mnist)" \
    "$LOCKSTEP" generate --checkpoint mlp --prompt "A"
fi
echo PASS
