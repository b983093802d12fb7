#!/usr/bin/env bash
# ckpt_cli.sh: `kdtrain ckpt list|verify|digest` (through the tests-only driver until
# main.c dispatches `ckpt`). Proves: exit codes (0 valid, 3 invalid, 2 bad usage), --help,
# list shows stage/step/validity and why, verify names the damaged file for a flipped byte,
# a truncated file, a missing MANIFEST and a leftover .tmp dir; digest is stable across a
# re-save of the same weights and changes with them; a save into a directory the user may
# not write fails with exit 3 and leaves the previous checkpoint valid.
set -uo pipefail
TOOL="$KD_BUILD_DIR/tests/test_ckpt_tool"
MPI="timeout -k 10 120 $KD_MPIRUN $KD_MPIRUN_FLAGS"
W=$(mktemp -d /tmp/kd_ckpt_cli_XXXXXX)
trap 'rm -rf "$W"' EXIT
fails=0
expect() {  # expect WANT_RC NEEDLE -- cmd...
  local want=$1 needle=$2; shift 3
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ "$rc" != "$want" ] || ! grep -qF -- "$needle" <<<"$out"; then
    echo "FAIL: $* -> rc $rc (want $want), output lacks '$needle':"; echo "$out"; fails=$((fails+1))
  else
    echo "ok: $* -> $rc"
  fi
}
CK="$TOOL ckpt"
R="$W/run"
for s in 10 20 30 40; do $MPI -np 2 "$TOOL" save "$R/stages/01-kd/ckpt" $s 1 >/dev/null || exit 1; done
$MPI -np 1 "$TOOL" save "$R/stages/00-teacher/ckpt" 50 2 weights >/dev/null || exit 1
C="$R/stages/01-kd/ckpt"

expect 0 "usage: kdtrain ckpt" -- $CK --help
expect 0 "usage: kdtrain ckpt verify PATH" -- $CK verify --help
expect 0 "usage: kdtrain ckpt list RUN_DIR" -- $CK list --help
expect 0 "usage: kdtrain ckpt digest PATH" -- $CK digest --help
expect 2 "missing command" -- $CK
expect 2 "unknown command 'frobnicate'" -- $CK frobnicate
expect 2 "expected one argument PATH" -- $CK verify
expect 2 "expected one argument PATH" -- $CK verify a b
expect 2 "not a directory" -- $CK list "$W/nonexistent"
expect 0 "valid" -- $CK verify "$C/step-00000010"

# digest: same weights (seed 1) saved at steps 10 and 20 -> same digest; seed 2 differs
d10=$($CK digest "$C/step-00000010"); d20=$($CK digest "$C/step-00000020")
d50=$($CK digest "$R/stages/00-teacher/ckpt/step-00000050")
if [ ${#d10} != 64 ] || [ "$d10" != "$d20" ] || [ "$d10" = "$d50" ]; then
  echo "FAIL digest: $d10 / $d20 / $d50"; fails=$((fails+1)); else echo "ok: digest $d10"; fi

# damage: flip one byte in the middle of model.h5 (step 20), truncate optim.h5 (step 30),
# remove MANIFEST (step 40), leave an unfinished .tmp dir
f="$C/step-00000020/model.h5"; size=$(stat -c %s "$f"); at=$((size / 2))
b=$(od -An -tu1 -j$at -N1 "$f" | tr -d ' '); printf "$(printf '\\%03o' $(( b ^ 255 )))" |
  dd of="$f" bs=1 seek=$at conv=notrunc status=none
truncate -s 1000 "$C/step-00000030/optim.h5"
rm "$C/step-00000040/MANIFEST"
mkdir "$C/.tmp-step-00000060"; touch "$C/.tmp-step-00000060/model.h5"
expect 3 "step-00000020/model.h5: SHA-256" -- $CK verify "$C/step-00000020"
expect 3 "step-00000030/optim.h5: has 1000 bytes" -- $CK verify "$C/step-00000030"
expect 3 "step-00000040/MANIFEST: No such file" -- $CK verify "$C/step-00000040"
expect 3 "MANIFEST: No such file" -- $CK verify "$C/.tmp-step-00000060"
expect 3 "invalid" -- $CK digest "$C/step-00000020"
out=$($CK list "$R"); echo "$out"
for line in "00-teacher  *50 .*valid" "01-kd  *10 .*valid" "01-kd  *20 .*invalid: .*model.h5: SHA-256" \
            "01-kd  *30 .*invalid: .*optim.h5: has 1000 bytes" "01-kd  *40 .*invalid: .*MANIFEST" \
            "01-kd  *- .*unfinished: .tmp-step-00000060"; do
  grep -q -- "$line" <<<"$out" || { echo "FAIL list lacks /$line/"; fails=$((fails+1)); }
done

# a directory this user may not write: run the save as 'nobody' when we are root
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null && id nobody >/dev/null 2>&1; then
  chmod 755 "$W" "$R" "$R/stages" "$R/stages/01-kd"; chmod 755 "$C"
  # a copy nobody can execute even when the build tree is not reachable (a 0700 parent)
  cp "$TOOL" "$W/ckpt_tool.bin" && chmod 755 "$W/ckpt_tool.bin"
  out=$(cd /tmp && setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME=/tmp \
        OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
        timeout -k 10 60 "$KD_MPIRUN" --oversubscribe --mca btl_vader_single_copy_mechanism none \
        -np 2 "$W/ckpt_tool.bin" save "$C" 70 1 2>&1); rc=$?
  if [ $rc = 0 ] || ! grep -q "Permission denied" <<<"$out" || ls -a "$C" | grep -q "00000070"; then
    echo "FAIL EACCES save: rc $rc, output: $out"; ls -a "$C"; fails=$((fails+1))
  else echo "ok: EACCES -> rc $rc: $(grep -m1 'Permission denied' <<<"$out")"; fi
  expect 0 "valid" -- $CK verify "$C/step-00000010"
else
  echo "note: EACCES case skipped (needs root + setpriv to act as another user)"
fi
[ $fails = 0 ] && echo "ckpt CLI: all checks passed"
exit $fails
