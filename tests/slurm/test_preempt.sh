#!/usr/bin/env bash
# test_preempt.sh: preemption on a real slurmctld. `scancel --batch --signal=USR1` (what
# --signal=B:USR1@SECS sends before the time limit) reaches the batch shell, which forwards
# it to kdtrain; kdtrain saves and exits 75 and the job requeues itself, restarts with
# SLURM_RESTART_COUNT=1, resumes from the checkpoint and completes; the next stage then
# runs. A second run with --max-requeues 0 ends FAILED and cancels its dependent.
# The preempted run's final weights equal an uninterrupted run's bit for bit (kdtrain ckpt
# digest of the newest checkpoints, same world size).
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
source "$here/recipe.sh"
make_data
write_recipe "$work/pre.yaml" pre 30 long after

wait_ckpt() {  # wait_ckpt STAGE_DIR: until a checkpoint with a MANIFEST exists
  for _ in $(seq 120); do ls "$1"/ckpt/step-*/MANIFEST >/dev/null 2>&1 && return 0; sleep 0.5; done
  return 1
}

# ---- 1. preempted once, requeued, resumed, completed
"$KD_BIN" submit pre.yaml --nodes 1 --ntasks-per-node 2 --max-requeues 2 --kdtrain "$RUN_BIN" || fail "submit exited $?"
mapfile -t ids < <(grep -v '^#' runs/pre/slurm/jobs.tsv | cut -f2)
wait_state "${ids[0]}" 60 RUNNING >/dev/null || fail "job ${ids[0]} never ran"
wait_ckpt runs/pre/stages/00-long || fail "no checkpoint of 'long' appeared"
scancel --batch --signal=USR1 "${ids[0]}" || fail "scancel --batch --signal=USR1 failed"
st=$(wait_state "${ids[0]}" 120 COMPLETED FAILED CANCELLED) || fail "job ${ids[0]} still '$st' after the requeue"
[ "$st" = COMPLETED ] || fail "preempted job ended $st"
restarts=$(job_field "${ids[0]}" Restarts)
[ "$restarts" = 1 ] || fail "Restarts=$restarts after one preemption, expected 1"
log=runs/pre/slurm/00-long.log
grep -q 'got USR1, forwarding' "$log" || fail "the batch shell did not see USR1"
grep -q 'requeueing (restart 1 of 2)' "$log" || fail "the job did not requeue itself"
grep -q 'start (restart 1 of at most 2)' "$log" || fail "no second start with SLURM_RESTART_COUNT=1"
resumed=$(sed -n 's/.*resuming from .* (step \([0-9]*\).*/\1/p' "$log" | tail -1)
[ -n "$resumed" ] && [ "$resumed" -ge 5 ] || fail "the restart resumed at step '${resumed:-none}', expected >= 5"
[ -f runs/pre/stages/00-long/DONE ] || fail "no DONE marker for 'long'"
st=$(wait_state "${ids[1]}" 120 COMPLETED FAILED CANCELLED) || fail "job ${ids[1]} still '$st'"
[ "$st" = COMPLETED ] || fail "stage 'after' ended $st"
"$KD_BIN" status runs/pre | tee status.out
grep -q '^00-long .* COMPLETED *1 ' status.out || fail "status does not show 1 restart for 'long'"

# Bitwise: the same recipe uninterrupted, same world size (2 ranks).
# shellcheck disable=SC2086
KD_TEST_STEP_DELAY_MS=0 timeout -k 10 300 $KD_MPIRUN $KD_MPIRUN_FLAGS -np 2 "$KD_BIN" run pre.yaml \
  --set run.out_dir=runs/ref --stage long --quiet || fail "uninterrupted reference run failed"
a=$(ls -d runs/pre/stages/00-long/ckpt/step-* | sort | tail -1)
b=$(ls -d runs/ref/stages/00-long/ckpt/step-* | sort | tail -1)
[ "$(basename "$a")" = "$(basename "$b")" ] || fail "newest checkpoints differ in step: $a vs $b"
da=$("$KD_BIN" ckpt digest "$a") && db=$("$KD_BIN" ckpt digest "$b") || fail "kdtrain ckpt digest failed"
[ -n "$da" ] && [ "$da" = "$db" ] || fail "preempted run's weights $da differ from the uninterrupted run's $db"

# ---- 2. no requeues left: the stage fails and its dependent is cancelled
write_recipe "$work/pre0.yaml" pre0 30 long after
"$KD_BIN" submit pre0.yaml --nodes 1 --ntasks-per-node 2 --max-requeues 0 \
  --kdtrain "$RUN_BIN" || fail "submit exited $?"
mapfile -t ids0 < <(grep -v '^#' runs/pre0/slurm/jobs.tsv | cut -f2)
wait_state "${ids0[0]}" 60 RUNNING >/dev/null || fail "job ${ids0[0]} never ran"
wait_ckpt runs/pre0/stages/00-long || fail "no checkpoint in runs/pre0"
scancel --batch --signal=USR1 "${ids0[0]}"
st=$(wait_state "${ids0[0]}" 60 COMPLETED FAILED CANCELLED) || fail "job ${ids0[0]} still '$st'"
[ "$st" = FAILED ] || fail "with --max-requeues 0 the preempted job ended $st, expected FAILED"
grep -q 'max-requeues 0 is used up' runs/pre0/slurm/00-long.log || fail "no 'used up' message"
st=$(wait_state "${ids0[1]}" 30 CANCELLED COMPLETED FAILED) || fail "dependent still '$st'"
[ "$st" = CANCELLED ] || fail "dependent ended $st, expected CANCELLED"
echo "PASS: preempted at a checkpoint, requeued, resumed at step $resumed and completed; max-requeues honoured"
