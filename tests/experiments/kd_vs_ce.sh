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
runs = {}
for name in ("kd", "ce"):
    d = glob.glob(f"{out}/*-{name}")[0]
    rows = [json.loads(l) for l in open(f"{d}/metrics.jsonl")]
    final = json.load(open(f"{d}/eval.json"))
    curve = {r["step"]: (r["eval_kl"], r["eval_student_ce"]) for r in rows if "eval_kl" in r}
    curve[max(r["step"] for r in rows)] = (final["kl"], final["student_ce"])
    train_s = [r["elapsed_s"] for r in rows if "elapsed_s" in r][-1]
    runs[name] = (curve, final, train_s)
print("| step | KD held-out KL | CE-only held-out KL | KD held-out CE | CE-only held-out CE |")
print("|---|---|---|---|---|")
for step in sorted(runs["kd"][0]):
    (kk, kc), (ck, cc) = runs["kd"][0][step], runs["ce"][0].get(step, (float("nan"),) * 2)
    print(f"| {step} | {kk:.4f} | {ck:.4f} | {kc:.4f} | {cc:.4f} |")
print(f"teacher CE on the held-out answers: {runs['kd'][1]['teacher_ce']:.4f}; "
      f"train time kd {runs['kd'][2]:.1f} s, ce {runs['ce'][2]:.1f} s (training loop incl. the periodic evaluations)")
PY
