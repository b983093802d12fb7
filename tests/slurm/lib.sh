# lib.sh: sourced by the slurm tests. Starts a private SLURM (slurm_up.sh) in a fresh
# directory, stops it on exit, and provides helpers. Tests exit 77 (SKIP) when SLURM
# cannot start here. Expects KD_BIN (the kdtrain binary) in the environment.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${KD_BIN:?KD_BIN must point at the kdtrain binary}"
KD_BIN=$(readlink -f "$KD_BIN")
work=$(mktemp -d /tmp/kdtrain-slurm-test.XXXXXX)
chmod 0755 "$work"
cleanup() {
  bash "$here/slurm_down.sh" "$work/cluster"
  if [ "${KD_KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
bash "$here/slurm_up.sh" "$work/cluster"
up=$?
[ $up -eq 0 ] || { echo "SKIP: SLURM could not be started here (slurm_up.sh exit $up)"; exit 77; }
# shellcheck disable=SC1091
source "$work/cluster/env.sh"
cd "$work" || exit 1

fail() {
  echo "FAIL: $*" >&2
  { echo "== squeue"; squeue -o '%i %T %r' 2>&1; echo "== sinfo"; sinfo -N -l 2>&1
    echo "== slurmctld.log"; tail -8 "$work/cluster/log/slurmctld.log"; } >&2
  for f in "$work"/runs/*/slurm/*.log; do [ -f "$f" ] && { echo "== $f"; tail -20 "$f"; }; done >&2
  exit 1
}

# The binary the sbatch scripts run. KD_TEST_STEP_DELAY_MS slows each training step
# (timing only, results unchanged) so signals land mid-stage; sbatch exports it to the jobs.
RUN_BIN=$KD_BIN
export KD_TEST_STEP_DELAY_MS=300

# job_field ID KEY: one field of `scontrol show job` (JobState, Restarts, StartTime, ...).
job_field() { scontrol show job -o "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }

# wait_state ID SECONDS STATE...: until the job is in one of the states; prints the state.
wait_state() {
  local id=$1 secs=$2 st=""; shift 2
  for _ in $(seq $((secs * 2))); do
    st=$(job_field "$id" JobState)
    for want in "$@"; do [ "$st" = "$want" ] && { echo "$st"; return 0; }; done
    sleep 0.5
  done
  echo "$st"; return 1
}

# The synthetic corpus every test recipe trains on.
make_data() { "$KD_BIN" data synth --out "$work/data" >/dev/null || fail "kdtrain data synth failed"; }
