# compare_losses.py: compares two training runs of the same recipe on two backends (step c
# and e of tests/gpu/run.sh). Two forms:
#   compare_losses.py losses REF.jsonl GOT.jsonl RTOL [STEPS]
#       per-step "loss" of two metrics.jsonl files: |got - ref| <= RTOL * |ref| at every
#       step (1..STEPS, each once when STEPS is given); prints the worst step.
#   compare_losses.py params REF_CKPT GOT_CKPT ATOL RTOL
#       every parameter tensor of two checkpoints (model.h5, group params/): same names and
#       shapes, max |got - ref| <= ATOL + RTOL * max |ref| per tensor; prints the worst one.
# Exit 0 within tolerance, 1 outside it or on a malformed input.
# Why these tolerances (chosen by run.sh): fp32 kernels summing in another order differ by
# ~1e-7 relative per op; over 20 optimizer steps the loss drifts by well under 1e-3
# relative, while a wrong kernel moves it by far more after a few steps.
import json
import sys


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def load_losses(path, steps):
    try:
        rows = [json.loads(line) for line in open(path) if line.strip()]
    except (OSError, ValueError) as e:
        fail(f"{path}: {e}")
    got = [r.get("step") for r in rows]
    if steps is not None and got != list(range(1, steps + 1)):
        fail(f"{path}: steps {got[:3]}...{got[-3:]} ({len(got)} lines), expected 1..{steps} once each")
    if any("loss" not in r for r in rows):
        fail(f"{path}: a line has no 'loss'")
    return {r["step"]: float(r["loss"]) for r in rows}


def losses(ref_path, got_path, rtol, steps):
    ref, got = load_losses(ref_path, steps), load_losses(got_path, steps)
    if sorted(ref) != sorted(got):
        fail(f"the runs logged different steps: {sorted(ref)[:5]}... vs {sorted(got)[:5]}...")
    if not ref:
        fail(f"{ref_path}: no steps")
    worst, wstep = -1.0, None
    for s in sorted(ref):
        r, g = ref[s], got[s]
        rel = abs(g - r) / max(abs(r), 1e-12) if g == g else float("inf")
        if rel > worst:
            worst, wstep = rel, s
    last = max(ref)
    print(f"losses: {len(ref)} steps, worst step {wstep}: ref {ref[wstep]:.7f} got {got[wstep]:.7f} "
          f"rel {worst:.2e} (rtol {rtol:.0e}); last step {last}: ref {ref[last]:.7f} got {got[last]:.7f}")
    if not worst <= rtol:
        fail(f"step {wstep}: relative loss difference {worst:.3g} > {rtol:g}")


def params(ref_dir, got_dir, atol, rtol):
    try:
        import h5py
        import numpy as np
    except ImportError as e:
        fail(f"comparing checkpoints needs h5py and numpy ({e}): set KD_PYTHON")

    def load(d):
        try:
            with h5py.File(f"{d}/model.h5", "r") as f:
                return {k: np.asarray(v, dtype=np.float64) for k, v in f["params"].items()}
        except (OSError, KeyError) as e:
            fail(f"{d}/model.h5: {e}")

    ref, got = load(ref_dir), load(got_dir)
    if sorted(ref) != sorted(got):
        fail(f"parameter names differ: {sorted(set(ref) ^ set(got))[:5]}")
    worst, wname, bad = -1.0, None, []
    for k in sorted(ref):
        if ref[k].shape != got[k].shape:
            fail(f"{k}: shape {ref[k].shape} vs {got[k].shape}")
        d = float(np.max(np.abs(got[k] - ref[k]))) if ref[k].size else 0.0
        if d != d:
            d = float("inf")
        scale = float(np.max(np.abs(ref[k]))) if ref[k].size else 0.0
        q = d / (atol + rtol * scale)
        if q > worst:
            worst, wname = q, k
        if q > 1:
            bad.append(f"{k} (max abs {d:.3g}, scale {scale:.3g})")
    print(f"params: {len(ref)} tensors, worst {wname}: {worst:.2f} of its tolerance "
          f"(atol {atol:g} + rtol {rtol:g} * max|ref|)")
    if bad:
        fail(f"{len(bad)} tensors outside tolerance: {', '.join(bad[:5])}")


def main(argv):
    if len(argv) >= 4 and argv[1] == "losses":
        steps = int(argv[5]) if len(argv) > 5 else None
        losses(argv[2], argv[3], float(argv[4]), steps)
    elif len(argv) == 6 and argv[1] == "params":
        params(argv[2], argv[3], float(argv[4]), float(argv[5]))
    else:
        print("usage: compare_losses.py losses REF.jsonl GOT.jsonl RTOL [STEPS] | "
              "params REF_CKPT GOT_CKPT ATOL RTOL", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
