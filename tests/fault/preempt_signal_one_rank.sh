#!/usr/bin/env bash
# Promise: SIGUSR1 (SLURM's preemption warning) or SIGTERM delivered to ONE rank makes all
# ranks agree, save at the next step boundary and exit 75; mpirun reports 75 too; rerunning
# the same command continues bit for bit. The signal goes straight to one rank's pid (not
# to mpirun, which would forward it to every rank) so the collective agreement is tested.
# "Within one step": if metrics.jsonl showed step S when the signal was sent, the stop step
# is S (the vote of step S comes after its metrics line and any periodic save), S+1, or
# S+2 when the signalled rank had already cast its vote for S+1 while rank 0 had not yet
# written that step's line; never later.
source "$(dirname "$0")/lib.sh"

A=$W/a
kd_run 2 "$A" --quiet
expect_rc 0 "run A (uninterrupted)"
fails=0
for sig in USR1 TERM; do
    B=$W/b_$sig
    r=$(rand 0 1)
    kd_start 2 "$B" --quiet
    wait_step "$B" "$(rand 4 25)" || true
    pid=$(rank_pid "$r")
    s0=$(last_step "$B")
    kill -s "$sig" "$pid"
    bg_wait
    stop=$(sed -n "s/.*stage 'pretrain' stopped at step \([0-9]*\) by \(.*\); saved.*/\1 (\2)/p" "$B.log")
    ck=$B/stages/00-pretrain/ckpt/step-$(printf %08d "${stop%% *}")
    echo "SIG$sig to rank $r (pid $pid) when metrics showed step $s0: mpirun exit status $RC; stopped at step $stop"
    if [ "$RC" != 75 ] || [ -z "$stop" ] || [ "${stop%% *}" -lt "$s0" ] || [ "${stop%% *}" -gt $((s0 + 2)) ] ||
        ! "$KD_BIN" ckpt verify "$ck" >/dev/null || [ "$(last_step "$B")" != "${stop%% *}" ]; then
        echo "FAIL SIG$sig: want exit 75, a stop at step $s0..$((s0 + 2)) with a valid checkpoint there" \
            "and metrics ending at it (metrics end at $(last_step "$B"))"
        sed 's/^/    /' "$B.log"
        fails=$((fails + 1))
        continue
    fi
    # both ranks are gone (mpirun waited for them) and the job resumes bitwise
    kd_run 2 "$B" --quiet
    expect_rc 0 "rerun after SIG$sig" || fails=$((fails + 1))
    grep -m1 -o "resuming from .*" "$B.log" | sed 's/^/  /'
    same_digest "$A" "$B" || fails=$((fails + 1))
    same_metrics "$A" "$B" 0 || fails=$((fails + 1))
done
[ $fails = 0 ] && echo "preempt_signal_one_rank: OK"
exit $fails
