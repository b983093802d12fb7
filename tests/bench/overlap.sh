#!/usr/bin/env bash
# overlap.sh: what overlapping the gradient reduce-scatter with the backward
# (run.grad_bucket_mb) does to training throughput on N CPU ranks: the bench_train model
# shape (d 384, 6 layers, 6/2 heads of 64, SwiGLU 1024, seq 256; byte vocabulary) trained
# STEPS steps with buckets of each size given, interleaved ROUNDS times; prints each run's
# median tokens/s over its steps after the second. Measures and prints only.
#   bash tests/bench/overlap.sh [BUILD_DIR] [NP] [ROUNDS] [MB ...]
#   e.g. bash tests/bench/overlap.sh build 2 3 0 25 4
set -euo pipefail
build=${1:-build} np=${2:-2} rounds=${3:-3}
shift $(( $# >= 3 ? 3 : $# ))
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(0 25)
bin=$(cd "$build" && pwd)/kdtrain
steps=${STEPS:-12}
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
"$bin" data synth --out "$w/data" >/dev/null
cat >"$w/r.yaml" <<YAML
run: {name: overlap, backend: cpu, seed: 1}
model:
  arch: {vocab_size: 259, d_model: 384, n_layers: 6, n_heads: 6, n_kv_heads: 2, head_dim: 64, ffn_dim: 1024}
stages:
  - name: pretrain
    kind: pretrain
    data: $w/data/pretrain.h5
    steps: $steps
    log_every: 1
    batch: {global: $((4 * np)), micro: 4, seq_len: 256}
    checkpoint: {every: 100000, keep: 2}
YAML
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
flags=(--oversubscribe); [ "$(id -u)" = 0 ] && flags+=(--allow-run-as-root)
for ((i = 1; i <= rounds; i++)); do
  for mb in "${sizes[@]}"; do
    rm -rf "$w/out"
    mpirun "${flags[@]}" -np "$np" "$bin" run "$w/r.yaml" --quiet --set "run.out_dir=$w/out" \
      --set "run.grad_bucket_mb=$mb" >"$w/log" 2>&1 || { cat "$w/log"; exit 1; }
    python3 - "$w/out/stages/00-pretrain/metrics.jsonl" "$mb" "$i" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"tokens_per_s"' in l]
tps = [r["tokens_per_s"] for r in rows[2:]]
print(f"round {sys.argv[3]} grad_bucket_mb {sys.argv[2]:>5}: {statistics.median(tps):.0f} tokens/s "
      f"(median of {len(tps)} steps)")
PY
  done
done
