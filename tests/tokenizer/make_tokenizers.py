"""make_tokenizers.py: trains small tokenizers with the `tokenizers` package on the test
text and writes one directory per variant (tokenizer.json plus, for some, the config files
that carry special ids). Used by parity.py and the benchmark. Variants:
  gpt2          byte-level BPE, ByteLevel pre-tokenizer (GPT-2 regex), ByteLevel decoder
  gpt2_prefix   the same with add_prefix_space
  llama3        Split(Llama 3 regex) + ByteLevel(use_regex=false), ignore_merges, and extra
                whole words in the vocabulary that the merges would not form
  llama3_merges the same vocabulary without ignore_merges (must encode differently)
  qwen2         the same model with Qwen 2's regex (single digits)
  sp_meta       SentencePiece-style BPE: Metaspace pre-tokenizer, byte fallback, unk
  sp_llama2     the same model as Llama 2 ships it: Prepend+Replace normalizer, no
                pre-tokenizer, Replace/ByteFallback/Fuse/Strip decoder
  sp_first      Metaspace with prepend_scheme "first" and split false
All get the special tokens <|begin_of_text|> <|eot_id|> <|start_header_id|>
<|end_header_id|> and the non-special added token <tool>."""
import collections
import json
import os

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

RE_LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
             r"|\s*[\r\n]+|\s+(?!\S)|\s+")
RE_QWEN2 = RE_LLAMA3.replace(r"\p{N}{1,3}", r"\p{N}")
SPECIAL = ["<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>"]
BYTES = [f"<0x{b:02X}>" for b in range(256)]


def byte_level(lines, pre, vocab_size):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<|endoftext|>"], show_progress=False)
    tok.train_from_iterator(lines, trainer)
    tok.add_special_tokens(SPECIAL)
    tok.add_tokens(["<tool>"])
    return json.loads(tok.to_str())


def sentencepiece(lines, vocab_size):
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<unk>", "<s>", "</s>"] + BYTES,
                                  limit_alphabet=300, show_progress=False)
    tok.train_from_iterator(lines, trainer)
    tok.add_special_tokens(SPECIAL)
    tok.add_tokens(["<tool>"])
    j = json.loads(tok.to_str())
    # the <0xNN> pieces belong to the vocabulary only, as in Llama 2's tokenizer.json
    j["added_tokens"] = [a for a in j["added_tokens"] if a["content"] not in BYTES]
    j["model"]["byte_fallback"] = True
    j["decoder"] = {"type": "Sequence", "decoders": [{"type": "ByteFallback"}, {
        "type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True}]}
    return j


def add_words(j, lines, pre, n):
    """Adds n frequent pre-tokenized words missing from the vocabulary, with the ids after
    the model's; the added tokens move up (their ids follow the model's vocabulary)."""
    vocab = j["model"]["vocab"]
    count = collections.Counter()
    for s in lines[:3000]:
        count.update(w for w, _ in pre.pre_tokenize_str(s))
    top = len(vocab)
    for w, _ in count.most_common():
        if n == 0:
            break
        if w not in vocab and len(w) > 2:
            vocab[w] = top
            top, n = top + 1, n - 1
    for a in j["added_tokens"]:
        if a["content"] not in vocab:
            a["id"], top = top, top + 1


def write(root, name, j, extra=None):
    d = os.path.join(root, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(j, f, ensure_ascii=False)
    for fname, content in (extra or {}).items():
        with open(os.path.join(d, fname), "w", encoding="utf-8") as f:
            json.dump(content, f)
    return d


def make_all(root, lines, vocab_size=6000):
    """Writes every variant under root; returns {name: directory}."""
    out = {}
    gpt2 = byte_level(lines, pre_tokenizers.ByteLevel(add_prefix_space=False), vocab_size)
    out["gpt2"] = write(root, "gpt2", gpt2)
    gpt2["pre_tokenizer"]["add_prefix_space"] = True
    out["gpt2_prefix"] = write(root, "gpt2_prefix", gpt2)

    split = pre_tokenizers.Split(Regex(RE_LLAMA3), behavior="isolated", invert=False)
    pre = pre_tokenizers.Sequence([split, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    llama = byte_level(lines, pre, vocab_size)
    add_words(llama, lines, pre, 300)
    ids = {a["content"]: a["id"] for a in llama["added_tokens"]}
    llama["model"]["ignore_merges"] = False
    out["llama3_merges"] = write(root, "llama3_merges", llama)
    llama["model"]["ignore_merges"] = True
    out["llama3"] = write(root, "llama3", llama, {
        "tokenizer_config.json": {"bos_token": "<|begin_of_text|>",
                                  "eos_token": {"content": "<|eot_id|>", "special": True}},
        "generation_config.json": {"bos_token_id": ids["<|begin_of_text|>"],
                                   "eos_token_id": [ids["<|endoftext|>"], ids["<|eot_id|>"]]}})
    llama["model"]["ignore_merges"] = False
    llama["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = RE_QWEN2
    out["qwen2"] = write(root, "qwen2", llama)

    sp = sentencepiece(lines, vocab_size)
    out["sp_meta"] = write(root, "sp_meta", sp, {"config.json": {"bos_token_id": 1, "eos_token_id": 2}})
    sp_first = json.loads(json.dumps(sp))
    sp_first["pre_tokenizer"].update(prepend_scheme="first", split=False)
    sp_first["decoder"]["decoders"][1]["prepend_scheme"] = "first"
    out["sp_first"] = write(root, "sp_first", sp_first)
    sp["normalizer"] = {"type": "Sequence", "normalizers": [
        {"type": "Prepend", "prepend": "\u2581"},
        {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]}
    sp["pre_tokenizer"] = None
    sp["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
        {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    out["sp_llama2"] = write(root, "sp_llama2", sp)
    return out
