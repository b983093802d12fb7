# tb_check.py RUN_DIR: TensorBoard's own reader (EventAccumulator, PYTHONPATH=$KD_PYDEPS)
# loads every stage's event file, and its scalars equal metrics.jsonl's values (and a
# finished stage's eval.json) rounded to float32, step for step: the same steps (each once), the same tags (STAGE/KEY), nothing
# more, nothing less. Tolerance: none: both sides are the float32 of the same double
# (metrics.jsonl prints it with 9 significant digits; float32(that) is float32(double)
# except at ties, which the assertion would show). EventAccumulator drops out-of-order
# steps by itself, so the raw records (event_file_loader, no purging) are checked too: a
# step written twice (a resumed stage logging again what a killed attempt logged) fails.
import glob, json, math, os, sys

import numpy as np
from tensorboard.backend.event_processing import event_accumulator as ea
from tensorboard.backend.event_processing import event_file_loader as efl

run = sys.argv[1]
stages = sorted(d for d in glob.glob(os.path.join(run, "stages", "*"))
                if os.path.exists(os.path.join(d, "metrics.jsonl")) or os.path.exists(os.path.join(d, "eval.json")))
assert stages, f"no metrics.jsonl or eval.json under {run}/stages"
checked = 0
for sdir in stages:
    name = os.path.basename(sdir).split("-", 1)[1]
    want = {}  # tag -> [(step, float32)]
    mpath, epath = os.path.join(sdir, "metrics.jsonl"), os.path.join(sdir, "eval.json")
    training = os.path.exists(mpath)
    for line in open(mpath) if training else []:
        rec = json.loads(line)
        step = rec.pop("step")
        for k, v in rec.items():
            f32 = np.float32(float("nan") if v is None else v)
            want.setdefault(f"{name}/{k}", []).append((step, f32))
    # a finished stage's eval.json: one event at its DONE step; NAME/KEY for an eval stage,
    # NAME/eval_KEY for a training stage's end-of-stage held-out values
    if os.path.exists(epath):
        done = dict(l.split(None, 1) for l in open(os.path.join(sdir, "DONE")))
        for k, v in json.load(open(epath)).items():
            want.setdefault(f"{name}/{'eval_' if training else ''}{k}", []).append((int(done["step"]), np.float32(v)))
    files = glob.glob(os.path.join(sdir, "*tfevents*"))
    assert len(files) == 1, f"{sdir}: expected one event file, found {files}"
    raw = {}
    for ev in efl.EventFileLoader(files[0]).Load():
        for v in ev.summary.value:
            raw.setdefault(v.tag, []).append(ev.step)
    for tag, steps in raw.items():
        assert steps == [s for s, _ in want.get(tag, [])], \
            f"{sdir}: {tag}: raw event steps {steps}\n  metrics.jsonl steps {[s for s, _ in want.get(tag, [])]}"
    acc = ea.EventAccumulator(sdir, size_guidance={ea.SCALARS: 0})
    acc.Reload()
    tags = sorted(acc.Tags()["scalars"])
    assert tags == sorted(want), f"{sdir}: TensorBoard tags {tags}\n  metrics.jsonl keys {sorted(want)}"
    for tag in tags:
        got = [(e.step, np.float32(e.value)) for e in acc.Scalars(tag)]
        exp = want[tag]
        gs, es = [s for s, _ in got], [s for s, _ in exp]
        assert gs == es, f"{sdir}: {tag}: TensorBoard steps {gs}\n  metrics.jsonl steps {es}"
        assert len(set(gs)) == len(gs), f"{sdir}: {tag}: a step is plotted twice: {gs}"
        for (s, g), (_, e) in zip(got, exp):
            same = (math.isnan(g) and math.isnan(e)) or g == e
            assert same, f"{sdir}: {tag} step {s}: TensorBoard {g!r}, metrics.jsonl {e!r} (float32)"
            checked += 1
    print(f"{name}: {len(tags)} tags, steps {gs[0]}..{gs[-1]} ({len(gs)} points) equal metrics.jsonl")
print(f"tb_check: {checked} scalars equal metrics.jsonl and eval.json in {len(stages)} stages")
