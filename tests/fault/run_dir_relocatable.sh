#!/usr/bin/env bash
# Promise: a run directory can be moved or copied and used from any working directory.
# A two-stage run (first: 10 steps; second: 20 steps from first) is started with a
# RELATIVE out_dir and stopped in its second stage (SIGUSR1 after step 14, exit 75). The run
# directory is then moved away (the old path no longer exists) and, from an unrelated
# working directory: `generate RUN:first`, `ckpt list RUN`, `export RUN:first`,
# `submit --dry-run` (first is done, second's script points at the moved run) and
# `run --set run.out_dir=MOVED` (resumes second) all work; the resumed run's final digest
# equals an uninterrupted run's. A copy of the finished run is used the same way, a DONE
# marker of the older format (path relative to where the run started) still resolves, and
# a missing checkpoint file is reported as "file is missing: PATH".
source "$(dirname "$0")/lib.sh"

K=$KD_BIN
cat >"$W/reloc.yaml" <<YAML
run: {name: reloc, out_dir: runs/reloc, seed: 1234, backend: cpu}
model:
  arch: {vocab_size: 259, d_model: 32, n_layers: 2, n_heads: 2, n_kv_heads: 1, head_dim: 16, ffn_dim: 64}
x-batch: &batch {global: 8, micro: 8, seq_len: 32}
stages:
  - {name: first, kind: pretrain, data: $W/data/pretrain.h5, steps: 10, log_every: 1, batch: *batch,
     checkpoint: {every: 5, keep: 2}}
  - {name: second, kind: pretrain, data: $W/data/pretrain.h5, steps: 20, log_every: 1, batch: *batch,
     checkpoint: {every: 5, keep: 2}}
YAML
fail() { echo "FAIL: $*"; exit 1; }
digest() { "$K" ckpt digest "$1" | awk '{print $1}'; }
# final CKPT of stage NN-name of RUN, from DONE (relative to the run directory)
done_ckpt() { echo "$1/$(sed -n '1s/^checkpoint //p' "$1/stages/$2/DONE")"; }

"$K" run "$W/reloc.yaml" --quiet --set "run.out_dir=$W/ref" >"$W/ref.log" 2>&1 || fail "reference run: $(cat "$W/ref.log")"
want=$(digest "$(done_ckpt "$W/ref" 01-second)")

mkdir -p "$W/start" "$W/elsewhere" "$W/other"
set +e
(cd "$W/start" && KD_TEST_STOP_AT_STEP=14 "$K" run "$W/reloc.yaml" --quiet >"$W/start.log" 2>&1)
RC=$?
set -e
expect_rc 75 "stopped in stage 'second'"
grep -qx "checkpoint stages/00-first/ckpt/step-00000010" "$W/start/runs/reloc/stages/00-first/DONE" ||
    fail "DONE does not name its checkpoint relative to the run dir: $(cat "$W/start/runs/reloc/stages/00-first/DONE")"
mv "$W/start/runs/reloc" "$W/elsewhere/moved"
M=$W/elsewhere/moved
cd "$W/other"

"$K" generate "$M:first" --prompt "copy abc:" --max-new-tokens 4 >gen.out 2>&1 || fail "generate $M:first: $(cat gen.out)"
echo "ok: generate RUN:first from another directory"
"$K" ckpt list "$M" >list.out 2>&1 || fail "ckpt list: $(cat list.out)"
grep -q "00-first .*valid" list.out && grep -q "01-second .*valid" list.out || fail "ckpt list: $(cat list.out)"
echo "ok: ckpt list on the moved run"
"$K" export "$M:first" --out hf >exp.out 2>&1 || fail "export $M:first: $(cat exp.out)"
[ -s hf/model.safetensors ] && grep -q "$M/stages/00-first/ckpt/step-00000010" exp.out || fail "export: $(cat exp.out)"
echo "ok: export RUN:first"
"$K" submit "$W/reloc.yaml" --set "run.out_dir=$M" --nodes 1 --ntasks-per-node 1 --dry-run >sub.out 2>&1 ||
    fail "submit --dry-run: $(cat sub.out)"
grep -q "stage 00-first is done" sub.out && grep -q "#SBATCH --output=$M/slurm/01-second.log" sub.out ||
    fail "submit --dry-run on the moved run: $(cat sub.out)"
echo "ok: submit --dry-run sees the moved run"

"$K" run "$W/reloc.yaml" --quiet --set "run.out_dir=$M" >resume.log 2>&1 || fail "resume on the moved run: $(cat resume.log)"
got=$(digest "$(done_ckpt "$M" 01-second)")
echo "digest uninterrupted: $want"
echo "digest moved+resumed: $got"
[ -n "$want" ] && [ "$want" = "$got" ] || fail "the resumed moved run differs from the uninterrupted one"

# a copy of the finished run, used from yet another directory; the original is removed
cp -a "$M" "$W/copy"
rm -rf "$M"
C=$W/copy
cd /
"$K" generate "$C:second" --prompt "copy abc:" --max-new-tokens 4 >/dev/null 2>"$W/gen2.err" || fail "generate on the copy: $(cat "$W/gen2.err")"
"$K" run "$W/reloc.yaml" --quiet --set "run.out_dir=$C" >"$W/rerun.log" 2>&1 || fail "rerun on the copy: $(cat "$W/rerun.log")"
[ "$(digest "$(done_ckpt "$C" 01-second)")" = "$want" ] || fail "the copy's digest changed"
echo "ok: generate and run on a copy"

# a DONE marker as older versions wrote it (relative to where the run was started)
printf 'checkpoint runs/reloc/stages/00-first/ckpt/step-00000010\nstep 10\neval_loss nan\n' >"$C/stages/00-first/DONE"
"$K" generate "$C:first" --prompt "x" --max-new-tokens 2 >/dev/null 2>"$W/gen3.err" || fail "old-format DONE: $(cat "$W/gen3.err")"
echo "ok: an old-format DONE marker resolves against the run dir"

# missing files are reported as missing, with the path that was tried
rm "$C/stages/01-second/ckpt/step-00000020/model.h5"
set +e
"$K" generate "$C:second" --prompt "x" >/dev/null 2>"$W/miss.err"
RC=$?
set -e
expect_rc 2 "generate with model.h5 removed"
grep -qF "file is missing: $C/stages/01-second/ckpt/step-00000020/model.h5" "$W/miss.err" || fail "message: $(cat "$W/miss.err")"
rm -rf "$C/stages/01-second/ckpt/step-00000020"
set +e
"$K" export "$C:second" --out "$W/hf2" >/dev/null 2>"$W/miss2.err"
RC=$?
set -e
expect_rc 2 "export with the final checkpoint removed"
grep -qF "file is missing: $C/stages/01-second/ckpt/step-00000020 (the final checkpoint named by" "$W/miss2.err" ||
    fail "message: $(cat "$W/miss2.err")"
[ ! -e "$W/hf2" ] || fail "export wrote $W/hf2 although it failed"
echo "PASS"
