#!/usr/bin/env bash
# Soak: the whole demo pipeline (configs/demo.yaml: pretrain, sft, eval, init, align x2,
# kd with pseudo-label generation, sft, dpo with its reference cache, evals) with fewer
# steps and small data, run under launch/kdrun while KILLS SIGKILLs hit a random rank at
# random moments spread over every stage kind: mid-step, mid-checkpoint-write (a .tmp-step-*
# of this attempt exists), mid-pseudo-label generation (a part of this attempt is being
# built or committed), the DPO reference cache, init and every eval. kdrun restarts each
# killed attempt with --resume auto. After every kill each step-* still verifies; at the end
# every stage's final checkpoint digest, DONE marker (step, held-out loss), eval.json and
# metrics.jsonl (all but timing keys) equal an uninterrupted run's.
#
# With --mixed, kills alternate between SIGKILL and a stop signal (ctest's short version).
# With --signals, each kill is a SIGTERM or SIGUSR1 to one random rank instead (once its stop
# flag handler is in place): every attempt must end within KD_SOAK_STOP_BOUND_S (60 s) with
# exit status 75 (0 if it had finished) and the run must still end identical.
#
# usage: soak_demo.sh [--signals|--mixed] [KILLS]   (default $KD_SOAK_KILLS, else 4; ctest
#        runs --mixed 4 (fault) and 20 (slow), through KD_SOAK_MODE=kill|signal|mixed and
#        KD_SOAK_KILLS). Kills are assigned to the moments below in order, spread evenly; a moment
#        the run passes before it is caught hands its kill to the next one. Fails if fewer
#        than KILLS kills landed. KD_FAULT_SEED replays the random choices; KD_FAULT_KEEP=1
#        keeps the runs. Needs KD_BIN, KD_SOURCE_DIR, KD_PYTHON, KD_MPIRUN (lib.sh).
source "$(dirname "$0")/lib.sh"
MODE=${KD_SOAK_MODE:-kill}
case ${1:-} in --signals) MODE=signal; shift ;; --mixed) MODE=mixed; shift ;; esac
# next_sig: the signal of the next kill (sets SIG): KILL; TERM or USR1 (--signals); --mixed
# alternates, starting with KILL
next_sig() {
    SIG=KILL
    [ $MODE = kill ] || { [ $MODE = mixed ] && [ $((kills % 2)) = 0 ]; } && return 0
    SIG=TERM; [ "$(rand 0 1)" = 0 ] || SIG=USR1
}
KILLS=${1:-${KD_SOAK_KILLS:-4}}
STOP_BOUND_S=${KD_SOAK_STOP_BOUND_S:-60} # --signals: an attempt must end this soon after the signal
SOAK_TIMEOUT=${KD_SOAK_TIMEOUT:-1500}

# ------------------------------------------------------------------ the reduced demo
"$KD_BIN" data synth --out "$W/wd/data/demo" --examples 200 --tokens 40000 >/dev/null
cd "$W/wd"
SETS=()
for kv in teacher=20,10,5 teacher_sft=20,10,5 align_matrix=10,5,2 align_hidden=10,5,2 kd=20,10,5 sft=20,10,5 \
    dpo=10,5,2; do
    IFS=, read -r steps every warm <<<"${kv#*=}"
    s=${kv%%=*}
    SETS+=(--set "stages.$s.steps=$steps" --set "stages.$s.checkpoint={every: $every, keep: 2}"
        --set "stages.$s.log_every=1" --set "stages.$s.optim.warmup=$warm")
done
SETS+=(--set stages.eval.max_new_tokens=64) # a longer final eval: kills left over land there
STAGES=(00-teacher 01-teacher_sft 02-teacher_eval 03-init 04-align_matrix 05-align_hidden 06-kd 07-kd_eval
    08-sft 09-sft_eval 10-dpo 11-eval)
MPI=(timeout -k 10 600 $KD_MPIRUN $KD_MPIRUN_FLAGS -np 2 "$KD_BIN" run "$KD_SOURCE_DIR/configs/demo.yaml" --quiet
    "${SETS[@]}")

# the test hooks of both runs: saves and pseudo-label parts take long enough to be hit
# (timing only), and parts of 8 prompts (the part size decides which prompts share a decode
# batch, which moves the top-K log-probs in the last bits: both runs must use the same)
export KD_CKPT_TEST_DELAY_MS=150 KD_PL_PART_PROMPTS=8 KD_TEST_PL_PART_DELAY_MS=150
echo "soak: uninterrupted reference run"
"${MPI[@]}" --set "run.out_dir=$W/ref" >"$W/ref.log" 2>&1 || { tail -20 "$W/ref.log"; echo "FAIL: reference run"; exit 1; }

# ------------------------------------------------------------------ moments
# NAME STAGE: the stage must be the running one (its dir without DONE, the previous DONE)
MOMENTS=("step 0" "ckpt 0" "step 1" "step 2" "step 3" "step 4" "ckpt 5" "plgen 6" "step 6" "step 7" "ckpt 8"
    "step 9" "refcache 10" "ckpt 10" "step 10" "end 11")
R=$W/soak
MARK=$W/attempt.mark # touched when an attempt's ranks appear: "of this attempt" means newer
sdir() { echo "$R/stages/${STAGES[$1]}"; }
running() { # stage $1 is the one being run
    local d; d=$(sdir "$1")
    [ -d "$d" ] && [ ! -e "$d/DONE" ] && { [ "$1" = 0 ] || [ -e "$(sdir $(($1 - 1)))/DONE" ]; }
}
fresh() { [ -n "$(find "$1" -maxdepth 1 -name "$2" -newer "$MARK" 2>/dev/null | head -1)" ]; }
moment_now() { # NAME STAGE: 0 when the moment is here
    running "$2" || return 1
    case $1 in
    step | end) return 0 ;;
    ckpt) fresh "$(sdir "$2")/ckpt" '.tmp-step-*' ;;
    plgen) [ ! -e "$(sdir "$2")/pseudo_labels.h5" ] && { fresh "$(sdir "$2")/pseudo_work" '.part-*' ||
        fresh "$(sdir "$2")/pseudo_work" 'part-*'; } ;;
    refcache) [ ! -e "$(sdir "$2")/ref_logps.h5" ] ;;
    esac
}
passed() { # NAME STAGE: the run is past the moment
    local d; d=$(sdir "$2")
    [ -e "$d/DONE" ] || { [ "$1" = plgen ] && [ -e "$d/pseudo_labels.h5" ]; } ||
        { [ "$1" = refcache ] && [ -e "$d/ref_logps.h5" ]; }
}
# ident PID: pid and start time (pids are reused on a busy machine)
ident() { echo "$1:$(awk '{print $22}' "/proc/$1/stat" 2>/dev/null)"; }
# the final eval is short: kills left over for it come at once (it is redone on every resume)
max_delay_ms() { case $1 in step) echo 400 ;; end) echo 50 ;; ckpt) echo 500 ;; plgen) echo 600 ;; *) echo 100 ;; esac; }

# ranks_up: both ranks of an attempt that has not been killed yet are running
ranks_up() {
    local a b; a=$(rank_pid 0); b=$(rank_pid 1)
    [ -n "$a" ] && [ -n "$b" ] && ! grep -qF -e " $(ident "$a") " -e " $(ident "$b") " <<<"$KILLED " || return 1
    [ "$SIG" = KILL ] || { handlers_set "$a" && handlers_set "$b"; }
}
# handlers_set PID: the rank catches SIGUSR1 (10) and SIGTERM (15): kdtrain's stop flag is in
# place (a signal before that ends the process the default way, which is not the promise)
handlers_set() {
    local m
    m=$(awk '/^SigCgt:/ {print $2}' "/proc/$1/status" 2>/dev/null) && [ -n "$m" ] || return 1
    (( (16#$m >> 9) & 1 && (16#$m >> 14) & 1 ))
}

# ------------------------------------------------------------------ the killed run
echo "soak: $KILLS kills over ${#MOMENTS[@]} moments"
touch "$MARK"
"$KD_SOURCE_DIR/launch/kdrun" --max-restarts $((KILLS + 5)) --backoff 0 -- "${MPI[@]}" --set "run.out_dir=$R" \
    >"$W/soak.log" 2>&1 &
SUP=$!
BG_PIDS+=("$SUP")
start=$(date +%s) kills=0 missed=() KILLED=""
next_sig
for ((m = 0; m < ${#MOMENTS[@]} && kills < KILLS; m++)); do
    read -r name stage <<<"${MOMENTS[$m]}"
    # kills due by the end of this moment: an even spread; a missed kill stays due
    due=$(((m + 1) * KILLS / ${#MOMENTS[@]}))
    while [ $kills -lt "$due" ]; do
        until ranks_up && moment_now "$name" "$stage"; do
            kill -0 "$SUP" 2>/dev/null || break 3
            passed "$name" "$stage" && break
            [ $(($(date +%s) - start)) -lt "$SOAK_TIMEOUT" ] || { echo "FAIL: soak timed out"; exit 1; }
            sleep 0.02
        done
        if ! ranks_up || ! moment_now "$name" "$stage"; then
            missed+=("$name@${STAGES[$stage]}")
            break # the next moment takes this kill
        fi
        sleep "0.$(printf '%03d' "$(rand 0 "$(max_delay_ms "$name")")")"
        r=$(rand 0 1)
        p0=$(rank_pid 0) p1=$(rank_pid 1)
        i0=$(ident "$p0") i1=$(ident "$p1")
        pid=$(rank_pid "$r")
        [ -n "$pid" ] || { r=$((1 - r)); pid=$(rank_pid "$r"); }
        sig=$SIG
        [ -n "$pid" ] && kill -s $sig "$pid" 2>/dev/null || continue # the attempt ended meanwhile
        t0=$(date +%s)
        KILLED="$KILLED $i0 $i1"
        kills=$((kills + 1))
        echo "kill $kills: $name in ${STAGES[$stage]}: SIG$sig rank $r (pid $pid)" \
            "$(cd "$(sdir "$stage")" 2>/dev/null && ls -d ckpt/.tmp-* pseudo_work/.part-* pseudo_work/part-* 2>/dev/null | tr '\n' ' ')"
        # the attempt is gone (mpirun tears the other rank down), then every step-* verifies
        while grep -qw -e "${p0:-x}" -e "${p1:-x}" <<<"$(tagged_pids)"; do
            [ "$sig" = KILL ] || [ $(($(date +%s) - t0)) -le "$STOP_BOUND_S" ] ||
                { echo "FAIL: SIG$sig: the attempt did not end within $STOP_BOUND_S s"; exit 1; }
            sleep 0.05
        done
        if [ "$sig" != KILL ]; then # kdrun logs the attempt's status: 75 (or 0: it had finished)
            until [ "$(grep -c "ended with" "$W/soak.log")" -ge $kills ]; do sleep 0.05; done
            st=$(grep "ended with" "$W/soak.log" | sed -n "${kills}s/.*exit status \([0-9]*\).*/\1/p")
            echo "  attempt ended $(($(date +%s) - t0)) s after SIG$sig with exit status $st"
            [ "$st" = 75 ] || [ "$st" = 0 ] || { echo "FAIL: SIG$sig: exit status $st, expected 75"; exit 1; }
        fi
        # the killed stage's step-* (what the kill could have damaged; all of them at the end):
        # hashing every checkpoint here would outlast the short stages that follow
        for c in "$(sdir "$stage")"/ckpt/step-*; do
            [ ! -d "$c" ] || "$KD_BIN" ckpt verify "$c" >/dev/null ||
                { "$KD_BIN" ckpt verify "$c"; echo "FAIL: $c does not verify after kill $kills"; exit 1; }
        done
        until ranks_up || ! kill -0 "$SUP" 2>/dev/null; do sleep 0.02; done
        touch "$MARK" # what the new attempt writes is newer than this
        next_sig
    done
done
set +e
wait "$SUP"
RC=$?
set -e
grep "kdrun:.*ended with" "$W/soak.log" | sed 's/^/  /'
[ ${#missed[@]} -eq 0 ] || echo "moments passed before a kill landed (their kill moved on): ${missed[*]}"
expect_rc 0 "kdrun over the killed run"
list=$("$KD_BIN" ckpt list "$R")
! grep -q "invalid" <<<"$list" || { echo "$list"; echo "FAIL: a step-* checkpoint does not verify"; exit 1; }

# ------------------------------------------------------------------ compare every stage
fails=0
for s in "${STAGES[@]}"; do
    da=$("$KD_BIN" ckpt digest "$W/ref/$(sed -n '1s/^checkpoint //p' "$W/ref/stages/$s/DONE")" | awk '{print $1}')
    db=$("$KD_BIN" ckpt digest "$R/$(sed -n '1s/^checkpoint //p' "$R/stages/$s/DONE")" | awk '{print $1}')
    what="digest $da"
    [ -n "$da" ] && [ "$da" = "$db" ] || { what="FAIL digest $da vs $db"; fails=$((fails + 1)); }
    if ! diff -q "$W/ref/stages/$s/DONE" "$R/stages/$s/DONE" >/dev/null; then
        what="$what; FAIL DONE differs"; fails=$((fails + 1))
    fi
    if [ -e "$W/ref/stages/$s/eval.json" ]; then
        if cmp -s "$W/ref/stages/$s/eval.json" "$R/stages/$s/eval.json"; then what="$what; eval.json equal"
        else what="$what; FAIL eval.json differs"; fails=$((fails + 1)); fi
    fi
    if [ -s "$W/ref/stages/$s/metrics.jsonl" ]; then
        n=$(wc -l <"$W/ref/stages/$s/metrics.jsonl")
        if out=$("$KD_PYTHON" "$KD_SOURCE_DIR/tests/fault/compare_metrics.py" "$W/ref/stages/$s/metrics.jsonl" \
            "$R/stages/$s/metrics.jsonl" 0 "$n" 2>&1); then what="$what; metrics equal ($n steps)"
        else what="$what; $out"; fails=$((fails + 1)); fi
    fi
    echo "$s: $what"
done
echo "soak: $kills kills, $(grep -c "ended with" "$W/soak.log") attempts, $(($(date +%s) - start)) s"
[ $fails -eq 0 ] || { echo "FAIL: $fails differences from the uninterrupted run"; exit 1; }
[ "$kills" -ge "$KILLS" ] || { echo "FAIL: only $kills of $KILLS kills landed"; exit 1; }
echo "PASS"
