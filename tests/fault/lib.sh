# lib.sh: helpers the fault tests source. A temp work dir (removed on exit, with every
# process this test started), the demo data, the tiny recipe on N ranks with checkpoints
# every 10 of 40 steps, finding one rank's pid, waiting for a step, and the metric/digest
# comparisons. Environment (set by tests/CMakeLists.txt): KD_BIN, KD_SOURCE_DIR,
# KD_PYTHON, KD_MPIRUN, KD_MPIRUN_FLAGS. Every random choice derives from KD_FAULT_SEED
# (printed) so a failing test can be replayed with the same kill moments.
set -euo pipefail
: "${KD_BIN:?}" "${KD_SOURCE_DIR:?}" "${KD_PYTHON:?}" "${KD_MPIRUN:?}"
export OMP_NUM_THREADS=1
# each step takes at least this long, so kills land at the intended moments on any machine
export KD_TEST_STEP_DELAY_MS=${KD_TEST_STEP_DELAY_MS:-50}
FAULT_SEED=${KD_FAULT_SEED:-$(( $(date +%s) % 100000 ))}
RANDOM=$FAULT_SEED
echo "fault test seed: KD_FAULT_SEED=$FAULT_SEED"
W=$(mktemp -d /tmp/kdfault.XXXXXX)
chmod 755 "$W"
# every rank inherits this tag: rank pids are found by it, never by process name
export KD_FAULT_TAG=$W
STEPS=40
RUN_TIMEOUT=${KD_FAULT_RUN_TIMEOUT:-150}
BG_PIDS=()

fault_cleanup() {
    local p
    for p in "${BG_PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    for p in $(tagged_pids); do kill -CONT "$p" 2>/dev/null; kill -9 "$p" 2>/dev/null || true; done
    if declare -F fault_extra_cleanup >/dev/null; then fault_extra_cleanup; fi
    [ -n "${KD_FAULT_KEEP:-}" ] && { echo "kept $W"; return; }
    rm -rf "$W"
}
trap fault_cleanup EXIT

"$KD_BIN" data synth --out "$W/data" >/dev/null

# "pid rank" of each rank of this test's jobs: kdtrain processes whose environment holds
# this test's KD_FAULT_TAG (other users' kdtrain processes are never touched)
tagged_pids_ranks() {
    local pid env r
    for pid in $(pgrep -x kdtrain || true); do
        env=$( { tr "\\0" "\\n" <"/proc/$pid/environ"; } 2>/dev/null) || continue
        grep -qxF "KD_FAULT_TAG=$W" <<<"$env" || continue
        r=$(sed -n 's/^OMPI_COMM_WORLD_RANK=//p' <<<"$env")
        [ -n "$r" ] && echo "$pid $r"
    done
    return 0
}
tagged_pids() { tagged_pids_ranks | awk '{print $1}'; }
# rank_pid R: the pid of rank R of this test's running job (empty if none)
rank_pid() { tagged_pids_ranks | awk -v r="$1" '$2 == r {print $1; exit}'; }

# recipe_args RUNDIR: sets RARGS, the recipe arguments every run of a test uses
recipe_args() {
    RARGS=("$KD_SOURCE_DIR/configs/tiny.yaml" --set "run.out_dir=$1" \
        --set "stages.pretrain.data=$W/data/pretrain.h5" --set "stages.pretrain.eval_data=$W/data/pretrain_val.h5" \
        --set stages.pretrain.steps=$STEPS --set stages.pretrain.checkpoint.every=10 \
        --set stages.pretrain.log_every=1)
}

# kd_run NP RUNDIR [ARGS...]: one run in the foreground; sets RC; output in RUNDIR.log
kd_run() {
    local np=$1 dir=$2; shift 2
    recipe_args "$dir"
    set +e
    # shellcheck disable=SC2086
    timeout -k 10 "$RUN_TIMEOUT" $KD_MPIRUN $KD_MPIRUN_FLAGS -np "$np" "$KD_BIN" run "${RARGS[@]}" "$@" \
        >>"$dir.log" 2>&1
    RC=$?
    set -e
    return 0
}

# kd_start NP RUNDIR [ARGS...]: the same in the background; BG is the pid to wait for
kd_start() {
    local np=$1 dir=$2; shift 2
    recipe_args "$dir"
    # metrics.jsonl still holds the killed attempt's lines until the new one rewrites it
    # (a rename: a new inode); wait_step ignores the file until then
    STALE_INODE=$(stat -c %i "$dir/stages/00-pretrain/metrics.jsonl" 2>/dev/null || true)
    # shellcheck disable=SC2086
    timeout -k 10 "$RUN_TIMEOUT" $KD_MPIRUN $KD_MPIRUN_FLAGS -np "$np" "$KD_BIN" run "${RARGS[@]}" "$@" \
        >>"$dir.log" 2>&1 &
    BG=$!
    BG_PIDS+=("$BG")
}

# bg_wait: waits for BG, sets RC
bg_wait() { set +e; wait "$BG"; RC=$?; set -e; }

# last_step RUNDIR: the newest step in metrics.jsonl (0 if none)
last_step() {
    local f=$1/stages/00-pretrain/metrics.jsonl
    [ -s "$f" ] || { echo 0; return; }
    tail -n 1 "$f" | sed -n 's/^{"step": \([0-9]*\),.*/\1/p' | grep . || echo 0
}

# wait_step RUNDIR N: until metrics.jsonl reaches step N (or BG ended); 1 if BG ended first
wait_step() {
    local t=0 f=$1/stages/00-pretrain/metrics.jsonl
    while [ -n "$STALE_INODE" ] && [ "$(stat -c %i "$f" 2>/dev/null)" = "$STALE_INODE" ]; do
        kill -0 "$BG" 2>/dev/null || return 1
        sleep 0.02
    done
    STALE_INODE=
    while [ "$(last_step "$1")" -lt "$2" ]; do
        kill -0 "$BG" 2>/dev/null || return 1
        sleep 0.05
        t=$((t + 1))
        [ $t -lt 2400 ] || { echo "FAIL: step $2 not reached in 120 s"; return 1; }
    done
}

# rand A B: a random integer in [A, B]
rand() { echo $(( $1 + RANDOM % ($2 - $1 + 1) )); }

# final_ckpt RUNDIR: the final checkpoint of the stage (from DONE: relative to the run dir)
final_ckpt() { echo "$1/$(sed -n '1s/^checkpoint //p' "$1/stages/00-pretrain/DONE")"; }

# same_digest A B: the final checkpoints of two finished runs hold identical weights
same_digest() {
    local da db
    da=$("$KD_BIN" ckpt digest "$(final_ckpt "$1")" | awk '{print $1}')
    db=$("$KD_BIN" ckpt digest "$(final_ckpt "$2")" | awk '{print $1}')
    echo "digest $(basename "$1"): $da"
    echo "digest $(basename "$2"): $db"
    [ -n "$da" ] && [ "$da" = "$db" ] || { echo "FAIL: final checkpoint digests differ"; return 1; }
}

# same_metrics A B [TOL]: metrics.jsonl of B equals A's at every step in every key but
# tokens_per_s/elapsed_s (exactly, or within TOL)
same_metrics() {
    "$KD_PYTHON" "$KD_SOURCE_DIR/tests/fault/compare_metrics.py" "$1/stages/00-pretrain/metrics.jsonl" \
        "$2/stages/00-pretrain/metrics.jsonl" "${3:-0}" "$STEPS"
}

# all_valid RUNDIR: every step-* checkpoint of the stage verifies (a kill never leaves a
# half-written step-*); prints them
all_valid() {
    local c ok=0
    for c in "$1"/stages/00-pretrain/ckpt/step-*; do
        [ -d "$c" ] || continue
        if "$KD_BIN" ckpt verify "$c" >/dev/null 2>&1; then echo "  valid $(basename "$c")"
        else echo "FAIL: $c is not a valid checkpoint"; "$KD_BIN" ckpt verify "$c" || true; ok=1; fi
    done
    return $ok
}

# expect_rc WANT WHAT: checks RC
expect_rc() {
    [ "$RC" = "$1" ] || { echo "FAIL: $2: exit status $RC, expected $1"; return 1; }
    echo "ok: $2: exit status $RC"
}
