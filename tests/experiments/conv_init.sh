#!/usr/bin/env bash
# conv_init.sh: experiment (e): conv1d init `identity` vs `default` (PyTorch Conv1d) of the
# converted layers, through init + align + kd from the demo's teacher
# (configs/experiments/conv_init.yaml), for the seeds given (default 1234 1235); prints the
# held-out KL to the teacher and student CE of each run. Needs a finished demo run.
source "$(dirname "$0")/common.sh"
T=$(demo_ckpt teacher_sft)
LABELS=$(dirname "$(ls "$DEMO"/stages/*-kd/DONE | head -1)")/pseudo_labels.h5
SEEDS=${KD_EXP_SEEDS:-"1234 1235"}
for seed in $SEEDS; do
  for conv in identity default; do
    kd_run configs/experiments/conv_init.yaml --quiet --set "stages.init.conv=$conv" \
      --set "run.seed=$seed" --set "run.out_dir=runs/conv_init/$conv-$seed" \
      --set "model.from={checkpoint: $T}" --set "teacher.from={checkpoint: $T}" \
      --set "stages.kd.data=$LABELS" "$@"
  done
done
$PY - "$SEEDS" <<'PY'
import json, sys, glob
seeds = sys.argv[1].split()
print("| conv | seed | align_hidden final loss | held-out student CE @50 | @150 | @300 | held-out KL to the teacher @300 |")
print("|---|---|---|---|---|---|---|")
for conv in ("identity", "default"):
    for seed in seeds:
        base = f"runs/conv_init/{conv}-{seed}/stages"
        kd = glob.glob(f"{base}/*-kd")[0]
        rows = [json.loads(l) for l in open(f"{kd}/metrics.jsonl")]
        ev = {r["step"]: r["eval_student_ce"] for r in rows if "eval_student_ce" in r}
        ah = [json.loads(l) for l in open(glob.glob(f"{base}/*-align_hidden")[0] + "/metrics.jsonl")]
        ah_loss = [r["loss"] for r in ah if "loss" in r][-1]
        fin = json.load(open(f"{kd}/eval.json"))
        print(f"| {conv} | {seed} | {ah_loss:.4f} | {ev.get(50, float('nan')):.4f} | "
              f"{ev.get(150, float('nan')):.4f} | {fin['student_ce']:.4f} | {fin['kl']:.4f} |")
PY
