#!/usr/bin/env bash
# kd_topk.sh: experiment (b): cached top-K teacher (K = 8, 16, 32) vs online KD
# (configs/experiments/kd_topk.yaml). Every stage runs as its own process (--stage) so
# that each training stage's peak memory (max RSS per rank, /usr/bin/time -v) and time
# are its own; prints held-out KL / CE, peak RSS and training time. Needs a finished demo.
source "$(dirname "$0")/common.sh"
S=$(demo_ckpt align_hidden) T=$(demo_ckpt teacher_sft)
R=configs/experiments/kd_topk.yaml
out=runs/kd_topk
mkdir -p "$out"
for st in labels8 labels16 labels32 cache8 eval_cache8 cache16 eval_cache16 cache32 eval_cache32 \
          online eval_online; do
  OMP_NUM_THREADS=1 launch/kdmpirun -np "$RANKS" sh -c \
    '/usr/bin/time -v -o "$0.rss.$OMPI_COMM_WORLD_RANK" "$@"' "$out/$st" \
    build/kdtrain run "$R" --quiet --stage "$st" --set "model.from={checkpoint: $S}" \
    --set "teacher.from={checkpoint: $T}"
done
$PY - "$out" <<'PY'
import json, sys, glob, re
out = sys.argv[1]
def rss_mb(st):
    v = []
    for f in sorted(glob.glob(f"{out}/{st}.rss.*")):
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(f).read())
        v.append(int(m.group(1)) / 1024)
    return max(v)
print("| teacher | held-out KL | student CE | vs online KL | peak RSS/rank (MiB) | train time (s) |")
print("|---|---|---|---|---|---|")
rows = {}
for name in ("online", "cache8", "cache16", "cache32"):
    e = json.load(open(glob.glob(f"{out}/stages/*-eval_{name}/eval.json")[0]))
    last = [json.loads(l) for l in open(glob.glob(f"{out}/stages/*-{name}/metrics.jsonl")[0])][-1]
    rows[name] = (e, rss_mb(name), last["elapsed_s"])
kl0 = rows["online"][0]["kl"]
for name, (e, rss, t) in rows.items():
    label = "online" if name == "online" else f"top-{name[5:]} cache"
    print(f"| {label} | {e['kl']:.4f} | {e['student_ce']:.4f} | {100 * (e['kl'] / kl0 - 1):+.1f}% | {rss:.1f} | {t:.1f} |")
print(f"teacher CE {rows['online'][0]['teacher_ce']:.4f}")
PY
