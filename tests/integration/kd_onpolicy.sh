#!/usr/bin/env bash
# kd `lmbda` (on-policy distillation, TRL's GKD): with lmbda 1 every step trains on answers
# the student samples itself (JSD beta 0.5 to the online teacher). Checks: the run is
# deterministic (a second run gives the same losses and the same final weights, bit for
# bit), it differs from lmbda 0 (the answers really are replaced), and a run resumed from
# its step-2 checkpoint regenerates the same rows: the same final weights.
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
"$KD_BIN" data synth --out data --examples 200 >/dev/null
# teacher: 6 pretraining steps; student: 2 steps from another seed (they must differ)
for m in "t 6 1234" "s 2 99"; do
  set -- $m
  OMP_NUM_THREADS=1 "$KD_BIN" run "$KD_SOURCE_DIR/configs/tiny.yaml" --quiet --set run.out_dir=$1 \
    --set stages.pretrain.steps=$2 --set run.seed=$3 --set stages.pretrain.data=data/pretrain.h5 \
    --set stages.pretrain.eval_data=
done
ck=$work/t/$(awk '$1 == "checkpoint" {print $2}' t/stages/00-pretrain/DONE) # DONE: relative to the run dir
cs=$work/s/$(awk '$1 == "checkpoint" {print $2}' s/stages/00-pretrain/DONE)
cat > kd.yaml <<YAML
run: {name: kd, out_dir: a, backend: cpu, seed: 7}
model: {from: {checkpoint: $cs}}
teacher: {from: {checkpoint: $ck}}
stages:
  - name: kd
    kind: kd
    data: data/sft.h5
    steps: 4
    log_every: 1
    batch: {global: 4, micro: 2, seq_len: 64}
    checkpoint: {every: 2, keep: 3}
    optim: {lr: 3.0e-3}
    loss: {kl: 1.0, divergence: jsd, beta: 0.5}
    lmbda: 1.0
    onpolicy_max_new_tokens: 16
YAML
run() { OMP_NUM_THREADS=1 "$KD_BIN" run kd.yaml --quiet --set run.out_dir="$1" "${@:2}"; }
losses() { grep '"loss"' "$1"/stages/00-kd/metrics.jsonl | sed 's/.*"loss": \([^,]*\),.*/\1/' | tr '\n' ' '; }
final() { "$KD_BIN" ckpt digest "$1"/stages/00-kd/ckpt/step-00000004 | awk '{print $1}'; }
run a
run b
run c --set stages.kd.lmbda=0
la=$(losses a) lb=$(losses b) lc=$(losses c)
echo "lmbda 1: $la"
echo "again:   $lb"
echo "lmbda 0: $lc"
[ "$la" = "$lb" ] || { echo "FAIL: two lmbda-1 runs differ"; exit 1; }
[ "$(final a)" = "$(final b)" ] || { echo "FAIL: final weights of two lmbda-1 runs differ"; exit 1; }
[ "$la" != "$lc" ] || { echo "FAIL: lmbda 1 trains on the same rows as lmbda 0"; exit 1; }
# resume: run b keeps its step-2 checkpoint only and continues to step 4 (same out_dir:
# the stage's hash names it)
want=$(final a)
rm -rf b/stages/00-kd/ckpt/step-00000004 b/stages/00-kd/DONE
run b > resume.txt 2>&1
grep -q "resuming from .*step-00000002 (step 2" resume.txt || { cat resume.txt; echo "FAIL: did not resume from step 2"; exit 1; }
[ "$want" = "$(final b)" ] || { echo "FAIL: the resumed run ends with other weights"; exit 1; }
echo "kd_onpolicy: OK"
