#!/usr/bin/env bash
# Promise: kill any rank at any moment (SIGKILL: no handler runs), run the same command
# again, and the result is bit-for-bit the result of a run that was never interrupted.
# Run A: 40 steps on 2 ranks, uninterrupted. Run B: the same command, killed five times at
# different kinds of moment (start-up/resume, mid-step, mid-checkpoint-write, mid-step later,
# final save/eval), each on a random rank, and restarted after each kill until it finishes.
# After every kill each step-* checkpoint verifies (a kill leaves a whole checkpoint or a
# .tmp-* directory, never a broken step-*). At the end the final checkpoints' digests are
# equal, B's metrics.jsonl equals A's in every key but the timing ones (exactly: same world
# size, same operations), and so do the held-out losses in DONE.
source "$(dirname "$0")/lib.sh"

A=$W/a B=$W/b
kd_run 2 "$A" --quiet
expect_rc 0 "run A (uninterrupted)"

# kill_rank: SIGKILL one random rank of the running job; waits for mpirun; checks B
kill_rank() {
    local what=$1 r pid
    r=$(rand 0 1)
    pid=$(rank_pid "$r")
    if [ -z "$pid" ]; then # the job ended (or has not started ranks yet): try the other one
        r=$((1 - r)); pid=$(rank_pid "$r")
    fi
    [ -n "$pid" ] || { bg_wait; echo "FAIL: $what: no rank alive to kill (run ended with $RC)"; exit 1; }
    kill -9 "$pid" 2>/dev/null || true
    bg_wait
    echo "kill $((kills + 1)) ($what): SIGKILL rank $r (pid $pid) at step $(last_step "$B"); mpirun exit status $RC;" \
        "temp dirs: $(cd "$B/stages/00-pretrain/ckpt" 2>/dev/null && ls -d .tmp-* 2>/dev/null | tr '\n' ' ')"
    [ "$RC" != 0 ] || { echo "FAIL: $what: the killed run reported success"; exit 1; }
    all_valid "$B"
    kills=$((kills + 1))
}

kills=0
# 1. start-up: within the first second (MPI init, recipe, data, or the first steps)
kd_start 2 "$B" --quiet
for _ in $(seq 1 200); do [ -n "$(rank_pid 0)" ] && [ -n "$(rank_pid 1)" ] && break; sleep 0.02; done
sleep "0.$(rand 1 9)"
kill_rank "start-up"

# 2. mid-step, early: after a random step of the first 15, plus up to 0.1 s
kd_start 2 "$B" --quiet
wait_step "$B" "$(rand 3 15)" && sleep "0.0$(rand 0 9)"
kill_rank "mid-step (early)"

# 3. mid-checkpoint-write: rank 0 sleeps 0.7 s after each file of a save; kill while a
# .tmp-step-* exists, at a random point among its files (model.h5, optim.h5, MANIFEST)
KD_CKPT_TEST_DELAY_MS=700 kd_start 2 "$B" --quiet
ck=$B/stages/00-pretrain/ckpt
for _ in $(seq 1 2400); do
    compgen -G "$ck/.tmp-step-*" >/dev/null && break
    kill -0 "$BG" 2>/dev/null || break
    sleep 0.02
done
compgen -G "$ck/.tmp-step-*" >/dev/null || { echo "FAIL: no checkpoint write was seen in progress"; exit 1; }
sleep "$(rand 0 1).$(rand 0 9)"
kill_rank "mid-checkpoint-write"

# 4. mid-step, later: a random step up to 35
kd_start 2 "$B" --quiet
wait_step "$B" "$(( $(last_step "$B") + $(rand 1 8) ))" && sleep "0.0$(rand 0 9)"
kill_rank "mid-step (late)"

# 5. the end: after the last step (final save, held-out evaluation, DONE); the final save
# is slowed so the kill lands in it or just after it
KD_CKPT_TEST_DELAY_MS=300 kd_start 2 "$B" --quiet
wait_step "$B" "$STEPS" && sleep "0.$(rand 0 9)"
if [ -f "$B/stages/00-pretrain/DONE" ]; then
    echo "FAIL: the run finished before the last kill (slower machine expected): rerun with another KD_FAULT_SEED"
    exit 1
fi
kill_rank "final save / evaluation"

[ "$kills" -ge 5 ] || { echo "FAIL: only $kills kills"; exit 1; }
# restart with the same command until done
for attempt in 1 2; do
    kd_run 2 "$B" --quiet
    [ "$RC" = 0 ] && break
done
expect_rc 0 "run B restarted after $kills kills"
grep -h "resuming from\|skipping" "$B.log" | sed 's/^/  log: /' | head -20

same_digest "$A" "$B"
same_metrics "$A" "$B" 0
ea=$(sed -n 's/^eval_loss //p' "$A/stages/00-pretrain/DONE")
eb=$(sed -n 's/^eval_loss //p' "$B/stages/00-pretrain/DONE")
[ "$ea" = "$eb" ] || { echo "FAIL: held-out loss $ea (A) vs $eb (B)"; exit 1; }
echo "held-out loss A = B = $ea"
echo "kill_resume_bitwise: OK"
