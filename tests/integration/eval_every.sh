#!/usr/bin/env bash
# eval_every: periodic held-out evaluation during training. A pretrain stage logs eval_loss
# at every eval_every steps but the last (the stage's own final evaluation covers it), and
# the value at step 20 equals the final held-out loss of the same run stopped at step 20
# (constant lr, so the first 20 steps are identical). A kd stage logs the held-out KL to
# the teacher, student CE and teacher CE, also when training with CE only (kl 0).
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$KD_BIN" data synth --out "$work/data" >/dev/null
run() { OMP_NUM_THREADS=1 timeout -k 10 300 $KD_MPIRUN $KD_MPIRUN_FLAGS -np 2 "$KD_BIN" run "$@" --quiet; }
common=(--set "stages.pretrain.data=$work/data/pretrain.h5" --set "stages.pretrain.eval_data=$work/data/pretrain_val.h5"
        --set "stages.pretrain.optim={lr: 3.0e-3, schedule: constant}" --set stages.pretrain.eval_every=10)
run "$KD_SOURCE_DIR/configs/tiny.yaml" --set "run.out_dir=$work/a" --set stages.pretrain.steps=30 "${common[@]}"
run "$KD_SOURCE_DIR/configs/tiny.yaml" --set "run.out_dir=$work/b" --set stages.pretrain.steps=20 "${common[@]}"
T=$work/a/$(awk '$1 == "checkpoint" {print $2}' "$work/a/stages/00-pretrain/DONE")
cat > "$work/kd.yaml" <<YAML
run: {name: kd, out_dir: $work/kd, seed: 7, backend: cpu}
model: {from: {checkpoint: $T}}
teacher: {from: {checkpoint: $T}}
stages:
  - {name: kl, kind: kd, from: {checkpoint: $work/b/$(awk '$1 == "checkpoint" {print $2}' "$work/b/stages/00-pretrain/DONE")},
     data: $work/data/sft.h5, eval_data: $work/data/sft_val.h5, steps: 6, eval_every: 3, log_every: 3,
     batch: {global: 8, micro: 4, seq_len: 64}, loss: {kl: 1.0, ce: 0.0}}
  - {name: ce, kind: kd, from: {checkpoint: $work/b/$(awk '$1 == "checkpoint" {print $2}' "$work/b/stages/00-pretrain/DONE")},
     data: $work/data/sft.h5, eval_data: $work/data/sft_val.h5, steps: 6, eval_every: 3, log_every: 3,
     batch: {global: 8, micro: 4, seq_len: 64}, loss: {kl: 0.0, ce: 1.0}}
YAML
run "$work/kd.yaml"
"$KD_PYTHON" - "$work" <<'PY'
import json, sys
w = sys.argv[1]
def lines(path):
    return [json.loads(l) for l in open(path)]
a = [r for r in lines(f"{w}/a/stages/00-pretrain/metrics.jsonl") if "eval_loss" in r]
assert [r["step"] for r in a] == [10, 20], f"eval lines at steps {[r['step'] for r in a]}, expected [10, 20]"
done = dict(l.split(None, 1) for l in open(f"{w}/b/stages/00-pretrain/DONE"))
final = float(done["eval_loss"])
got = a[1]["eval_loss"]
print(f"pretrain: eval_loss at step 20 {got:.9g}; final held-out loss of the 20-step run {final:.9g}")
assert abs(got - final) <= 1e-6 * abs(final), (got, final)
for name in ("kl", "ce"):
    d = "00-kl" if name == "kl" else "01-ce"
    ev = [r for r in lines(f"{w}/kd/stages/{d}/metrics.jsonl") if "eval_loss" in r]
    assert [r["step"] for r in ev] == [3], f"kd {name}: eval lines at {[r['step'] for r in ev]}, expected [3]"
    r = ev[0]
    for k in ("eval_kl", "eval_student_ce", "eval_teacher_ce"):
        assert k in r and r[k] == r[k], f"kd {name}: {k} missing or NaN in {r}"
    assert r["eval_kl"] > 0 and r["eval_teacher_ce"] > 0, f"kd {name}: {r}"
    print(f"kd {name}: step 3 held-out kl {r['eval_kl']:.5f}, student ce {r['eval_student_ce']:.5f}, "
          f"teacher ce {r['eval_teacher_ce']:.5f}")
print("eval_every: OK")
PY
