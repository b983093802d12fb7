#!/usr/bin/env bash
# tokenizer_hf_tools.sh: the text tools with a Hugging Face tokenizer (a byte-level BPE
# trained here with the `tokenizers` package, Llama 3 special tokens added). Skipped
# (exit 77) while this build opens only "bytes". Proves: (1) `data pack --tokenizer DIR`
# gives BOS + the ids `tokenizers` gives + EOS; (2) `data chat --template llama3` renders
# every marker as one id (the ids of each segment equal `tokenizers`' ids), ends replies
# with <|eot_id|> (no extra EOS) and records <|eot_id|> among the stop ids; (3) a
# template whose marker the tokenizer lacks (chatml's <|im_start|>) is refused naming it;
# (4) check: data made with DIR passes with model.tokenizer: DIR, byte data and a byte
# teacher are refused with exit 2 naming both tokenizers.
set -u
KD=${KD_BIN:?}
PY=${KD_PYTHON:-/usr/bin/python3}
T=$(mktemp -d /tmp/kd_tok_hf_XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
cd "$T" || exit 1

PYTHONPATH=${KD_PYDEPS:-} "$PY" - <<'PYEOF' || { echo "FAIL: training the test tokenizer"; exit 1; }
import json, os
from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers
text = ["The quick brown fox jumps over the lazy dog. " * 3, "2+2? 4. and 3+3? 6.",
        "Be brief. Hello world, how are you today?"] * 50
tok = Tokenizer(models.BPE())
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tok.decoder = decoders.ByteLevel()
special = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
tr = trainers.BpeTrainer(vocab_size=400, special_tokens=special,
                         initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
tok.train_from_iterator(text, tr)
os.makedirs("tok", exist_ok=True)
tok.save("tok/tokenizer.json")
json.dump({"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>"}, open("tok/tokenizer_config.json", "w"))
ids = {s: tok.token_to_id(s) for s in special}
json.dump({"bos_token_id": ids["<|begin_of_text|>"], "eos_token_id": [ids["<|end_of_text|>"], ids["<|eot_id|>"]]},
          open("tok/generation_config.json", "w"))
open("doc.txt", "w").write("Hello world, the quick brown fox!\n")
with open("chat.jsonl", "w") as f:
    f.write(json.dumps({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"},
                                     {"role": "assistant", "content": "4"}]}) + "\n")
print(tok.get_vocab_size())
PYEOF

out=$("$KD" data pack --text doc.txt --out p.h5 --tokenizer tok 2>&1)
if [[ "$out" == *"not supported in this build"* ]]; then
  echo "SKIP: this build opens only the byte tokenizer ($out)"
  exit 77
fi
[ -f p.h5 ] || fail "data pack --tokenizer tok: $out"
"$KD" data chat --jsonl chat.jsonl --out c.h5 --template llama3 --tokenizer tok >/dev/null 2>err.txt ||
  fail "data chat llama3: $(cat err.txt)"

PYTHONPATH=${KD_PYDEPS:-} "$PY" - <<'PYEOF' || fail "ids differ from the tokenizers package"
import h5py
from tokenizers import Tokenizer
tok = Tokenizer.from_file("tok/tokenizer.json")
enc = lambda s: tok.encode(s, add_special_tokens=False).ids
sid = tok.token_to_id
bos, eos, eot = sid("<|begin_of_text|>"), sid("<|end_of_text|>"), sid("<|eot_id|>")
with h5py.File("p.h5") as f:
    got = list(f["tokens"][:])
    want = [bos] + enc("Hello world, the quick brown fox!\n") + [eos]
    assert got == want, ("pack", got, want)
    assert f.attrs["tokenizer_fingerprint"], "pack: no fingerprint"
with h5py.File("c.h5") as f:
    got, mask = list(f["tokens"][:]), list(f["loss_mask"][:])
    hdr = lambda r: enc("<|start_header_id|>%s<|end_header_id|>\n\n" % r)
    prompt = [bos] + hdr("system") + enc("Be brief.") + [eot] + hdr("user") + enc("2+2?") + [eot] + hdr("assistant")
    reply = enc("4") + [eot]
    assert got == prompt + reply, ("chat", got, prompt + reply)
    assert mask == [0] * len(prompt) + [1] * len(reply), ("mask", mask)
    assert len(hdr("user")) < 8, "markers were not single ids"
    stops = list(f.attrs["stop_ids"])
    assert eot in stops and stops[0] == f.attrs["eos_id"], ("stop_ids", stops)
print("ids equal to the tokenizers package")
PYEOF

out=$("$KD" data chat --jsonl chat.jsonl --out x.h5 --template chatml --tokenizer tok 2>&1); rc=$?
[ $rc = 2 ] && [[ "$out" == *"'<|im_start|>'"* ]] || fail "chatml without <|im_start|>: exit $rc: $out"
[ ! -e x.h5 ] || fail "refused chat wrote x.h5"

V=$(PYTHONPATH=${KD_PYDEPS:-} "$PY" -c 'from tokenizers import Tokenizer; print(Tokenizer.from_file("tok/tokenizer.json").get_vocab_size())')
"$KD" data synth --out d --tokens 3000 --examples 20 >/dev/null
cat >r.yaml <<YEOF
run: {name: t, out_dir: runs/t, backend: cpu}
model:
  tokenizer: tok
  arch: {vocab_size: $V, d_model: 32, n_layers: 2, n_heads: 2, n_kv_heads: 1, head_dim: 16, ffn_dim: 64}
teacher: {from: {stage: a}}
stages:
  - {name: a, kind: sft, data: c.h5, steps: 1, batch: {global: 1, micro: 1, seq_len: 8}}
YEOF
out=$("$KD" check r.yaml 2>&1) || fail "data made with tok refused: $out"
out=$("$KD" check r.yaml --set stages.a.data=d/sft.h5 2>&1); rc=$?
[ $rc = 2 ] && [[ "$out" == *"stages.a.data: d/sft.h5 was tokenized by 'bytes'"* ]] || fail "byte data: exit $rc: $out"
out=$("$KD" check r.yaml --set teacher.tokenizer=bytes 2>&1); rc=$?
[ $rc = 2 ] && [[ "$out" == *"teacher and student must share the tokenizer"* ]] || fail "byte teacher: exit $rc: $out"

[ $fails = 0 ] && echo "tokenizer_hf_tools: all checks passed"
exit $((fails > 0))
