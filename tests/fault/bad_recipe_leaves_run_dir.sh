#!/usr/bin/env bash
# Promise: a run directory is never damaged by a bad recipe or bad options. On an existing,
# interrupted run dir, `kdtrain run` with an invalid --set (bad value, unknown key, batch
# not divisible by the ranks, a missing data file, an unknown --resume mode) exits 2 and
# leaves every file byte-identical (same names, sizes, SHA-256 and mtimes); the run then
# still resumes from it.
source "$(dirname "$0")/lib.sh"

B=$W/b
KD_TEST_STOP_AT_STEP=20 kd_run 2 "$B" --quiet
expect_rc 75 "run stopped at step 20"
snap() { (cd "$B" && find . -printf '%p %s %T@ %m\n' | sort && find . -type f -print0 | sort -z | xargs -0 sha256sum); }
before=$(snap)
fails=0
for bad in "stages.pretrain.optim.lr=abc" "stages.pretrain.no_such_key=1" "stages.pretrain.batch.global=24" \
    "stages.pretrain.data=$W/missing.h5" "model.arch.d_model=-4" "--resume sometimes" \
    "model.arch.ffn_dim=128"; do
    if [ "${bad#--}" != "$bad" ]; then extra=($bad); else extra=(--set "$bad"); fi
    : >"$B.log"
    kd_run 2 "$B" --quiet "${extra[@]}"
    msg=$(grep -m1 "error" "$B.log" || true)
    after=$(snap)
    if [ "$RC" != 2 ] || [ "$before" != "$after" ]; then
        echo "FAIL '$bad': exit status $RC (want 2); run dir changed: $([ "$before" != "$after" ] && echo yes || echo no)"
        diff <(echo "$before") <(echo "$after") | head -10
        fails=$((fails + 1))
    else
        echo "ok '$bad': exit 2, run dir unchanged: $msg"
    fi
done
kd_run 2 "$B" --quiet
expect_rc 0 "the same run dir still resumes and finishes" || fails=$((fails + 1))
grep -q "resuming from $B/stages/00-pretrain/ckpt/step-00000020 " "$B.log" || { echo "FAIL: did not resume from step 20"; fails=$((fails + 1)); }
[ $fails = 0 ] && echo "bad_recipe_leaves_run_dir: OK"
exit $fails
