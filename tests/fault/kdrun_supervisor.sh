#!/usr/bin/env bash
# Promise (launch/kdrun): exit 0 and 2 end supervision at once; any other status (3, 75,
# 137) restarts, at most --max-restarts times, each attempt with `--resume auto` appended
# and logged with its exit status; a signal sent to kdrun is forwarded to the command and
# stops supervision. A fake command replays a list of exit statuses, one per attempt.
set -euo pipefail
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
KDRUN=$KD_SOURCE_DIR/launch/kdrun
cat >"$W/fake.sh" <<'FAKE'
#!/usr/bin/env bash
# fake command: appends its arguments to $W/calls, exits with the next listed status
# (the USR1 trap comes first, before anything that forks, so no signal finds it unset)
trap 'echo got-USR1 >>"$FAKE_DIR/calls"; exit 75' USR1
n=$( { wc -l <"$FAKE_DIR/calls"; } 2>/dev/null || echo 0)
echo "$*" >>"$FAKE_DIR/calls"
codes=($FAKE_CODES)
code=${codes[$n]:-0}
if [ "$code" = wait ]; then
    touch "$FAKE_DIR/ready"  # the trap is in place: the test may signal now
    sleep 30 & wait
fi
exit "$code"
FAKE
chmod +x "$W/fake.sh"
export FAKE_DIR=$W
fails=0
# check NAME CODES MAX WANT_RC WANT_CALLS
check() {
    rm -f "$W/calls"
    set +e
    FAKE_CODES=$2 "$KDRUN" --max-restarts "$3" --backoff 0 -- "$W/fake.sh" run r.yaml >"$W/log" 2>&1
    local rc=$?
    set -e
    local calls; calls=$(grep -c "^run r.yaml --resume auto$" "$W/calls" || true)
    if [ "$rc" != "$4" ] || [ "$calls" != "$5" ]; then
        echo "FAIL $1: exit $rc (want $4), $calls attempts with --resume auto (want $5)"; cat "$W/log"; fails=$((fails + 1))
    else echo "ok $1: exit $rc after $calls attempt(s)"; fi
}
check "done at once" "0" 3 0 1
check "bad input is not retried" "2" 3 2 1
check "3, 75, 137 restart until done" "3 75 137 0" 3 0 4
check "gives up after max restarts" "3 3 3 3 3" 2 3 3
check "2 after a restart ends it" "75 2 0" 3 2 2
grep -q "attempt 2 ended with exit status 2 (bad input)" "$W/log" || { echo "FAIL: no exit-status log line"; cat "$W/log"; fails=$((fails + 1)); }
# a signal to kdrun is forwarded and ends supervision
rm -f "$W/calls"
FAKE_CODES="wait 0" "$KDRUN" --max-restarts 3 --backoff 0 -- "$W/fake.sh" run r.yaml >"$W/log" 2>&1 &
k=$!
for _ in $(seq 1 600); do [ -e "$W/ready" ] && break; sleep 0.05; done
kill -USR1 "$k"
set +e; wait "$k"; rc=$?; set -e
if [ "$rc" != 75 ] || ! grep -q got-USR1 "$W/calls" || [ "$(grep -c '^run' "$W/calls")" != 1 ]; then
    echo "FAIL forward: exit $rc (want 75), calls: $(tr '\n' '|' <"$W/calls")"; cat "$W/log"; fails=$((fails + 1))
else echo "ok forward: SIGUSR1 reached the command, kdrun exited 75 without restarting"; fi
"$KDRUN" --max-restarts x -- true 2>/dev/null && { echo "FAIL: bad --max-restarts accepted"; fails=$((fails + 1)); }
[ $fails = 0 ] && echo "kdrun_supervisor: OK"
exit $fails
