# common.sh: sourced by the experiment runners in this directory. Finds the repository, the
# demo run's final checkpoints (from each stage's DONE file) and runs kdtrain on 2 ranks.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
RANKS=${KD_EXP_RANKS:-2}
DEMO=${KD_DEMO_RUN:-runs/demo}
PY=/usr/bin/python3

# demo_ckpt STAGE: the final checkpoint directory of a finished demo stage.
demo_ckpt() {
  local done_file
  done_file=$(ls "$DEMO"/stages/*-"$1"/DONE 2>/dev/null | head -1)
  [ -n "$done_file" ] || { echo "no finished stage '$1' in $DEMO: run bash launch/demo.sh first" >&2; exit 2; }
  echo "$DEMO/$(awk '$1 == "checkpoint" {print $2}' "$done_file")" # DONE: relative to the run dir
}

# kd_run ARGS...: kdtrain run on $RANKS ranks, one thread each.
kd_run() {
  OMP_NUM_THREADS=1 launch/kdmpirun -np "$RANKS" build/kdtrain run "$@"
}
