#!/usr/bin/env bash
# test_dry_run.sh: `kdtrain submit --dry-run` (no SLURM needed): one script per selected
# stage with the #SBATCH lines asked for, absolute binary/recipe paths, --set values
# quoted for the shell, the preemption trap and self-requeue; nothing written. Bad
# options are refused with exit 2 and a message.
set -uo pipefail
: "${KD_BIN:?}"
work=$(mktemp -d /tmp/kdtrain-dryrun.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
fail() { echo "FAIL: $*" >&2; exit 1; }
cat >r.yaml <<'Y'
run: {name: dry, out_dir: runs/dry}
stages:
  - {name: teacher, kind: pretrain, data: d.h5}
  - {name: kd, kind: pretrain, data: d.h5}
  - {name: sft, kind: pretrain, data: d.h5}
Y
"$KD_BIN" submit r.yaml --nodes 4 --ntasks-per-node 8 --gpus-per-node 8 --partition gpu \
  --time 12:00:00 --account acct --max-requeues 5 --sbatch-arg=--exclusive \
  --set "run.name=it's" --set run.seed=7 --dry-run >out.txt 2>err.txt || { cat err.txt; fail "dry run exited $?"; }
[ ! -e runs ] || fail "--dry-run wrote $(find runs | head -3)"
n=$(grep -c '^#!/bin/bash' out.txt); [ "$n" -eq 3 ] || fail "$n scripts printed, expected 3"
for want in '#SBATCH --nodes=4' '#SBATCH --ntasks-per-node=8' '#SBATCH --gpus-per-node=8' \
  '#SBATCH --partition=gpu' '#SBATCH --time=12:00:00' '#SBATCH --account=acct' '#SBATCH --requeue' \
  '#SBATCH --open-mode=append' '#SBATCH --signal=B:USR1@300' '#SBATCH --exclusive' 'max_requeues=5' \
  "#SBATCH --output=$work/runs/dry/slurm/01-kd.log" "--set 'run.name=it'\\''s' --set 'run.seed=7' --stage 'kd' --resume auto" \
  "cmd=('$(readlink -f "$KD_BIN")' run '$work/r.yaml'" 'srun --mpi=pmix' 'scontrol requeue "$SLURM_JOB_ID"' \
  "trap 'say \"got USR1"; do
  grep -qF -- "$want" out.txt || fail "dry-run output lacks: $want"
done
# The quoted --set survives the shell: evaluate the cmd line of the first script.
line=$(grep -m1 '^cmd=' out.txt)
eval "$line"
[ "${cmd[4]}" = "run.name=it's" ] || fail "quoted --set reads back as '${cmd[4]}'"
"$KD_BIN" submit r.yaml --nodes 1 --ntasks-per-node 2 --stages kd --dry-run >one.txt || fail "--stages kd exited $?"
n=$(grep -c '^#!/bin/bash' one.txt); [ "$n" -eq 1 ] && grep -q "stage 'kd'" one.txt || fail "--stages kd printed $n scripts"
expect_err() {  # expect_err NEEDLE ARGS...: exit 2 with NEEDLE on stderr
  local needle=$1; shift
  "$KD_BIN" submit "$@" >/dev/null 2>e.txt; local rc=$?
  [ $rc -eq 2 ] && grep -qF -- "$needle" e.txt || fail "submit $*: exit $rc, stderr '$(cat e.txt)', expected 2 and '$needle'"
}
expect_err "--nodes N is required" r.yaml --ntasks-per-node 2 --dry-run
expect_err "no stage named 'dpo'" r.yaml --nodes 1 --ntasks-per-node 2 --stages kd,dpo --dry-run
expect_err "--launcher: expected srun or mpirun" r.yaml --nodes 1 --ntasks-per-node 2 --launcher ssh --dry-run
expect_err "--nodes: expected an integer >= 1, found '0'" r.yaml --nodes 0 --ntasks-per-node 2 --dry-run
"$KD_BIN" status "$work" >/dev/null 2>e.txt; [ $? -eq 2 ] && grep -q 'not a run directory' e.txt || fail "status of a non-run dir: $(cat e.txt)"
echo "PASS"
