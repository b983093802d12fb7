#!/usr/bin/env bash
# Pseudo-label generation (stage kind generate) on 2 ranks, killed with SIGKILL after a few
# parts were committed and restarted, completes the output with every prompt exactly once
# and equals an uninterrupted run token for token. The uninterrupted run uses one part of
# 64 prompts (decode batches of 8); the killed run parts of 4 prompts, so this also shows
# that completions do not depend on how prompts are grouped.
set -euo pipefail
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
"$KD_BIN" data synth --out "$work/data" >/dev/null
"$KD_PYTHON" "$KD_SOURCE_DIR/tests/gen/make_prompts.py" "$work/data/pretrain_val.h5" "$work/prompts.h5" 48
cat > "$work/recipe.yaml" <<YAML
run: {name: gen, out_dir: $work/A, seed: 1234, backend: cpu}
model:
  arch: {vocab_size: 259, d_model: 64, n_layers: 2, n_heads: 4, n_kv_heads: 2, head_dim: 16, ffn_dim: 192}
stages:
  - {name: pretrain, kind: pretrain, data: $work/data/pretrain.h5, steps: 30,
     batch: {global: 16, micro: 8, seq_len: 64}, optim: {lr: 3.0e-3}}
  - {name: gen, kind: generate, prompts: $work/prompts.h5, max_new_tokens: 24, temperature: 0.8, top_p: 0.95}
YAML
run() { OMP_NUM_THREADS=1 timeout -k 10 300 $KD_MPIRUN $KD_MPIRUN_FLAGS -np 2 "$KD_BIN" run "$work/recipe.yaml" --quiet "$@"; }
run
# run B: the same pretrain stage (copied), generation slowed down and killed mid-run
mkdir -p "$work/B/stages" && cp -r "$work/A/stages/00-pretrain" "$work/B/stages/"
parts="$work/B/stages/01-gen/gen_parts"
KD_PL_PART_PROMPTS=4 KD_TEST_PL_PART_DELAY_MS=400 OMP_NUM_THREADS=1 \
  $KD_MPIRUN $KD_MPIRUN_FLAGS -np 2 "$KD_BIN" run "$work/recipe.yaml" --quiet --set "run.out_dir=$work/B" &
mpipid=$!
pids+=("$mpipid")
for _ in $(seq 1 600); do
  n=$(ls "$parts" 2>/dev/null | grep -c '^part-' || true)
  [ "$n" -ge 4 ] && break
  sleep 0.05
done
ranks=$(pgrep -P "$mpipid" || true)
echo "killing ranks" $ranks "with $n parts committed"
[ -n "$ranks" ] && kill -9 $ranks
set +e; wait "$mpipid"; st=$?; set -e
echo "killed run exited $st"
[ "$st" -ne 0 ] || { echo "FAIL: the run finished before it was killed"; exit 1; }
[ ! -e "$work/B/stages/01-gen/generated.h5" ] || { echo "FAIL: output published before completion"; exit 1; }
before=$(ls "$parts" | grep -c '^part-' || true)
echo "parts on disk after the kill: $before of 12"
[ "$before" -ge 1 ] && [ "$before" -lt 12 ] || { echo "FAIL: expected a partial set of parts"; exit 1; }
KD_PL_PART_PROMPTS=4 run --set "run.out_dir=$work/B"
"$KD_PYTHON" - "$work/A/stages/01-gen/generated.h5" "$work/B/stages/01-gen/generated.h5" "$work/prompts.h5" <<'PY'
import sys
import h5py
import numpy as np
a, b, p = (h5py.File(x, "r") for x in sys.argv[1:4])
n = len(p["offsets"]) - 1
for f, name in ((a, "uninterrupted"), (b, "killed+resumed")):
    pi = f["prompt_index"][:]
    assert (np.sort(pi) == np.arange(n)).all() and len(pi) == n, f"{name}: prompt_index {pi}"
    assert (pi == np.arange(n)).all(), f"{name}: documents out of prompt order {pi}"
    assert f.attrs["kind"] == "kd", f.attrs["kind"]
    tok, off, mask = f["tokens"][:], f["offsets"][:], f["loss_mask"][:]
    eos = int(p.attrs["eos_id"])
    for i in range(n):
        pr = p["tokens"][p["offsets"][i]:p["offsets"][i + 1]]
        if len(pr) > 1 and pr[-1] == eos:
            pr = pr[:-1]
        d, m = tok[off[i]:off[i + 1]], mask[off[i]:off[i + 1]]
        assert (d[:len(pr)] == pr).all(), f"{name}: doc {i} does not start with prompt {i}"
        assert (m[:len(pr)] == 0).all() and (m[len(pr):] == 1).all(), f"{name}: doc {i} mask {m}"
        assert 1 <= len(d) - len(pr) <= 24, f"{name}: doc {i} has {len(d) - len(pr)} new tokens"
for k in ("tokens", "offsets", "loss_mask", "prompt_index"):
    x, y = a[k][:], b[k][:]
    assert x.shape == y.shape and (x == y).all(), f"{k} differs: {x.shape} vs {y.shape}"
print(f"{n} prompts, each exactly once; {len(a['tokens'])} tokens identical in both runs")
print("pseudo_label_kill_resume: OK")
PY
