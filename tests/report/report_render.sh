#!/usr/bin/env bash
# kdtrain report on a small five-stage run (pretrain with periodic held-out loss, eval, sft,
# dpo, eval): TensorBoard's reader agrees with every stage's metrics.jsonl; the page renders
# in headless Chromium without console messages, every plot area has drawn pixels, and the
# eval table holds both eval stages' numbers (render_check.py). Then a damaged copy (a
# garbage metrics.jsonl line, a stage directory removed, a stage without DONE, the last
# stage never started) still gives a page, exit 0, that names each problem; a directory
# that is not a run gives exit 2 and no page.
set -euo pipefail
: "${KD_BIN:?}" "${KD_SOURCE_DIR:?}" "${KD_PYTHON:?}" "${KD_MPIRUN:?}"
CHROMIUM=${KD_CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
[ -n "$CHROMIUM" ] || { echo "FAIL: chromium is not installed (launch/setup.sh installs it)"; exit 1; }
W=$(mktemp -d /tmp/kdreport.XXXXXX)
trap 'rm -rf "$W"' EXIT
cd "$W"
"$KD_BIN" data synth --out data >/dev/null
# small task and preference sets: generation and the DPO reference pass are the slow parts
head -n 100 data/eval_tasks.jsonl >data/tasks100.jsonl
for p in prefs prefs_val; do
    head -n 200 "data/$p.jsonl" >"data/${p}200.jsonl"
    "$KD_BIN" data prefs --jsonl "data/${p}200.jsonl" --out "data/${p}200.h5" --max-len 64 --max-prompt-len 48 >/dev/null
done
cat >small.yaml <<YAML
run: {name: small, out_dir: $W/run, seed: 7, backend: cpu}
model:
  arch: {vocab_size: 259, d_model: 32, n_layers: 2, n_heads: 2, n_kv_heads: 1, head_dim: 16, ffn_dim: 64}
x-batch: &batch {global: 8, micro: 8, seq_len: 64}
x-tasks: &tasks [data/tasks100.jsonl, data/prefs_val200.h5]
stages:
  - {name: teacher, kind: pretrain, data: data/pretrain.h5, eval_data: data/pretrain_val.h5, steps: 20,
     log_every: 2, eval_every: 10, batch: *batch, checkpoint: {every: 10, keep: 2}}
  - {name: teacher_eval, kind: eval, eval_data: data/sft_val.h5, tasks: *tasks, max_new_tokens: 8, batch: *batch}
  - {name: sft, kind: sft, from: {stage: teacher}, data: data/sft.h5, eval_data: data/sft_val.h5, steps: 6,
     log_every: 2, batch: *batch}
  - {name: dpo, kind: dpo, data: data/prefs200.h5, steps: 4, log_every: 1, max_len: 64, max_prompt_len: 48,
     batch: *batch, optim: {lr: 1.0e-4}}
  - {name: eval, kind: eval, eval_data: data/sft_val.h5, tasks: *tasks, reference: {from: {stage: sft}},
     max_new_tokens: 8, batch: *batch}
YAML
# shellcheck disable=SC2086
OMP_NUM_THREADS=1 timeout -k 10 420 $KD_MPIRUN $KD_MPIRUN_FLAGS -np 1 "$KD_BIN" run small.yaml --quiet >run.log 2>&1 \
    || { cat run.log; echo "FAIL: the run failed"; exit 1; }
PYTHONPATH=$KD_PYDEPS "$KD_PYTHON" "$KD_SOURCE_DIR/tests/report/tb_check.py" run

out=$("$KD_BIN" report run)
[ "$out" = "run/report.html" ] && [ -s run/report.html ] || { echo "FAIL: report printed '$out'"; exit 1; }
grep -q "Finished" run/report.html || { echo "FAIL: the finished run's report does not say Finished"; exit 1; }
mkdir shots
"$KD_PYTHON" "$KD_SOURCE_DIR/tests/report/render_check.py" run/report.html "$CHROMIUM" shots \
    run/stages/01-teacher_eval run/stages/04-eval

# damaged, missing, unfinished
cp -r run dmg
sed -i '2s/.*/{"step": 4, "loss": garbage/' dmg/stages/02-sft/metrics.jsonl
# an attempts line with numbers no int holds (read as unknown, not converted)
echo '{"time": 1e300, "ranks": 1e300, "cpus": -1e300, "pid": 1e40, "start_ticks": 1e300}' \
    >>dmg/stages/00-teacher/attempts.jsonl
rm -rf dmg/stages/01-teacher_eval dmg/stages/04-eval dmg/stages/03-dpo/DONE
rc=0
"$KD_BIN" report dmg --out "$W/dmg.html" >/dev/null || rc=$?
[ "$rc" = 0 ] || { echo "FAIL: report of a damaged run exited $rc"; exit 1; }
for want in "stages/02-sft/metrics.jsonl: 1 damaged line" "stage teacher_eval: its directory stages/01-teacher_eval is missing" \
    "stage dpo: stopped before its end" "stage eval: not started" "Unfinished"; do
    grep -qF "$want" dmg.html || { echo "FAIL: the damaged run's report lacks '$want'"; exit 1; }
done
echo "damaged run: report says what is missing"
mkdir shots2
"$KD_PYTHON" "$KD_SOURCE_DIR/tests/report/render_check.py" dmg.html "$CHROMIUM" shots2

# not a run
mkdir empty
for bad in empty "$W/nonexistent"; do
    rc=0
    "$KD_BIN" report "$bad" --out "$W/bad.html" 2>err.txt || rc=$?
    [ "$rc" = 2 ] || { echo "FAIL: report of '$bad' exited $rc, expected 2"; exit 1; }
    grep -q "not a run directory" err.txt || { echo "FAIL: message: $(cat err.txt)"; exit 1; }
    [ ! -e bad.html ] || { echo "FAIL: a page was written for '$bad'"; exit 1; }
done
echo "not a run: exit 2, no page"
echo "report_render: OK"
