#!/usr/bin/env bash
# fake_kdtrain.sh: stands in for `kdtrain run RECIPE [--set K=V]... --stage NAME --resume auto`
# in the slurm tests while the real `kdtrain run` has no --stage/--resume (the tests use the
# real binary as soon as it has them). It keeps the contract the sbatch scripts rely on:
# every SLURM task runs it, task 0 writes RUN/stages/NN-name/{metrics.jsonl, ckpt/step-*/
# MANIFEST, DONE}; SIGUSR1/SIGTERM save a checkpoint and exit 75; --resume auto continues
# from the newest checkpoint. The stage's data file is validated by the real
# `kdtrain data inspect` (KD_REAL_BIN), so bad data fails the way kdtrain reports it.
# Test recipes name their stages with one "  - name: X" line each and "data: PATH" lines.
set -u
[ "${1:-}" = run ] || { echo "fake_kdtrain: only 'run' is supported" >&2; exit 2; }
recipe=$2; shift 2
stage=""; resume=no
while [ $# -gt 0 ]; do
  case $1 in
    --set) shift ;;
    --stage) stage=$2; shift ;;
    --resume) resume=$2; shift ;;
    *) echo "fake_kdtrain: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
out_dir=$(awk '/^ *out_dir:/ {print $2; exit}' "$recipe")
idx=$(awk -v s="$stage" '/^ *- name:/ {if ($3 == s) {print n + 0; exit} n++}' "$recipe")
[ -n "$idx" ] || { echo "kdtrain: error: --stage: no stage named '$stage'" >&2; exit 2; }
data=$(awk -v s="$stage" '/^ *- name:/ {cur = $3} /^ *data:/ && cur == s {print $2; exit}' "$recipe")
steps=$(awk -v s="$stage" '/^ *- name:/ {cur = $3} /^ *steps:/ && cur == s {print $2; exit}' "$recipe")
steps=${steps:-10}
dir=$out_dir/stages/$(printf '%02d' "$idx")-$stage
rank=${SLURM_PROCID:-0}
if [ -n "$data" ] && ! "$KD_REAL_BIN" data inspect "$data" >/dev/null 2>/tmp/fake_kdtrain.$$; then
  [ "$rank" = 0 ] && echo "kdtrain: error: stages.$stage.data: $(head -1 /tmp/fake_kdtrain.$$)" >&2
  rm -f /tmp/fake_kdtrain.$$
  exit 2
fi
rm -f /tmp/fake_kdtrain.$$
mkdir -p "$dir/ckpt"
echo "task $rank of ${SLURM_NTASKS:-?} job ${SLURM_JOB_ID:-?} restart ${SLURM_RESTART_COUNT:-0}" >>"$dir/tasks.log"
step=0
if [ "$resume" = auto ]; then
  last=$(ls -d "$dir"/ckpt/step-*/MANIFEST 2>/dev/null | sort | tail -1)
  [ -n "$last" ] && step=$((10#$(basename "$(dirname "$last")" | cut -d- -f2)))
  [ "$rank" = 0 ] && echo "kdtrain: stage $stage: resuming at step $step"
fi
save() {
  [ "$rank" = 0 ] || return 0
  local d=$dir/ckpt/step-$(printf '%08d' "$step")
  mkdir -p "$d" && echo "step $step" >"$d/MANIFEST"
}
stop=0
trap 'stop=1' USR1 TERM
while [ "$step" -lt "$steps" ]; do
  sleep 0.3
  step=$((step + 1))
  [ "$rank" = 0 ] && echo "{\"step\": $step, \"loss\": $(awk -v s="$step" 'BEGIN {printf "%.4f", 5.0 / s}')}" >>"$dir/metrics.jsonl"
  [ $((step % 5)) -eq 0 ] && save
  if [ "$stop" = 1 ] && [ "$step" -lt "$steps" ]; then
    save
    [ "$rank" = 0 ] && echo "kdtrain: stage $stage: saved at step $step on a signal; exit 75 to be requeued"
    exit 75
  fi
done
if [ "$rank" = 0 ]; then
  echo "$stage ${SLURM_JOB_ID:-?} $(date +%s.%N)" >>"$out_dir/order.log"
  echo "step $step" >"$dir/DONE"
fi
exit 0
