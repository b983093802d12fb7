#!/usr/bin/env bash
# data_tokenizer_check.sh: datasets carry their tokenizer identity and `check` holds every
# stage to it (docs/formats.md "Tokenizer identity", docs/recipe.md model.tokenizer).
# (1) The demo chat files (byte tokenizer) pass check for sft, dpo and eval (jsonl and .h5
# tasks) and `data inspect` reads the preference file with its tokenizer lines.
# (2) A copy whose tokenizer_fingerprint (written with h5py) differs is refused at check
# with exit 2, naming the stage key, the file and both tokenizer names, for a token
# dataset, a preference dataset and an eval task file; nothing is written (no run dir).
# (3) stop_ids written with h5py are shown by inspect; a bytes file without the new
# attributes reads as the byte tokenizer. (4) model/teacher.tokenizer: an explicit
# "bytes" passes; an unknown spec is refused naming the key.
set -u
KD=${KD_BIN:?}
PY=${KD_PYTHON:-/usr/bin/python3}
T=$(mktemp -d /tmp/kd_tok_check_XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
cd "$T" || exit 1

"$KD" data synth --out d --tokens 4000 --examples 200 >/dev/null || { echo "FAIL: synth"; exit 1; }
cat >r.yaml <<'YEOF'
run: {name: tok, out_dir: runs/tok, backend: cpu}
model:
  arch: {vocab_size: 259, d_model: 32, n_layers: 2, n_heads: 2, n_kv_heads: 1, head_dim: 16, ffn_dim: 64}
stages:
  - {name: sft, kind: sft, data: d/sft.h5, eval_data: d/sft_val.h5, steps: 2, batch: {global: 4, micro: 2, seq_len: 32}}
  - {name: dpo, kind: dpo, data: d/prefs.h5, steps: 2, batch: {global: 4, micro: 2, seq_len: 32}}
  - {name: ev, kind: eval, eval_data: d/sft_val.h5, tasks: [d/eval_tasks.jsonl, d/prefs_val.h5], batch: {global: 4, micro: 2, seq_len: 32}}
YEOF
out=$("$KD" check r.yaml 2>&1) || fail "byte-tokenizer chat files must pass check: $out"

# (1) inspect reads preference files and shows the tokenizer identity
"$KD" data inspect d/prefs.h5 >insp.txt 2>&1 || fail "inspect prefs.h5: $(cat insp.txt)"
field() { sed -n "s/^$1: //p" "$2"; }
[ "$(field kind insp.txt)" = preference ] || fail "inspect kind: $(field kind insp.txt)"
[ "$(field tokenizer insp.txt)" = bytes ] || fail "inspect tokenizer: $(field tokenizer insp.txt)"
[ "$(field stop_ids insp.txt)" = 257 ] || fail "inspect stop_ids: $(field stop_ids insp.txt)"
fp=$(field tokenizer_fingerprint insp.txt)
[[ "$fp" =~ ^[0-9a-f]{64}$ ]] || fail "inspect fingerprint: '$fp'"
[ "$(field examples insp.txt)" = 100 ] || fail "inspect examples: $(field examples insp.txt)"
[[ "$(field first_prompt_ids insp.txt)" == "256 "* ]] || fail "first prompt ids: $(field first_prompt_ids insp.txt)"
"$KD" data inspect d/sft.h5 >sft.txt 2>&1 || fail "inspect sft.h5"
[ "$(field tokenizer_fingerprint sft.txt)" = "$fp" ] || fail "sft and prefs fingerprints differ"

# (2) a different fingerprint is refused, naming stage key, file and both names
"$PY" - <<'PYEOF' || fail "h5py edits"
import shutil, h5py, numpy as np
for src, dst in [("d/sft.h5", "o_sft.h5"), ("d/prefs.h5", "o_prefs.h5"), ("d/prefs_val.h5", "o_prefs_val.h5")]:
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        f.attrs["tokenizer"] = "other-bpe"
        f.attrs["tokenizer_fingerprint"] = "cd" * 32
shutil.copy("d/sft.h5", "stops.h5")
with h5py.File("stops.h5", "r+") as f:
    f.attrs["stop_ids"] = np.array([257, 10], dtype=np.int64)
PYEOF
refuse() { # NAME FRAGMENT ARGS...: check exits 2 with FRAGMENT and writes nothing
  local name=$1 frag=$2; shift 2
  out=$("$KD" check r.yaml "$@" 2>&1); rc=$?
  [ $rc = 2 ] || fail "$name: exit $rc, expected 2: $out"
  [[ "$out" == *"$frag"* ]] || fail "$name: message lacks '$frag': $out"
  [[ "$out" == *"'bytes'"* ]] || fail "$name: message lacks the model's tokenizer name: $out"
  [ ! -e runs ] || fail "$name: check created runs/"
}
refuse sft "stages.sft.data: o_sft.h5 was tokenized by 'other-bpe' (fingerprint cdcdcdcdcdcd)" \
  --set stages.sft.data=o_sft.h5
refuse sft_eval "stages.sft.eval_data: o_sft.h5 was tokenized by 'other-bpe'" --set stages.sft.eval_data=o_sft.h5
refuse dpo "stages.dpo.data: o_prefs.h5 was tokenized by 'other-bpe'" --set stages.dpo.data=o_prefs.h5
refuse eval_task "stages.ev.tasks[1]: o_prefs_val.h5 was tokenized by 'other-bpe'" \
  --set "stages.ev.tasks=[d/eval_tasks.jsonl, o_prefs_val.h5]"

# (3) several stop ids: shown by inspect, accepted by check
"$KD" data inspect stops.h5 >stops.txt 2>&1 || fail "inspect stops.h5: $(cat stops.txt)"
[ "$(field stop_ids stops.txt)" = "257 10" ] || fail "stop_ids shown as '$(field stop_ids stops.txt)'"
out=$("$KD" check r.yaml --set stages.sft.data=stops.h5 2>&1) || fail "stop_ids file refused: $out"

# (4) the recipe keys
out=$("$KD" check r.yaml --set model.tokenizer=bytes 2>&1) || fail "model.tokenizer: bytes refused: $out"
out=$("$KD" check r.yaml --set model.tokenizer=no_such_tokenizer 2>&1); rc=$?
[ $rc = 2 ] && [[ "$out" == *"model.tokenizer: no_such_tokenizer"* ]] || fail "unknown model.tokenizer: exit $rc: $out"

[ $fails = 0 ] && echo "data_tokenizer_check: all checks passed"
exit $((fails > 0))
