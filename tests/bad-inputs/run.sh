#!/usr/bin/env bash
# run.sh: the bad-input corpus runner (docs/errors.md). Runs every case of cases.tsv in a
# scratch work directory and checks, per case:
#   - the exit status is the documented one (never a signal death, status >= 128, and
#     never a hang: each case gets `timeout`, so 124 fails it);
#   - stderr (or stdout for `ckpt verify`, which reports there) holds the expected fragment;
#   - for status 2, the error is a line starting with "kdtrain" (or a usage text); status
#     3 of `ckpt verify` is its report "PATH: invalid: WHY" on stdout;
#   - no sanitizer report appears (ASan/UBSan/LSan builds run the same corpus);
#   - the work directory, with its runs/ tree and every input, is byte-for-byte unchanged
#     (sizes, mtimes and hashes snapshotted before and after): no run directory created or
#     modified, no partial or tmp file left behind.
# Environment (set by ctest, see tests/cmake/harden.cmake): KD_BIN, KD_BUILD_DIR,
# KD_SOURCE_DIR, KD_PYTHON, KD_MPIRUN, KD_MPIRUN_FLAGS. Optional: KD_CASES=REGEX runs
# only matching case names; KD_KEEP=1 keeps the work directory.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${KD_BIN:?set KD_BIN to the kdtrain binary}" "${KD_BUILD_DIR:?}" "${KD_PYTHON:=/usr/bin/python3}"
: "${KD_MPIRUN:=mpirun}" "${KD_MPIRUN_FLAGS:=--allow-run-as-root --oversubscribe}"
case_timeout=${KD_CASE_TIMEOUT:-60}

work=$(mktemp -d /tmp/kd_bad_inputs_XXXXXX)
[ "${KD_KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1

# ---------------------------------------------------------------- inputs
"$KD_PYTHON" "$here/make_inputs.py" data "$work" || { echo "FAIL: make_inputs.py data"; exit 1; }
ckpt_tool="$KD_BUILD_DIR/tests/test_ckpt_tool"
"$ckpt_tool" save "$work/good_ckpt" 3 1 >/dev/null || { echo "FAIL: cannot save the good checkpoint"; exit 1; }
CKPT_GOOD="$work/good_ckpt/step-00000003"
mkdir -p "$work/ckpt"
"$KD_PYTHON" "$here/make_inputs.py" ckpt "$CKPT_GOOD" "$work/ckpt" || { echo "FAIL: make_inputs.py ckpt"; exit 1; }
# An existing run directory the cases must leave untouched (a typo'd rerun must not
# damage earlier work). The good recipe's out_dir is runs/good.
mkdir -p runs/good/stages/00-pretrain
echo "step 2" > runs/good/stages/00-pretrain/DONE
echo "precious" > runs/good/recipe.resolved.yaml
# Variables the commands in cases.tsv use.
export KD="$KD_BIN" R="$here/recipes" GOOD="$here/recipes/good.yaml" B="$work/bad" C="$work/ckpt"
export CKPT_GOOD MPIRUN="$KD_MPIRUN $KD_MPIRUN_FLAGS"

snapshot() { # every path with its type, size, mtime and content hash
  # directories by name only: a tool may create and remove its own tmp file meanwhile
  find "$work" -path "$work/.case" -prune -o -type d -printf 'd %p\n' -o -printf '%y %s %T@ %p\n' | sort
  find "$work" -path "$work/.case" -prune -o -type f -print0 | sort -z | xargs -0 md5sum
}

fails=0 n=0
sanity() { # the good inputs pass, so each bad case fails for its own reason only
  local out
  out=$("$KD" check "$GOOD" 2>&1) || { echo "FAIL: good recipe does not pass check: $out"; exit 1; }
  out=$("$KD" ckpt verify "$CKPT_GOOD" 2>&1) || { echo "FAIL: good checkpoint does not verify: $out"; exit 1; }
}
sanity
before=$(snapshot)
mkdir -p "$work/.case"

while IFS=$'\t' read -r name status fragment cmd; do
  [[ -z "$name" || "$name" == \#* ]] && continue
  if [ -n "${KD_CASES:-}" ] && ! [[ "$name" =~ $KD_CASES ]]; then continue; fi
  n=$((n + 1))
  out="$work/.case/out" err="$work/.case/err"
  timeout -k 5 "$case_timeout" bash -c "$cmd" </dev/null >"$out" 2>"$err"
  rc=$?
  why=""
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    why="hung: killed after ${case_timeout}s"
  elif [ $rc -ge 128 ]; then
    why="died of signal $((rc - 128))"
  elif [ "$rc" != "$status" ]; then
    why="exit status $rc, expected $status"
  elif ! grep -qF -- "$fragment" "$err" "$out"; then
    why="output lacks the fragment '$fragment'"
  elif [ "$status" = 2 ] && ! grep -qE '^(kdtrain|usage: kdtrain)' "$err" "$out"; then
    why="no line starting with 'kdtrain' (or a usage line) in the output"
  fi
  if [ -z "$why" ] && grep -qE 'AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:' "$err"; then
    why="sanitizer report"
  fi
  after=$(snapshot)
  if [ -z "$why" ] && [ "$after" != "$before" ]; then
    why="the work directory changed:"$'\n'"$(diff <(echo "$before") <(echo "$after") | head -20)"
  fi
  if [ -n "$why" ]; then
    fails=$((fails + 1))
    echo "FAIL $name: $why"
    echo "  command: $cmd"
    sed 's/^/  stderr: /' "$err" | head -15
    sed 's/^/  stdout: /' "$out" | head -5
    # undo what the case did so later cases are judged on their own
    rm -rf "$work/runs"; mkdir -p runs/good/stages/00-pretrain
    echo "step 2" > runs/good/stages/00-pretrain/DONE; echo "precious" > runs/good/recipe.resolved.yaml
    before=$(snapshot)
  else
    printf 'ok   %-34s exit %s: %s\n' "$name" "$rc" "$(grep -hF -m1 -- "$fragment" "$err" "$out" | head -1 | cut -c1-150)"
  fi
done <"$here/cases.tsv"

echo "bad-inputs: $n cases, $fails failed"
[ $n -ge 1 ] && [ $fails -eq 0 ]
