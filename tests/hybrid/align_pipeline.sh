#!/usr/bin/env bash
# configs/hybrid.yaml's pipeline on 2 ranks (teacher -> init -> align matrix -> align hidden
# -> CE) plus a control stage `plain` that runs phase hidden straight from the init:
#  - align matrix and align hidden each lower every aligned layer's loss (mean of the last
#    5 logged steps < 0.9 x mean of the first 5: the drop is a trend, not step noise);
#  - every metrics line of an align stage has loss/layer0 and loss/layer2, and their sum is
#    the logged loss (1e-6 relative: both are float sums printed with 9 digits);
#  - MOHAWK ordering: phase hidden after phase matrix ends lower than phase hidden from the
#    plain init (same steps, data and learning rate);
#  - the CE stage trains the hybrid (its loss falls).
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$KD_BIN" data synth --out "$work/data" >/dev/null
d="$work/data/pretrain.h5"
sets=(--set "run.out_dir=$work/run" --quiet)
for s in teacher matrix hidden ce; do sets+=(--set "stages.$s.data=$d" --set "stages.$s.log_every=1"); done
sets+=(--set "stages.teacher.eval_data=$work/data/pretrain_val.h5" --set "stages.ce.eval_data=$work/data/pretrain_val.h5")
sets+=(--set stages.teacher.steps=150 --set stages.ce.steps=40)
# the control: append a stage to a copy of the recipe
cp "$KD_SOURCE_DIR/configs/hybrid.yaml" "$work/hybrid.yaml"
cat >> "$work/hybrid.yaml" <<YAML
  - name: plain            # control: phase hidden straight from the init
    kind: align
    phase: hidden
    from: {stage: init}
    data: $d
    steps: 60
    log_every: 1
    batch: {global: 8, micro: 4, seq_len: 64}
    optim: {lr: 1.0e-3, warmup: 5, schedule: cosine, grad_clip: 1.0}
YAML
OMP_NUM_THREADS=1 timeout -k 10 500 $KD_MPIRUN $KD_MPIRUN_FLAGS -np 2 "$KD_BIN" run "$work/hybrid.yaml" "${sets[@]}"
"$KD_PYTHON" - "$work/run/stages" <<'PY'
import json, sys, glob
root = sys.argv[1]
def metrics(name):
    (path,) = glob.glob(f"{root}/*-{name}/metrics.jsonl")
    return [json.loads(l) for l in open(path)]
ok = True
def check(cond, msg):
    global ok
    print(("ok   " if cond else "FAIL ") + msg)
    ok &= bool(cond)
def mean(xs): return sum(xs) / len(xs)
final = {}
for stage in ("matrix", "hidden", "plain"):
    m = metrics(stage)
    check(len(m) == 60, f"{stage}: 60 logged steps (found {len(m)})")
    check(all("loss/layer0" in r and "loss/layer2" in r for r in m), f"{stage}: every line has loss/layer0 and loss/layer2")
    worst = max(abs(r["loss/layer0"] + r["loss/layer2"] - r["loss"]) / r["loss"] for r in m)
    check(worst <= 1e-6, f"{stage}: loss == sum of per-layer losses (worst rel diff {worst:.1e}, tol 1e-6)")
    for key in ("loss/layer0", "loss/layer2", "loss"):
        a, b = mean([r[key] for r in m[:5]]), mean([r[key] for r in m[-5:]])
        check(b < 0.9 * a, f"{stage}: {key} falls: first 5 steps {a:.4f} -> last 5 steps {b:.4f} (need < 0.9x)")
    final[stage] = mean([r["loss"] for r in m[-5:]])
check(final["hidden"] < final["plain"],
      f"MOHAWK ordering: hidden after matrix {final['hidden']:.4f} < hidden from plain init {final['plain']:.4f}")
ce = metrics("ce")
a, b = mean([r["loss"] for r in ce[:5]]), mean([r["loss"] for r in ce[-5:]])
check(b < a, f"ce: hybrid CE falls {a:.4f} -> {b:.4f}")
print("align_pipeline: OK" if ok else "align_pipeline: FAILED")
sys.exit(0 if ok else 1)
PY
