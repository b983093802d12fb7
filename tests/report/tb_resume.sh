#!/usr/bin/env bash
# TensorBoard events across a kill and resume, read by TensorBoard's own reader: a 2-rank
# run of the tiny recipe (checkpoints every 10 of 40 steps, a metrics line every step,
# held-out loss every 10) is killed (SIGKILL, rank 0) after it logged steps past its last
# checkpoint, a torn half record is appended to its event file (what a kill mid-write
# leaves), and the same command finishes the run. Then every scalar TensorBoard reads equals
# metrics.jsonl's value (float32) at the same step, each step once (tb_check.py). Meanwhile
# `kdtrain status` says the run is alive while it runs and not alive after the kill.
source "$(dirname "$0")/../fault/lib.sh"
B=$W/b
kd_start 2 "$B" --quiet --set stages.pretrain.eval_every=10
wait_step "$B" 14 || { echo "FAIL: run ended before step 14 (exit $RC)"; cat "$B.log"; exit 1; }
if [ -n "${KD_REPORT_STATUS:-1}" ]; then
    "$KD_BIN" status "$B" | tee "$W/status_live.txt"
    grep -q "alive: yes" "$W/status_live.txt" || { echo "FAIL: status of a running run does not say alive"; exit 1; }
    grep -q "stage *00-pretrain" "$W/status_live.txt" || { echo "FAIL: status does not name the stage"; exit 1; }
fi
kill -9 "$(rank_pid 0)"
bg_wait
[ "$RC" != 0 ] || { echo "FAIL: the killed run reported success"; exit 1; }
stage=$B/stages/00-pretrain
logged=$(last_step "$B")
ckpt=$(ls -d "$stage"/ckpt/step-* | tail -1)
echo "killed at step $logged; newest checkpoint $(basename "$ckpt")"
[ "$logged" -gt "$((10#${ckpt##*step-}))" ] || { echo "FAIL: nothing logged after the last checkpoint: the test proves nothing"; exit 1; }
"$KD_BIN" status "$B" | tee "$W/status_dead.txt"
grep -q "alive: no" "$W/status_dead.txt" || { echo "FAIL: status of a killed run does not say 'alive: no'"; exit 1; }
"$KD_BIN" report "$B" --out "$W/killed.html" >/dev/null
grep -q "Unfinished" "$W/killed.html" && grep -q "pretrain</b> stopped at step $logged" "$W/killed.html" \
    || { echo "FAIL: the killed run's report does not say where it stopped"; exit 1; }
# a torn record: a length header and half a payload
printf '\x40\x00\x00\x00\x00\x00\x00\x00\x01\x02\x03\x04\x09\x00' >>"$stage/events.out.tfevents.kdtrain"
kd_run 2 "$B" --quiet --set stages.pretrain.eval_every=10
expect_rc 0 "resumed run"
grep -q "resum" "$B.log" || { echo "FAIL: the second run did not resume"; cat "$B.log"; exit 1; }
PYTHONPATH=$KD_PYDEPS "$KD_PYTHON" "$KD_SOURCE_DIR/tests/report/tb_check.py" "$B"
"$KD_BIN" status "$B" | tee "$W/status_done.txt"
grep -q "finished" "$W/status_done.txt" || { echo "FAIL: status of a finished run does not say finished"; exit 1; }
echo "tb_resume: OK"
