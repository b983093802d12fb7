#!/usr/bin/env bash
# Promise: a damaged newest checkpoint is never loaded. Truncating one of its files,
# flipping one byte in one, or deleting its MANIFEST makes resume warn "skipping PATH: why"
# (naming the damaged file) and fall back to the previous checkpoint; a leftover temporary
# directory (.tmp-*) is skipped with a warning and removed by the next save. One damaged run
# is then finished and must equal an uninterrupted run bit for bit (the fallback lost only
# time). The snapshot: steps 10, 20, 30 saved, stopped at 30 (KD_TEST_STOP_AT_STEP).
source "$(dirname "$0")/lib.sh"

A=$W/a S=$W/snap
kd_run 2 "$A" --quiet
expect_rc 0 "run A (uninterrupted)"
KD_TEST_STOP_AT_STEP=30 kd_run 2 "$S" --quiet
expect_rc 75 "snapshot run stopped at step 30"
all_valid "$S"
fails=0

# case NAME DAMAGE_CMD EXPECT_IN_WARNING: copy the snapshot, damage step-30, resume for one
# step (stop at 31) and check the warning and the step resumed from
case_run() {
    local name=$1 damage=$2 want=$3 dir=$W/$1
    cp -a "$S" "$dir"
    local c30=$dir/stages/00-pretrain/ckpt/step-00000030
    (cd "$c30" && eval "$damage")
    KD_TEST_STOP_AT_STEP=31 kd_run 2 "$dir" --quiet
    local warn resumed
    warn=$(grep -m1 "warning: skipping $c30" "$dir.log" || true)
    resumed=$(grep -m1 -o "resuming from [^ ]*" "$dir.log" || true)
    if [ "$RC" != 75 ] || [ -z "$warn" ] || ! grep -qF -- "$want" <<<"$warn" ||
        [ "$resumed" != "resuming from $dir/stages/00-pretrain/ckpt/step-00000020" ]; then
        echo "FAIL $name: exit status $RC (want 75); warning '$warn' (want it to name '$want');" \
            "'$resumed' (want step-00000020)"
        sed 's/^/    /' "$dir.log"
        fails=$((fails + 1))
    else
        echo "ok $name: $warn"
        echo "   -> $resumed"
    fi
}

size=$(stat -c %s "$S/stages/00-pretrain/ckpt/step-00000030/model.h5")
case_run truncate_model "truncate -s $((size / 2)) model.h5" "model.h5: has $((size / 2)) bytes"
# one byte in the middle of the optimizer moments (inside tensor data: HDF5 would not notice)
osize=$(stat -c %s "$S/stages/00-pretrain/ckpt/step-00000030/optim.h5")
flip="$KD_PYTHON -c \"import sys; f=open('optim.h5','r+b'); f.seek($osize*3//4); b=f.read(1); f.seek($osize*3//4); f.write(bytes([b[0]^0x01]))\""
case_run flip_optim_byte "$flip" "optim.h5: SHA-256"
case_run flip_state_byte "sed -i 's/\"step\": 30/\"step\": 31/' state.json" "state.json: SHA-256"
case_run no_manifest "rm MANIFEST" "MANIFEST"

# a leftover temporary directory: warned about, ignored, removed by the next save (prune)
dir=$W/leftover
cp -a "$S" "$dir"
tmpd=$dir/stages/00-pretrain/ckpt/.tmp-step-00000040
mkdir "$tmpd" && echo junk >"$tmpd/model.h5"
KD_TEST_STOP_AT_STEP=31 kd_run 2 "$dir" --quiet
if [ "$RC" != 75 ] || ! grep -q "warning: skipping $tmpd: unfinished checkpoint" "$dir.log" ||
    ! grep -q "resuming from $dir/stages/00-pretrain/ckpt/step-00000030 " "$dir.log" || [ -e "$tmpd" ] ||
    ! grep -q "removed leftover $tmpd" "$dir.log"; then
    echo "FAIL leftover_tmp: exit status $RC; exists after save: $([ -e "$tmpd" ] && echo yes || echo no)"
    sed 's/^/    /' "$dir.log"
    fails=$((fails + 1))
else
    echo "ok leftover_tmp: $(grep -m1 "skipping $tmpd" "$dir.log"); resumed from step-00000030; removed by the next save"
fi

# finish the byte-flip case: it passes through step 30 again (replacing the damaged one)
# and must end exactly where the uninterrupted run ended
kd_run 2 "$W/flip_optim_byte" --quiet
expect_rc 0 "finishing the run whose newest checkpoint was damaged" || fails=$((fails + 1))
all_valid "$W/flip_optim_byte" || fails=$((fails + 1))
same_digest "$A" "$W/flip_optim_byte" || fails=$((fails + 1))
same_metrics "$A" "$W/flip_optim_byte" 0 || fails=$((fails + 1))
[ $fails = 0 ] && echo "corrupt_ckpt_fallback: OK"
exit $fails
