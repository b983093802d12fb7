#!/usr/bin/env bash
# The DPO reference log-prob cache is computed once and reused by a restart of the stage,
# and invalidated (recomputed) when the reference weights or the data change.
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run() { OMP_NUM_THREADS=1 timeout -k 10 300 $KD_MPIRUN $KD_MPIRUN_FLAGS -np 2 "$KD_BIN" run "$@"; }
"$KD_BIN" data synth --out "$work/data" --examples 200 >/dev/null
# two different small base models
for s in 1 2; do
  run "$KD_SOURCE_DIR/configs/tiny.yaml" --quiet --set run.out_dir=$work/base$s --set run.seed=$s \
    --set stages.pretrain.steps=5 --set stages.pretrain.data=$work/data/pretrain.h5 \
    --set stages.pretrain.eval_data=$work/data/pretrain_val.h5
done
cat > "$work/dpo.yaml" <<YAML
run: {name: d, out_dir: $work/run, seed: 1}
model: {from: {checkpoint: $work/base1/stages/00-pretrain/ckpt/step-00000005}}
stages:
  - {name: dpo, kind: dpo, data: $work/data/prefs.h5, steps: 2, max_len: 96, max_prompt_len: 64,
     batch: {global: 4, micro: 2, seq_len: 96}}
YAML
expect() {  # expect computing|reusing -- run args...
  local want=$1; shift
  rm -rf "$work/run/stages/00-dpo/DONE" "$work/run/stages/00-dpo/ckpt"
  out=$(run "$work/dpo.yaml" --quiet "$@" 2>&1)
  echo "$out" | grep "reference log-probs" || true
  echo "$out" | grep -q "reference log-probs: $want" || { echo "FAIL: expected '$want'"; echo "$out"; exit 1; }
}
expect computing
expect reusing
expect computing --set model.from.checkpoint=$work/base2/stages/00-pretrain/ckpt/step-00000005 --resume never
expect reusing --set model.from.checkpoint=$work/base2/stages/00-pretrain/ckpt/step-00000005 --resume never
expect computing --set stages.dpo.data=$work/data/prefs_val.h5 --resume never
echo "dpo_ref_cache: OK"
