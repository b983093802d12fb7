#!/usr/bin/env bash
# spec_demo.sh RUN_DIR: speculative decoding with trained models. The target is the demo's
# hybrid after SFT (RUN_DIR:sft, from `bash launch/demo.sh`); the draft is a 1-layer
# Transformer (d_model 64) trained here on the same data (pretrain then SFT, about two
# minutes). Prints plain vs speculative greedy tokens/s at batch 1 on held-out prompts
# (prompts.h5 of a fresh `data synth`, EOS ignored so every prompt decodes the same number
# of tokens) for K = 2, 4, 8, with the acceptance rate. Measures; never fails on a speed.
#   bash tests/bench/spec_demo.sh runs/demo      (docs/performance.md, "Decoding")
set -euo pipefail
RUN=${1:?usage: spec_demo.sh RUN_DIR}
KD=${KD_BIN:-$(dirname "$0")/../../build/kdtrain}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
"$KD" data synth --out "$W/data" --examples 2000 --tokens 200000 >/dev/null
cat >"$W/draft.yaml" <<YAML
run: {name: draft, out_dir: $W/draft, seed: 5, backend: cpu}
model:
  arch: {vocab_size: 259, d_model: 64, n_layers: 1, n_heads: 2, n_kv_heads: 1, head_dim: 32, ffn_dim: 192}
stages:
  - {name: pretrain, kind: pretrain, data: $W/data/pretrain.h5, steps: 600, log_every: 100,
     batch: {global: 16, micro: 16, seq_len: 128}, optim: {lr: 3.0e-3, warmup: 30}}
  - {name: sft, kind: sft, data: $W/data/sft.h5, steps: 600, log_every: 100,
     batch: {global: 16, micro: 16, seq_len: 128}, optim: {lr: 2.0e-3, warmup: 30}}
YAML
echo "spec_demo: training the draft (1 layer, d_model 64)"
OMP_NUM_THREADS=1 "$KD" run "$W/draft.yaml" --quiet
# 32 held-out-style prompts
"$KD" data chat --jsonl <(head -n 32 "$W/data/sft_val.jsonl") --out "$W/p.h5" --prompts >/dev/null
gen() { OMP_NUM_THREADS=1 "$KD" generate "$RUN:sft" --prompts "$W/p.h5" --greedy --ignore-eos \
    --max-new-tokens 64 --batch 1 "$@" 2>&1 >/dev/null | grep "kdtrain generate"; }
echo "plain:"
gen
for k in 2 4 8; do
    echo "speculative K=$k:"
    gen --draft "$W/draft:sft" --draft-tokens $k
done
