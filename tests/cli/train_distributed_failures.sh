#!/bin/bash
# A rank that dies or stops in the middle of `mpirun lockstep train --distributed` (ctest
# label mpi):
#   - kill -9 of rank 1 at -np 2 (the ranks frozen with SIGSTOP first, so the run is caught
#     mid-way whatever the machine's speed): mpirun ends the job within seconds, non-zero,
#     naming rank 1; the last checkpoint is intact and resumes at -np 3 to the weights of the
#     uninterrupted plain run;
#   - SIGSTOP of rank 1 with --dist-timeout 2: rank 0's collective gives up after 2 s, the job
#     ends (stopped rank included) with a message naming the timeout, instead of hanging.
# Exit 77 (skipped) without mpirun, the dataset, or MPI in this build.
source "$(dirname "$0")/lib.sh"
need_data
command -v mpirun >/dev/null || { echo "mpirun not found: skipped"; exit 77; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 LOCKSTEP_NUM_THREADS=1 OMPI_MCA_btl=self,vader
MPI=(mpirun --oversubscribe --bind-to none -x LOCKSTEP_NUM_THREADS)
RUN="--max-steps 60"
SAVE="--save run --save-every 4 --keep 0"

# rank_pid MPIRUN_PID R: the pid of rank R among mpirun's children (from its environment).
rank_pid() {
  local p
  for p in $(pgrep -P "$1"); do
    tr '\0' '\n' < /proc/$p/environ 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2" && { echo "$p"; return; }
  done
}
# start_job NP OUT FLAGS...: mpirun in the background ($job), then waits for the first checkpoint.
start_job() {
  local np=$1 o=$2; shift 2
  "${MPI[@]}" -np "$np" "$LOCKSTEP" train --distributed $SMALL $RUN $SAVE "$@" > "$o" 2>&1 &
  job=$!
  for _ in $(seq 3000); do
    [ -e run/ckpt-000000000004.safetensors ] && break
    kill -0 $job 2>/dev/null || { cat "$o" >&2; fail "the job ended before its first checkpoint"; }
    sleep 0.01
  done
  [ -e run/ckpt-000000000004.safetensors ] || fail "no checkpoint after 30 s"
  r0=$(rank_pid $job 0); r1=$(rank_pid $job 1)
  [ -n "$r0" ] && [ -n "$r1" ] || fail "ranks not found among mpirun's children"
}
# alive PID: the process exists and is not a zombie (a container's init may not reap them).
alive() { [ -e /proc/$1 ] && ! grep -q '^State:.*Z' /proc/$1/status 2>/dev/null; }
# wait_job LIMIT: waits for $job at most LIMIT seconds; sets rc and took (seconds).
wait_job() {
  local start=$SECONDS
  for _ in $(seq $(($1 * 10))); do kill -0 $job 2>/dev/null || break; sleep 0.1; done
  kill -0 $job 2>/dev/null && { kill -9 $job $r0 $r1 2>/dev/null; fail "the job still runs after $1 s"; }
  wait $job; rc=$?; took=$((SECONDS - start))
}

out=plain.txt; train $RUN
ref=$(weights_of plain.txt)

# kill -9: freeze both ranks, kill rank 1, let rank 0 go on (it waits in a collective).
mkdir run
start_job 2 killed.txt --dist-timeout 0
kill -STOP $r0 $r1
kill -9 $r1
kill -CONT $r0
wait_job 20
[ $rc -ne 0 ] || fail "the job whose rank 1 was killed exited 0"
grep -q "rank 1" killed.txt && grep -qi "signal 9\|killed" killed.txt || { cat killed.txt >&2; fail "no message naming rank 1 and the signal"; }
alive $r0 && fail "rank 0 still runs after the job ended: $(grep State /proc/$r0/status)"
last=$(ls run | grep "^ckpt-[0-9]*\.safetensors$" | tail -n 1)
echo "ok: rank 1 killed -> exit $rc after ${took} s: $(grep -m1 'rank 1' killed.txt); last checkpoint $last"
"$LOCKSTEP" inspect "run/$last" > /dev/null || fail "the last checkpoint $last does not load"
out=resumed.txt; "${MPI[@]}" -np 3 "$LOCKSTEP" train --distributed $SMALL $RUN --resume run --json > "$out" 2> "$out.err" \
  || { cat "$out.err" >&2; fail "resume at -np 3"; }
[ "$(weights_of resumed.txt)" = "$ref" ] || fail "resumed at np 3 from $last: $(weights_of resumed.txt), uninterrupted $ref"
echo "ok: $last resumed at np 3 -> the uninterrupted run's $ref"

# SIGSTOP with a 2 s timeout: the job must end by itself, in about 2 s.
rm -rf run; mkdir run
start_job 2 stopped.txt --dist-timeout 2
kill -STOP $r1
wait_job 30
alive $r1 && { kill -9 $r1; fail "the stopped rank 1 was left behind"; }
[ $rc -ne 0 ] || fail "the job with a stopped rank exited 0"
grep -q "did not complete within 2 s (--dist-timeout)" stopped.txt || { cat stopped.txt >&2; fail "no timeout message"; }
[ $took -ge 2 ] || fail "the job ended after ${took} s, before the 2 s timeout"
echo "ok: rank 1 stopped -> exit $rc after ${took} s: $(grep -m1 'did not complete' stopped.txt)"
echo PASS
