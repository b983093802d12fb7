#!/usr/bin/env bash
# Promise: a frozen rank (SIGSTOP: alive but silent, so MPI never notices) is detected by
# the other rank's watchdog within run.collective_timeout_s (5 s here), the job exits
# non-zero with a message naming the collective and the step, and the supervisor
# (launch/kdrun) restarts it; it resumes and finishes with the uninterrupted run's digest.
# Detection time is measured from the SIGSTOP to the watchdog's message in the log; it may
# exceed the timeout by the watchdog's 0.2 s poll plus the time until the other rank enters
# its next collective (at most one step, well under a second here): bound timeout + 3 s.
source "$(dirname "$0")/lib.sh"

A=$W/a B=$W/b
kd_run 2 "$A" --quiet
expect_rc 0 "run A (uninterrupted)"

recipe_args "$B"
# shellcheck disable=SC2086
timeout -k 10 240 "$KD_SOURCE_DIR/launch/kdrun" --max-restarts 2 --backoff 1 -- \
    $KD_MPIRUN $KD_MPIRUN_FLAGS -np 2 "$KD_BIN" run "${RARGS[@]}" --set run.collective_timeout_s=5 --quiet \
    >"$B.log" 2>&1 &
BG=$!
BG_PIDS+=("$BG")
STALE_INODE=
wait_step "$B" "$(rand 12 25)" || { echo "FAIL: the run ended early"; cat "$B.log"; exit 1; }
r=$(rand 0 1)
pid=$(rank_pid "$r")
kill -STOP "$pid"
t0=$(date +%s.%N)
s0=$(last_step "$B")
echo "SIGSTOP rank $r (pid $pid) at step $s0"
msg=""
for _ in $(seq 1 300); do # up to 30 s
    msg=$(grep -m1 "watchdog: collective" "$B.log" || true)
    [ -n "$msg" ] && break
    sleep 0.1
done
t1=$(date +%s.%N)
# no SIGCONT from here: mpirun must tear the frozen rank down by itself
dt=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
echo "detected after ${dt} s: $msg"
fails=0
if [ -z "$msg" ] || awk -v d="$dt" 'BEGIN { exit !(d < 4.5 || d > 8.0) }'; then
    echo "FAIL: watchdog message after ${dt} s, expected within 5..8 s of the SIGSTOP"
    fails=$((fails + 1))
fi
set +e
wait "$BG"
RC=$?
set -e
grep "^kdrun:" "$B.log" | sed 's/^/  /'
expect_rc 0 "kdrun (restarted after the watchdog abort)" || fails=$((fails + 1))
grep -q "attempt 1 ended with exit status [1-9]" "$B.log" || { echo "FAIL: the first attempt did not fail"; fails=$((fails + 1)); }
grep -q "attempt 2/3: .*--resume auto" "$B.log" || { echo "FAIL: no restart with --resume auto"; fails=$((fails + 1)); }
if grep -q "resuming from" "$B.log"; then
    grep -m1 -o "resuming from .*" "$B.log" | sed 's/^/  /'
else
    echo "FAIL: the restart did not resume from a checkpoint"; fails=$((fails + 1))
fi
same_digest "$A" "$B" || fails=$((fails + 1))
same_metrics "$A" "$B" 0 || fails=$((fails + 1))
[ $fails = 0 ] && echo "frozen_rank_watchdog: OK"
exit $fails
