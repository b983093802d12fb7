#!/usr/bin/env bash
# `kdtrain check` refuses a teacher checkpoint whose vocabulary differs from the student's
# (exit 2, the message names teacher.from and both sizes, nothing written) and accepts the
# same teacher with a matching student.
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
"$KD_BIN" data synth --out data >/dev/null
OMP_NUM_THREADS=1 "$KD_BIN" run "$KD_SOURCE_DIR/configs/tiny.yaml" --quiet --set run.out_dir=t \
  --set stages.pretrain.steps=2 --set stages.pretrain.data=data/pretrain.h5 --set stages.pretrain.eval_data=
ck=$work/t/$(awk '$1 == "checkpoint" {print $2}' t/stages/00-pretrain/DONE)
cat > kd.yaml <<YAML
run: {name: kd, out_dir: out, backend: cpu}
model:
  arch: {vocab_size: 300, d_model: 32, n_layers: 2, n_heads: 2, n_kv_heads: 1, head_dim: 16, ffn_dim: 64}
teacher: {from: {checkpoint: $ck}}
stages:
  - {name: kd, kind: kd, data: data/sft.h5, steps: 2, batch: {global: 2, seq_len: 32}}
YAML
set +e
"$KD_BIN" check kd.yaml > out.txt 2>&1; st=$?
set -e
cat out.txt
[ "$st" -eq 2 ] || { echo "FAIL: exit $st, expected 2"; exit 1; }
grep -q "teacher.from: .*vocab_size 259, the student 300" out.txt || { echo "FAIL: message"; exit 1; }
[ ! -e out ] || { echo "FAIL: check wrote the run directory"; exit 1; }
"$KD_BIN" check kd.yaml --set model.arch.vocab_size=259 | tail -1
echo "teacher_vocab_check: OK"
