#!/usr/bin/env python3
# make_inputs.py: writes the generated half of the bad-input corpus (tests/bad-inputs/run.sh
# calls it; needs /usr/bin/python3 with numpy and h5py).
#   make_inputs.py data OUT        good datasets in OUT/data, bad ones and machine-made
#                                  bad recipes in OUT/bad
#                                  and Hugging Face directories in OUT/bad/hf_* (one valid
#                                  tiny Llama, hf_good, and configs kdtrain must refuse)
#   make_inputs.py ckpt GOOD OUT   damaged copies of the valid checkpoint GOOD in OUT/<case>
# Every file is tiny (a few KiB) so the whole corpus is made in about a second.
import hashlib
import json
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np

VOCAB = 259


def dataset(path, tokens, offsets=None, mask=None, attrs=None, dtype=np.uint32, drop=()):
    """Write a token dataset like kdtrain's writer; `attrs` overrides, `drop` omits names."""
    tokens = np.asarray(tokens)
    if offsets is None:
        offsets = [0, len(tokens)]
    a = {"kind": "tokens", "tokenizer": "bytes", "vocab_size": VOCAB, "bos_id": 256,
         "eos_id": 257, "pad_id": 258}
    a.update(attrs or {})
    with h5py.File(path, "w") as f:
        if "tokens" not in drop:
            f.create_dataset("tokens", data=tokens.astype(dtype) if dtype else tokens)
        if "offsets" not in drop:
            f.create_dataset("offsets", data=np.asarray(offsets, dtype=np.uint64))
        if mask is not None:
            f.create_dataset("loss_mask", data=np.asarray(mask, dtype=np.uint8))
        for k, v in a.items():
            if k not in drop:
                f.attrs[k] = v


def make_data(out):
    data, bad = os.path.join(out, "data"), os.path.join(out, "bad")
    os.makedirs(data, exist_ok=True)
    os.makedirs(bad, exist_ok=True)
    rng = np.random.default_rng(11)
    tok = rng.integers(0, 256, 4000)
    good = os.path.join(data, "good.h5")
    dataset(good, tok, offsets=[0, 1000, 4000])
    dataset(os.path.join(data, "tiny.h5"), tok[:12])  # 12 tokens: fewer than seq_len + 1
    dataset(os.path.join(data, "vocab300.h5"), tok, attrs={"vocab_size": 300})

    def b(name):
        return os.path.join(bad, name)

    # ---- HDF5 datasets: structure
    dataset(b("no_tokens.h5"), tok, drop=("tokens",))
    dataset(b("no_offsets.h5"), tok, drop=("offsets",))
    dataset(b("tokens_float.h5"), tok.astype(np.float32), dtype=None)
    dataset(b("tokens_2d.h5"), tok.reshape(40, 100))
    with h5py.File(b("tokens_string.h5"), "w") as f:
        f.create_dataset("tokens", data=np.array([b"abc", b"def"], dtype="S3"))
        f.create_dataset("offsets", data=np.array([0, 2], dtype=np.uint64))
        for k, v in {"kind": "tokens", "tokenizer": "bytes", "vocab_size": VOCAB, "bos_id": 256,
                     "eos_id": 257, "pad_id": 258}.items():
            f.attrs[k] = v
    with h5py.File(b("tokens_group.h5"), "w") as f:
        f.create_group("tokens")
        f.create_dataset("offsets", data=np.array([0, 2], dtype=np.uint64))
        for k, v in {"kind": "tokens", "tokenizer": "bytes", "vocab_size": VOCAB, "bos_id": 256,
                     "eos_id": 257, "pad_id": 258}.items():
            f.attrs[k] = v
    dataset(b("tokens_empty.h5"), np.zeros(0), offsets=[0])
    dataset(b("offsets_empty.h5"), tok, offsets=np.zeros(0))
    dataset(b("offsets_2d.h5"), tok, offsets=np.array([[0, 4000]]))
    # ---- HDF5 datasets: values
    dataset(b("offsets_not_monotonic.h5"), tok, offsets=[0, 3000, 1000, 4000])
    dataset(b("offsets_first_nonzero.h5"), tok, offsets=[5, 4000])
    dataset(b("offsets_last_wrong.h5"), tok, offsets=[0, 3999])
    dataset(b("offsets_huge.h5"), tok, offsets=[0, 2**64 - 1])
    ids = tok.copy()
    ids[1234] = 300
    dataset(b("ids_ge_vocab.h5"), ids)
    neg = tok.astype(np.int32)
    neg[7] = -1
    dataset(b("ids_negative.h5"), neg, dtype=np.int32)
    m = np.ones(len(tok), dtype=np.uint8)
    dataset(b("mask_short.h5"), tok, mask=m[:-1])
    m2 = m.copy()
    m2[99] = 2
    dataset(b("mask_value.h5"), tok, mask=m2)
    # ---- HDF5 datasets: attributes
    dataset(b("attr_no_kind.h5"), tok, drop=("kind",))
    dataset(b("attr_bad_kind.h5"), tok, attrs={"kind": "images"})
    dataset(b("attr_vocab_zero.h5"), tok, attrs={"vocab_size": 0})
    dataset(b("attr_vocab_string.h5"), tok, attrs={"vocab_size": "259"})
    dataset(b("attr_bos_out_of_range.h5"), tok, attrs={"bos_id": 259})
    # ---- HDF5 datasets: tokenizer identity (docs/formats.md; `check` compares fingerprints)
    dataset(b("tok_other_fingerprint.h5"), tok,
            attrs={"tokenizer": "other-bpe", "tokenizer_fingerprint": "ab" * 32})
    dataset(b("tok_no_fingerprint.h5"), tok, attrs={"tokenizer": "gpt2"})
    dataset(b("tok_fingerprint_short.h5"), tok, attrs={"tokenizer_fingerprint": "abc123"})
    dataset(b("tok_stop_ids_range.h5"), tok, attrs={"stop_ids": np.array([257, 999], dtype=np.int64)})
    dataset(b("tok_stop_ids_2d.h5"), tok, attrs={"stop_ids": np.array([[257]], dtype=np.int64)})
    with open(b("chat_system.jsonl"), "w") as f:  # fine for most templates, not mistral's
        f.write('{"messages": [{"role": "system", "content": "be brief"}, '
                '{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n')
    # ---- eval task files (JSONL): multiple choice and exact match
    mc = {"task": "t", "context": "Q: 1+1? A:", "choices": [" 2", " 3"], "gold": 0}
    for name, line in [("mc_gold_range", dict(mc, gold=2)), ("mc_one_choice", dict(mc, choices=[" 2"])),
                       ("mc_choice_not_string", dict(mc, choices=[" 2", 3])),
                       ("mc_gold_float", dict(mc, gold=0.5))]:
        with open(b(f"{name}.jsonl"), "w") as f:
            f.write(json.dumps(mc) + "\n" + json.dumps(line) + "\n")
    with open(b("tasks_mixed.jsonl"), "w") as f:  # an exact-match file with a choices line
        f.write(json.dumps({"task": "t", "prompt": "1+1?", "answer": "2"}) + "\n" + json.dumps(mc) + "\n")
    # ---- not HDF5 at all
    with open(b("text.h5"), "w") as f:
        f.write("tokens: 1 2 3\n")
    open(b("empty.h5"), "wb").close()
    raw = open(good, "rb").read()
    with open(b("truncated.h5"), "wb") as f:
        f.write(raw[: len(raw) // 2])
    with open(b("header_only.h5"), "wb") as f:
        f.write(raw[:600])
    os.makedirs(b("dir.h5"), exist_ok=True)

    # ---- machine-made bad recipes (too big or too binary to commit by hand)
    with open(b("garbage.yaml"), "wb") as f:
        f.write(np.random.default_rng(5).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with open(b("nul.yaml"), "wb") as f:
        f.write(b"run:\n  name: a\x00b\nstages:\n  - {name: p, kind: pretrain}\n")
    with open(b("latin1.yaml"), "wb") as f:
        f.write(b"run:\n  name: caf\xe9\nstages:\n  - {name: p, kind: pretrain}\n")
    with open(b("deep.yaml"), "w") as f:  # 100000 nested flow sequences
        f.write("stages: " + "[" * 100000 + "]" * 100000 + "\n")
    with open(b("deep_block.yaml"), "w") as f:  # 3000 nested block maps
        f.write("".join("  " * i + "k%d:\n" % i for i in range(3000)) + "  " * 3000 + "v\n")
    with open(b("laughs.yaml"), "w") as f:  # each level doubles: 2^40 nodes if expanded
        f.write("x-a0: &a0 [1, 1]\n")
        for i in range(1, 41):
            f.write("x-a%d: &a%d [*a%d, *a%d]\n" % (i, i, i - 1, i - 1))
        f.write("stages: *a40\n")
    with open(b("long_key.yaml"), "w") as f:
        f.write("run:\n  " + "k" * 200000 + ": 1\nstages:\n  - {name: p, kind: pretrain}\n")
    with open(b("long_value.yaml"), "w") as f:
        f.write("run:\n  name: " + "n" * 200000 + "\nstages:\n  - {name: p, kind: pretrain}\n")
    many = "".join("  - {name: s%d, kind: pretrain, data: data/good.h5}\n" % i for i in range(40))
    with open(b("many_stages.yaml"), "w") as f:
        f.write("stages:\n" + many)
    make_hf(bad)


# Configs that change what a Llama computes (or that kdtrain cannot compute): each must be
# refused with exit 2 naming its key. Applied to hf_good's config.json; None deletes a key.
HF_BAD = {
    "mlp_bias": {"mlp_bias": True},
    "attention_bias": {"attention_bias": True},
    "qwen2": {"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"]},
    "mistral": {"model_type": "mistral", "sliding_window": 4096},
    "sliding_window": {"sliding_window": 16, "use_sliding_window": True},
    "architectures": {"architectures": ["MistralForCausalLM"]},
    "partial_rotary": {"partial_rotary_factor": 0.5},
    "hidden_act": {"hidden_act": "gelu_pytorch_tanh"},
    "head_dim": {"head_dim": 16},
    "rope_yarn": {"rope_scaling": {"rope_type": "yarn", "factor": 4.0}},
    "rope_not_object": {"rope_scaling": "llama3"},
    "rope_extra_key": {"rope_scaling": {"rope_type": "linear", "factor": 2.0, "beta_fast": 32}},
    "rope_llama3_missing": {"rope_scaling": {"rope_type": "llama3", "factor": 8.0, "high_freq_factor": 4.0,
                                             "original_max_position_embeddings": 8192}},
    "rope_llama3_order": {"rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 4.0,
                                           "high_freq_factor": 1.0, "original_max_position_embeddings": 8192}},
    "rope_dynamic_no_max": {"rope_scaling": {"type": "dynamic", "factor": 2.0}, "max_position_embeddings": None},
    "rope_dynamic_short": {"rope_scaling": {"type": "dynamic", "factor": 2.0}, "max_position_embeddings": 4},
}


def make_hf(bad):
    good = os.path.join(bad, "hf_good")
    ref = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference", "make_hf_llama.py")
    subprocess.run([sys.executable, ref, good, os.path.join(bad, "hf_good_expect.h5")], check=True)
    cfg = json.load(open(os.path.join(good, "config.json")))
    for name, change in HF_BAD.items():
        d = os.path.join(bad, "hf_" + name)
        os.makedirs(d, exist_ok=True)
        c = {k: v for k, v in dict(cfg, **change).items() if v is not None}
        json.dump(c, open(os.path.join(d, "config.json"), "w"), indent=1)
        os.symlink(os.path.join(good, "model.safetensors"), os.path.join(d, "model.safetensors"))


def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def manifest(d, names, size_override=None):
    """Rewrite d/MANIFEST so that it matches the files it lists (a 'valid' damaged ckpt)."""
    lines = ["kdtrain-checkpoint 1"]
    for n in names:
        p = os.path.join(d, n)
        size = os.path.getsize(p) if size_override is None else size_override
        lines.append("%s  %d  %s" % (sha(p), size, n))
    with open(os.path.join(d, "MANIFEST"), "w") as f:
        f.write("\n".join(lines + ["end"]) + "\n")


def make_ckpt(good, out):
    def case(name):
        d = os.path.join(out, name)
        shutil.copytree(good, d)
        return d

    d = case("flipped_byte")
    with open(os.path.join(d, "model.h5"), "r+b") as f:
        f.seek(os.path.getsize(os.path.join(d, "model.h5")) - 100)
        c = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([c[0] ^ 0x10]))
    d = case("truncated_model")
    p = os.path.join(d, "model.h5")
    with open(p, "r+b") as f:
        f.truncate(os.path.getsize(p) // 2)
    d = case("no_manifest")
    os.remove(os.path.join(d, "MANIFEST"))
    d = case("manifest_truncated")
    text = open(os.path.join(d, "MANIFEST")).read()
    with open(os.path.join(d, "MANIFEST"), "w") as f:
        f.write(text[: len(text) // 2])
    d = case("manifest_no_end")
    with open(os.path.join(d, "MANIFEST"), "w") as f:
        f.write("".join(text.splitlines(True)[:-1]))
    d = case("manifest_binary")
    with open(os.path.join(d, "MANIFEST"), "wb") as f:
        f.write(b"kdtrain-checkpoint 1\n\x00\xff\xfe\n")
    d = case("manifest_version")
    with open(os.path.join(d, "MANIFEST"), "w") as f:
        f.write(text.replace("kdtrain-checkpoint 1", "kdtrain-checkpoint 9"))
    d = case("manifest_huge_size")
    manifest(d, ["model.h5", "state.json"], size_override=2**64 - 1)
    d = case("manifest_path_escape")
    with open(os.path.join(d, "MANIFEST"), "w") as f:
        f.write(text.replace("  state.json", "  ../../state.json"))
    d = case("missing_state")
    os.remove(os.path.join(d, "state.json"))
    # verify passes (MANIFEST matches), but model.h5 holds a token dataset, not weights:
    # the wrong kind of content / wrong model layout must be an error for digest
    d = case("wrong_model_file")
    shutil.copy(os.path.join(os.path.dirname(out), "data", "good.h5"), os.path.join(d, "model.h5"))
    manifest(d, ["model.h5", "state.json", "optim.h5"])
    d = case("state_not_json")
    with open(os.path.join(d, "state.json"), "w") as f:
        f.write("{\"step\": 3,,}")
    manifest(d, ["model.h5", "state.json", "optim.h5"])
    os.makedirs(os.path.join(out, "not_a_ckpt"), exist_ok=True)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "data":
        make_data(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "ckpt":
        make_ckpt(sys.argv[2], sys.argv[3])
    else:
        sys.exit("usage: make_inputs.py data OUT | ckpt GOOD_CKPT OUT")
