#!/usr/bin/env bash
# configs/llama3-hybrid.yaml end to end, on a tiny model of the kind it is written for: a
# Llama-3-style model made with transformers (rope_scaling llama3, tied embeddings, GQA,
# bf16 safetensors) with a byte-level BPE tokenizer trained here with `tokenizers`, chat
# data rendered with the llama3 template through that tokenizer
# (tests/reference/make_llama3_tiny.py). The recipe file itself is used, scaled by --set.
# Checks:
#   1. the data: llama3 markers are single ids, <|eot_id|> is a stop id of the datasets;
#   2. the recipe as written passes `check` for a Llama-3.2-1B-shaped model on 8 ranks of
#      80 GiB (config.json of that shape, no weights); on the tiny model (4 layers) `check`
#      refuses its 16-layer layout, naming the key, before anything runs;
#   3. the whole pipeline runs: pseudo-labels, init (50% Mamba-2), distillation (held-out
#      KL to the teacher falls), SFT, DPO and an eval beside the teacher (an HF reference;
#      exact match, multiple choice, preferences);
#   4. checkpoints record the tokenizer: a recipe continuing from one finds it without
#      model.tokenizer, and one that names another tokenizer is refused at `check` (exit 2);
#      `generate RUN:STAGE --prompt` encodes and decodes with it;
#   5. the final hybrid exported (no --tokenizer: the recorded one): tokenizer files copied,
#      the stop ids in generation_config.json, mamba_config.json's attention layers, and the
#      pure-PyTorch reference loader loads it strictly with kdtrain's loss (1e-5 relative);
#      generate runs the export with a text prompt.
set -euo pipefail
: "${KD_BIN:?}" "${KD_SOURCE_DIR:?}" "${KD_PYTHON:?}" "${KD_HF_TOOL:?}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
R=$KD_SOURCE_DIR/configs/llama3-hybrid.yaml
M=models/Llama-3.2-1B-Instruct
fail() { echo "FAIL: $*"; exit 1; }
py() { PYTHONPATH=${KD_PYDEPS:-} "$KD_PYTHON" "$@"; }

"$KD_BIN" data synth --out syn --examples 400 --tokens 2000 >/dev/null
py "$KD_SOURCE_DIR/tests/reference/make_llama3_tiny.py" "$M" syn
special() { py -c "import json,sys; print({a['content']: a['id'] for a in json.load(open(sys.argv[1]))['added_tokens']}[sys.argv[2]])" "$M/tokenizer.json" "$1"; }
eot=$(special '<|eot_id|>')

# ---- 1. data, as the recipe's header says
mkdir -p data/llama3
t=(--tokenizer "$M" --template llama3)
"$KD_BIN" data chat "${t[@]}" --max-len 128 --jsonl syn/sft.jsonl --out data/llama3/sft.h5
"$KD_BIN" data chat "${t[@]}" --max-len 128 --jsonl syn/sft_val.jsonl --out data/llama3/sft_val.h5
"$KD_BIN" data chat "${t[@]}" --max-len 64 --prompts --jsonl syn/sft.jsonl --out data/llama3/prompts.h5
"$KD_BIN" data prefs "${t[@]}" --max-len 96 --jsonl syn/prefs.jsonl --out data/llama3/prefs.h5
"$KD_BIN" data prefs "${t[@]}" --max-len 96 --jsonl syn/prefs_val.jsonl --out data/llama3/prefs_val.h5
cp syn/eval_tasks_llama3.jsonl data/llama3/eval_tasks.jsonl
cp syn/mc_tasks_llama3.jsonl data/llama3/mc_tasks.jsonl
"$KD_BIN" data inspect data/llama3/sft.h5 >inspect.txt
grep -q "^tokenizer: Llama-3.2-1B-Instruct$" inspect.txt || fail "sft.h5 does not record the tokenizer"
grep -qE "^stop_ids: .*\b$eot\b" inspect.txt || fail "<|eot_id|> ($eot) is not a stop id of sft.h5: $(grep stop_ids inspect.txt)"
"$KD_BIN" data inspect data/llama3/prompts.h5 >inspect_p.txt
grep -q "^loss_mask: 0 of" inspect_p.txt || fail "prompts.h5 has loss-mask tokens"

# ---- 2. check: Llama-3.2-1B's shape passes; the tiny model's 4 layers do not fit the layout
mkdir -p big/models big/data
ln -s ../../data/llama3 big/data/llama3
mkdir big/$M
cp "$M"/tokenizer*.json big/$M/
py - "$M/config.json" "big/$M/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))  # the tiny model's, its special ids kept
c.update(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
         num_key_value_heads=8, head_dim=64, vocab_size=128256, torch_dtype="bfloat16")
json.dump(c, open(sys.argv[2], "w"), indent=1)
PY
(cd big && "$KD_BIN" check "$R" --ranks 8 --mem-gib 80 >../check_big.txt) || { cat check_big.txt; fail "check refuses the recipe for a Llama-3.2-1B-shaped model"; }
grep -q "16 layers (0 Mamba-2), d_model 2048, heads 32/8 x 64, ffn 8192, vocab 128256" check_big.txt ||
    fail "check did not read the 1B shape: $(grep model check_big.txt)"
set +e
"$KD_BIN" check "$R" >check_tiny.txt 2>&1
rc=$?
set -e
[ "$rc" = 2 ] && grep -q "stages.init.hybrid.ssm_layers.*expected a layer index in \[0, 4)" check_tiny.txt ||
    { cat check_tiny.txt; fail "check of the 16-layer layout on a 4-layer model: exit $rc, expected 2 naming ssm_layers"; }
[ ! -e runs ] || fail "check wrote a run directory"

# ---- 3. the pipeline, scaled down
B='{global: 8, micro: 4, seq_len: 128}'
scale=(--set "stages.labels.batch=$B" --set stages.labels.pseudo_labels.max_new_tokens=24
       --set "stages.init.hybrid={ssm_layers: [0, 2], chunk_size: 16}"
       --set "stages.distill.batch=$B" --set stages.distill.steps=30 --set stages.distill.eval_every=10
       --set stages.distill.checkpoint.every=10 --set stages.distill.optim.lr=3e-3
       --set stages.distill.optim.warmup=3
       --set "stages.sft.batch=$B" --set stages.sft.steps=10 --set stages.sft.checkpoint.every=5
       --set stages.sft.optim.warmup=1
       --set "stages.dpo.batch=$B" --set stages.dpo.steps=5 --set stages.dpo.max_len=96
       --set stages.dpo.max_prompt_len=64 --set stages.dpo.checkpoint.every=5 --set stages.dpo.optim.warmup=1
       --set "stages.eval.batch=$B")
OMP_NUM_THREADS=1 "$KD_BIN" run "$R" --quiet "${scale[@]}" >run.txt 2>&1 || { tail -20 run.txt; fail "the pipeline failed"; }
S=runs/llama3-hybrid/stages
for s in 00-labels 01-init 02-distill 03-sft 04-dpo 05-eval; do
    [ -e "$S/$s/DONE" ] || fail "stage $s did not finish"
done
"$KD_BIN" data inspect runs/llama3-hybrid/labels.h5 >inspect_l.txt
grep -q "^tokenizer: Llama-3.2-1B-Instruct$" inspect_l.txt || fail "pseudo-labels lost the tokenizer identity"
kl0=$(grep '"eval_kl"' $S/02-distill/metrics.jsonl | head -1 | sed 's/.*"eval_kl": \([^,}]*\).*/\1/')
kl1=$(sed 's/.*"kl": \([^,}]*\).*/\1/' $S/02-distill/eval.json)
echo "distill: held-out KL to the teacher $kl0 (step 10) -> $kl1 (step 30)"
awk -v a="$kl0" -v b="$kl1" 'BEGIN { exit !(b < a) }' || fail "held-out KL did not fall: $kl0 -> $kl1"
for k in exact_match/all choices/all/acc choices/all/acc_norm prefs/chosen_preferred prefs/reward_accuracy heldout/loss; do
    grep -q "\"$k\": [0-9]" $S/05-eval/eval.json || fail "eval.json lacks $k: $(cat $S/05-eval/eval.json)"
done

# ---- 4. the tokenizer recorded in checkpoints
cat >cont.yaml <<YAML
run: {name: cont, out_dir: runs/cont}
model: {from: {checkpoint: $S/03-sft/$(sed -n 's/^checkpoint stages\/03-sft\///p' $S/03-sft/DONE)}}
teacher: {from: {checkpoint: $S/04-dpo/$(sed -n 's/^checkpoint stages\/04-dpo\///p' $S/04-dpo/DONE)}}
stages:
  - {name: more, kind: kd, data: data/llama3/sft.h5, steps: 2, batch: {global: 8, micro: 4, seq_len: 128}}
YAML
"$KD_BIN" check cont.yaml >cont.txt || { cat cont.txt; fail "a recipe from a checkpoint does not find its tokenizer"; }
grep -q "tokenizer *Llama-3.2-1B-Instruct" cont.txt || fail "check of cont.yaml: $(grep tokenizer cont.txt)"
for who in model teacher; do
    set +e
    "$KD_BIN" check cont.yaml --set $who.tokenizer=bytes >mis.txt 2>&1
    rc=$?
    set -e
    [ "$rc" = 2 ] && grep -q "$who.tokenizer: .* was trained with tokenizer 'Llama-3.2-1B-Instruct'" mis.txt ||
        { cat mis.txt; fail "$who.tokenizer: bytes against a BPE checkpoint: exit $rc, expected 2 naming both"; }
done
"$KD_BIN" generate runs/llama3-hybrid:sft --prompt "$(printf '<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+3?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n')" \
    --greedy --max-new-tokens 8 --quiet >gen_ckpt.txt
grep -q "^user$" gen_ckpt.txt || { cat gen_ckpt.txt; fail "generate RUN:STAGE did not decode with the recorded tokenizer"; }

# ---- 5. export the hybrid (its recorded tokenizer), load it in the reference loader
"$KD_BIN" export runs/llama3-hybrid:dpo --out hf_out --base "$M" >/dev/null
cmp -s "$M/tokenizer.json" hf_out/tokenizer.json || fail "export did not copy tokenizer.json"
py - hf_out "$eot" <<'PY'
import json, sys
d, eot = sys.argv[1], int(sys.argv[2])
g = json.load(open(f"{d}/generation_config.json"))
eos = g["eos_token_id"] if isinstance(g["eos_token_id"], list) else [g["eos_token_id"]]
assert eot in eos, f"generation_config.json eos_token_id {eos} lacks <|eot_id|> {eot}"
m = json.load(open(f"{d}/mamba_config.json"))
assert m["attn_layers"] == [1, 3] and m["n_layer"] == 4, m
print("export: stop ids", eos, "attention layers", m["attn_layers"])
PY
py -c "import sys; from tokenizers import Tokenizer; t = Tokenizer.from_file(sys.argv[1]); print(' '.join(map(str, t.encode('<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhat is 12+30?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n42<|eot_id|>', add_special_tokens=False).ids)))" "$M/tokenizer.json" >ids.txt
kd=$("$KD_HF_TOOL" eval hf_out ids.txt 4 1 | sed -n 's/^loss //p')
ref=$(py "$KD_SOURCE_DIR/tests/reference/hybrid_loader.py" hf_out ids.txt | sed -n 's/^loss //p')
echo "export: kdtrain loss $kd, reference loader (strict) $ref"
awk -v a="$kd" -v b="$ref" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-5 * b) }' ||
    fail "reference loader loss $ref != kdtrain $kd"
"$KD_BIN" generate hf_out --prompt "What is 2+3?" --greedy --max-new-tokens 4 --quiet >gen.txt ||
    { cat gen.txt; fail "generate does not run the export with a text prompt"; }
echo "llama3_hybrid: OK"
