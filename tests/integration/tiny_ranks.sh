#!/usr/bin/env bash
# The tiny recipe on 1 and on 2 ranks with the same global batch gives the same loss at
# every step (within 1e-5: only the order of the gradient sum differs), and the loss ends
# well below the unigram entropy of the data (the model learned more than token counts).
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$KD_BIN" data synth --out "$work/data" >/dev/null
entropy=$("$KD_BIN" data inspect "$work/data/pretrain.h5" | awk -F': ' '/^unigram_entropy_nats/ {print $2; exit}')
echo "unigram entropy: $entropy nats"
common=(--set "stages.pretrain.data=$work/data/pretrain.h5" --set "stages.pretrain.eval_data=$work/data/pretrain_val.h5"
        --set stages.pretrain.log_every=1 --set stages.pretrain.steps=120 --quiet)
for np in 1 2; do
  OMP_NUM_THREADS=1 timeout -k 10 300 $KD_MPIRUN $KD_MPIRUN_FLAGS -np $np "$KD_BIN" run "$KD_SOURCE_DIR/configs/tiny.yaml" \
    --set "run.out_dir=$work/np$np" "${common[@]}"
done
"$KD_PYTHON" - "$work/np1/stages/00-pretrain/metrics.jsonl" "$work/np2/stages/00-pretrain/metrics.jsonl" "$entropy" <<'PY'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
H = float(sys.argv[3])
assert len(a) == len(b) == 120, (len(a), len(b))
worst = max(abs(x["loss"] - y["loss"]) for x, y in zip(a, b))
print(f"max per-step loss difference np1 vs np2: {worst:.3e} (tolerance 1e-5)")
assert worst <= 1e-5, worst
final = sum(x["loss"] for x in a[-10:]) / 10
print(f"final loss (mean of last 10 steps): {final:.4f} nats; unigram entropy {H:.4f} nats")
assert final < 0.6 * H, (final, H)
print("tiny_ranks: OK")
PY
