#!/usr/bin/env bash
# A hybrid with half of its layers Mamba-2 (configs/hybrid.yaml's layout: layers 0 and 2 of
# 4) trains with next-token CE on 2 ranks and resumes bit for bit: one run goes straight
# through; another is killed with SIGKILL (one rank; mpirun then takes the other down) in
# the middle of the CE stage and started again with the same command. The final
# checkpoints must have the same `kdtrain ckpt digest` (SHA-256 of the parameters).
set -euo pipefail
work=$(mktemp -d)
pids=()
# every process started under pid $1 (the background job is a subshell -> timeout -> mpirun -> ranks)
descendants() { local c; for c in $(pgrep -P "$1" || true); do echo "$c"; descendants "$c"; done; }
cleanup() {
  for p in "${pids[@]}"; do for q in $(descendants "$p") "$p"; do kill -9 "$q" 2>/dev/null || true; done; done
  rm -rf "$work"
}
trap cleanup EXIT
"$KD_BIN" data synth --out "$work/data" >/dev/null
d="$work/data/pretrain.h5"
cat > "$work/r.yaml" <<YAML
run: {name: resume, seed: 77, backend: cpu}
model:
  arch: {vocab_size: 259, d_model: 64, n_layers: 4, n_heads: 4, n_kv_heads: 2, head_dim: 16, ffn_dim: 192}
  hybrid: {ssm_layers: [0, 2], chunk_size: 16}
stages:
  - {name: teacher, kind: pretrain, data: $d, steps: 20, batch: {global: 8, micro: 4, seq_len: 64}}
  - {name: init, kind: init}
  - name: ce
    kind: pretrain
    data: $d
    steps: 120
    log_every: 1
    batch: {global: 8, micro: 2, seq_len: 64}
    optim: {lr: 1.0e-3, warmup: 10}
    checkpoint: {every: 10, keep: 2}
YAML
run() { OMP_NUM_THREADS=1 timeout -k 10 300 $KD_MPIRUN $KD_MPIRUN_FLAGS -np 2 "$KD_BIN" run "$work/r.yaml" \
          --set "run.out_dir=$work/$1" --quiet; }
run straight
# interrupted run: SIGKILL one rank once the CE stage has saved step 30
run killed > "$work/killed.log" 2>&1 &
mpipid=$!
pids+=("$mpipid")
for _ in $(seq 600); do
  [ -e "$work/killed/stages/02-ce/ckpt/step-00000030/MANIFEST" ] && break
  sleep 0.1
done
[ -e "$work/killed/stages/02-ce/ckpt/step-00000030/MANIFEST" ] || { echo "FAIL: CE stage never saved step 30"; cat "$work/killed.log"; exit 1; }
rank=""
for p in $(descendants "$mpipid"); do
  [ "$(ps -o comm= -p "$p" 2>/dev/null)" = kdtrain ] && { rank=$p; break; }
done
[ -n "$rank" ] || { echo "FAIL: no kdtrain rank under job $mpipid"; exit 1; }
kill -9 "$rank"
set +e; wait "$mpipid"; rc=$?; set -e
echo "interrupted run exited with $rc after SIGKILL of rank pid $rank"
for _ in $(seq 100); do [ -z "$(descendants "$mpipid")" ] && break; sleep 0.1; done
[ -z "$(descendants "$mpipid")" ] || { echo "FAIL: processes of the killed run are still alive"; exit 1; }
[ "$rc" -ne 0 ] || { echo "FAIL: the run finished before it was killed (make it longer)"; exit 1; }
[ ! -e "$work/killed/stages/02-ce/DONE" ] || { echo "FAIL: CE finished before the kill"; exit 1; }
run killed > "$work/resumed.log" 2>&1 || { cat "$work/resumed.log"; exit 1; }
grep -q "resuming from" "$work/resumed.log" || { echo "FAIL: the second run did not resume"; cat "$work/resumed.log"; exit 1; }
grep "resuming from" "$work/resumed.log"
a=$("$KD_BIN" ckpt digest "$work/straight/stages/02-ce/ckpt/step-00000120")
b=$("$KD_BIN" ckpt digest "$work/killed/stages/02-ce/ckpt/step-00000120")
echo "straight: $a"
echo "resumed:  $b"
[ "$a" = "$b" ] || { echo "FAIL: digests differ"; exit 1; }
layers=$("$KD_PYTHON" -c 'import h5py, sys; print(h5py.File(sys.argv[1], "r").attrs["layers"])' \
         "$work/killed/stages/02-ce/ckpt/step-00000120/model.h5")
echo "layers: $layers"
[ "$layers" = "mamba2,attn,mamba2,attn" ] || { echo "FAIL: the trained model is not the half-Mamba hybrid"; exit 1; }
echo "resume_kill9: OK"
