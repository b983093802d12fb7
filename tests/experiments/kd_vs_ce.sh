#!/usr/bin/env bash
# kd_vs_ce.sh: experiment (a): KD (KL to the online teacher) vs CE-only on the same
# pseudo-labels from the demo's aligned hybrid (configs/experiments/kd_vs_ce.yaml); prints
# held-out KL to the teacher and student CE of both. Needs a finished demo run.
source "$(dirname "$0")/common.sh"
S=$(demo_ckpt align_hidden) T=$(demo_ckpt teacher_sft)
kd_run configs/experiments/kd_vs_ce.yaml --quiet --set "model.from={checkpoint: $S}" \
  --set "teacher.from={checkpoint: $T}" "$@"
out=runs/kd_vs_ce/stages
$PY - "$out" <<'PY'
import json, sys, glob
out = sys.argv[1]
print("| run | loss | held-out KL(teacher‖student) | held-out student CE | teacher CE | train time (s) |")
print("|---|---|---|---|---|---|")
for name, loss in (("kd", "kl 1, ce 0"), ("ce", "kl 0, ce 1")):
    d = glob.glob(f"{out}/*-{name}")[0]
    e = json.load(open(f"{d}/eval.json"))
    last = [json.loads(l) for l in open(f"{d}/metrics.jsonl")][-1]
    print(f"| {name} | {loss} | {e['kl']:.4f} | {e['student_ce']:.4f} | {e['teacher_ce']:.4f} | {last['elapsed_s']:.1f} |")
PY
