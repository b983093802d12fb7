# compare_metrics.py A B TOL STEPS: metrics.jsonl B equals A at every step 1..STEPS in every
# key but the timing ones (tokens_per_s, elapsed_s, which differ between any two runs).
# TOL 0: values must be identical (a resumed run on the same world size repeats the same
# float operations in the same order, so any difference is a resume bug); TOL > 0: the
# largest absolute difference must not exceed it (another world size sums gradients in
# another order: ~1e-7 relative per step, grown over the run, stays far below 1e-5).
import json
import sys

TIMING = {"tokens_per_s", "elapsed_s"}
pa, pb, tol, steps = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])


def load(p):
    rows = [json.loads(line) for line in open(p)]
    got = [r["step"] for r in rows]
    if got != list(range(1, steps + 1)):
        sys.exit(f"FAIL: {p}: steps {got[:5]}...{got[-5:]} ({len(got)} lines), expected 1..{steps} once each")
    return rows


a, b = load(pa), load(pb)
worst, where = 0.0, None
for ra, rb in zip(a, b):
    ka, kb = set(ra) - TIMING, set(rb) - TIMING
    if ka != kb:
        sys.exit(f"FAIL: step {ra['step']}: keys {sorted(ka)} vs {sorted(kb)}")
    for k in sorted(ka):
        x, y = ra[k], rb[k]
        d = 0.0 if x == y else (abs(x - y) if x is not None and y is not None else float("inf"))
        if d > worst:
            worst, where = d, (ra["step"], k, x, y)
        if d > tol:
            sys.exit(f"FAIL: step {ra['step']} {k}: {x!r} (uninterrupted) vs {y!r} (this run), "
                     f"|diff| {d:.3e} > tolerance {tol:g}")
print(f"metrics: {steps} steps agree in {sorted(set(a[0]) - TIMING)}; "
      f"max |diff| {worst:.3e} (tolerance {tol:g})" + (f" at step {where[0]} {where[1]}" if where else ""))
