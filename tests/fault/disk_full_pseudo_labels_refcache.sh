#!/usr/bin/env bash
# Promise: a full disk or a read-only output directory while the kd stage generates its
# pseudo-labels, or while the dpo stage writes its reference log-prob cache, stops the run
# with exit status 3 and a message naming the path and the reason; nothing half-written is
# left (no .part-*, *.tmp*, *.merge-tmp, no pseudo_labels.h5 or ref_logps.h5, every committed
# part still opens, no DONE); once space returns the same command resumes and ends with
# the digests of a run that never failed.
# The stage directories are small tmpfs mounts (real ENOSPC / EROFS from the kernel, see
# docs/fault-tolerance.md): read-only (remount,ro), then full (a filler file leaves room for
# a few parts), then grown (remount,size=64m). Skipped (77) when tmpfs cannot be mounted (not root,
# no CAP_SYS_ADMIN).
source "$(dirname "$0")/lib.sh"
MOUNTS=()
fault_extra_cleanup() { local m; for m in "${MOUNTS[@]}"; do umount "$m" 2>/dev/null || true; done; }
probe=$W/probe
mkdir -p "$probe"
mount -t tmpfs -o size=64k tmpfs "$probe" 2>/dev/null || { echo "SKIP: cannot mount a tmpfs here"; exit 77; }
umount "$probe"

D=$W/small
"$KD_BIN" data synth --out "$D" --examples 200 --tokens 40000 >/dev/null
cat >"$W/df.yaml" <<YAML
run: {name: df, seed: 1, backend: cpu}
model:
  arch: {vocab_size: 259, d_model: 32, n_layers: 2, n_heads: 2, n_kv_heads: 1, head_dim: 16, ffn_dim: 64}
teacher: {from: {stage: teacher}}
x-batch: &batch {global: 8, micro: 4, seq_len: 64}
stages:
  - {name: teacher, kind: pretrain, data: $D/pretrain.h5, steps: 4, batch: *batch}
  - {name: kd, kind: kd, steps: 4, batch: *batch, loss: {kl: 1.0, ce: 0.0},
     pseudo_labels: {generate: true, prompts: $D/prompts.h5, max_new_tokens: 8, top_k_logits: 4}}
  - {name: dpo, kind: dpo, data: $D/prefs.h5, steps: 2, max_len: 64, max_prompt_len: 48, batch: *batch}
YAML
export KD_PL_PART_PROMPTS=8 # parts of 8 prompts: a full disk is met between parts
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
run() { # run RUNDIR LOG: one 2-rank run; sets RC
    set +e
    # shellcheck disable=SC2086
    timeout -k 10 "$RUN_TIMEOUT" $KD_MPIRUN $KD_MPIRUN_FLAGS -np 2 "$KD_BIN" run "$W/df.yaml" --quiet \
        --set "run.out_dir=$1" >"$2" 2>&1
    RC=$?
    set -e
}
run "$W/ref" "$W/ref.log"
expect_rc 0 "reference run"

B=$W/b
mkdir -p "$B/stages/01-kd" "$B/stages/02-dpo"
for m in 01-kd 02-dpo; do mount -t tmpfs -o size=4m tmpfs "$B/stages/$m"; MOUNTS+=("$B/stages/$m"); done
KD=$B/stages/01-kd DPO=$B/stages/02-dpo

# expect_stop WHAT DIR REASON: exit 3, one error naming DIR and REASON, nothing half-written
expect_stop() {
    local what=$1 dir=$2 reason=$3 msg left
    msg=$(grep -m1 "kdtrain: error:" "$W/$what.log" || true)
    echo "$what: exit status $RC: $msg"
    [ "$RC" = 3 ] || fail "$what: exit status $RC, expected 3"
    grep -qF "$dir" <<<"$msg" && grep -qF "$reason" <<<"$msg" || fail "$what: the error does not name $dir and '$reason'"
    left=$(find "$dir" \( -name '.part-*' -o -name '*.tmp*' -o -name '*merge-tmp*' -o -name pseudo_labels.h5 \
        -o -name ref_logps.h5 -o -name DONE \) -print)
    [ -z "$left" ] || fail "$what: left behind: $left"
    local p
    for p in "$dir"/pseudo_work/part-*.h5; do
        [ -e "$p" ] || continue
        "$KD_BIN" data inspect "$p" >/dev/null 2>&1 || fail "$what: committed part $p does not open"
    done
}

# 1. pseudo-labels, read-only stage directory
mount -o remount,ro "$KD"
run "$B" "$W/pl_readonly.log"
expect_stop pl_readonly "$KD" "Read-only file system"
# 2. pseudo-labels, disk full after a few parts (a filler leaves 1100 KiB; a part is only
# started with its size + 1 MiB free, see room_for in stages/pseudo_label.c)
mount -o remount,rw "$KD"
dd if=/dev/zero of="$KD/filler" bs=4k count=749 2>/dev/null
run "$B" "$W/pl_full.log"
expect_stop pl_full "$KD" "No space left on device"
n=$(ls "$KD/pseudo_work" | grep -c '^part-' || true)
echo "  committed parts before the disk was full: $n"
[ "$n" -gt 0 ] || fail "pl_full: the disk was full before any part was committed (the test needs some)"
# 3. space returns; the dpo directory is full: the reference cache cannot be written
rm -f "$KD/filler"
mount -o remount,size=64m "$KD"
dd if=/dev/zero of="$DPO/filler" bs=4k 2>/dev/null || true
run "$B" "$W/ref_full.log"
expect_stop ref_full "$DPO" "No space left on device"
[ -e "$KD/DONE" ] || fail "ref_full: the kd stage did not finish once space returned"
# 4. the dpo directory read-only
rm -f "$DPO/filler"
mount -o remount,ro "$DPO"
run "$B" "$W/ref_readonly.log"
expect_stop ref_readonly "$DPO" "Read-only file system"
# 5. fixed: the run finishes, equal to the reference
mount -o remount,rw,size=64m "$DPO"
run "$B" "$W/fixed.log"
expect_rc 0 "rerun after the disk was fixed"
for s in 00-teacher 01-kd 02-dpo; do
    da=$("$KD_BIN" ckpt digest "$W/ref/$(sed -n '1s/^checkpoint //p' "$W/ref/stages/$s/DONE")" | awk '{print $1}')
    db=$("$KD_BIN" ckpt digest "$B/$(sed -n '1s/^checkpoint //p' "$B/stages/$s/DONE")" | awk '{print $1}')
    echo "$s: digest $da / $db"
    [ -n "$da" ] && [ "$da" = "$db" ] || fail "$s: digest differs from the reference run"
done
[ $fails -eq 0 ] || { echo "FAIL: $fails problems"; exit 1; }
echo PASS
