# Shared by the CLI tests: sourced with LOCKSTEP (the binary) and WORK (a fresh directory) set.
# Every training run is small: 1024 training images, 512 test images, 30 steps at most.
set -u
LOCKSTEP="$1"
DATA="${LOCKSTEP_DATA:-/usr/share/datasets/fashion-mnist}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/lockstep_cli_XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK" || exit 2
SMALL="--data $DATA --subset 1024 --test-subset 512 --epochs 4 --no-fsync"

fail() { echo "FAIL: $*" >&2; exit 1; }
# Without the dataset the training tests cannot run: exit 77, reported by ctest as skipped.
need_data() { [ -e "$DATA/train-images-idx3-ubyte.gz" ] || [ -e "$DATA/train-images-idx3-ubyte" ] || { echo "no dataset in $DATA: skipped"; exit 77; }; }
# The weights_sha256 of the JSON object on the last line of a `train --json` output file.
weights_of() { tail -n 1 "$1" | grep -o '"weights_sha256":"[0-9a-f]\{64\}"' | cut -d'"' -f4; }
# Runs `lockstep train $SMALL "$@" --json`, output in $out; fails on a non-zero exit.
train() { "$LOCKSTEP" train $SMALL "$@" --json > "$out" 2> "$out.err" || { cat "$out.err" >&2; fail "train $*"; }; }
# expect_fail PATTERN CMD...: CMD must exit non-zero with PATTERN in its stderr.
expect_fail() {
  local pattern="$1"; shift
  "$@" > stdout.txt 2> stderr.txt && fail "expected a failure: $*"
  grep -q -- "$pattern" stderr.txt || { cat stderr.txt >&2; fail "message of '$*' lacks '$pattern'"; }
  echo "ok: $* -> $(head -n 1 stderr.txt)"
}
