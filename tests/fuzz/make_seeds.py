#!/usr/bin/env python3
# make_seeds.py: writes the seed corpora of the fuzz harnesses into tests/fuzz/seeds/<name>/
# (committed; rerun after a format change). Seeds are small valid inputs, so mutations start
# from something every parser accepts. Needs /usr/bin/python3 with numpy and h5py.
import hashlib
import json
import os
import struct
import sys

import h5py
import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "seeds")


def put(name, fname, data):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, fname), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


# ---- dataset: tiny valid token datasets (contiguous; chunked + gzip + mask)
def h5(fname, n, chunked, mask, kind="tokens"):
    d = os.path.join(out, "dataset")
    os.makedirs(d, exist_ok=True)
    tok = (np.arange(n) * 7 % 259).astype(np.uint32)
    with h5py.File(os.path.join(d, fname), "w", libver="earliest") as f:
        kw = dict(chunks=(16,), compression="gzip", shuffle=True) if chunked else {}
        f.create_dataset("tokens", data=tok, **kw)
        f.create_dataset("offsets", data=np.array([0, n // 3, n], dtype=np.uint64))
        if mask:
            f.create_dataset("loss_mask", data=(np.arange(n) % 2).astype(np.uint8), **kw)
        for k, v in {"kind": kind, "tokenizer": "bytes", "vocab_size": 259, "bos_id": 256,
                     "eos_id": 257, "pad_id": 258}.items():
            f.attrs[k] = v


h5("plain.h5", 40, False, False)
h5("chunked_mask.h5", 40, True, True, kind="sft")

# ---- json: documents of the kinds kdtrain reads
put("json", "config.json", json.dumps({"architectures": ["LlamaForCausalLM"], "hidden_size": 64,
                                       "num_attention_heads": 4, "rope_theta": 10000.0,
                                       "tie_word_embeddings": False, "rms_norm_eps": 1e-5}))
put("json", "index.json", json.dumps({"metadata": {"total_size": 128},
                                      "weight_map": {"a.weight": "m-1.safetensors"}}))
put("json", "state.json", '{"format": "kdtrain-state 1", "step": 3, "rng": ["fedcba9876543210"],'
    ' "extra": {"note": "tab\\u0009here \\ud83d\\ude00"}, "x": [1.5e-3, -0, null, true]}')
put("json", "chat.jsonl", '{"messages": [{"role": "user", "content": "hi"}]}')

# ---- manifest: a valid MANIFEST for the files fuzz_manifest.c writes
files = {"model.h5": b"weights", "state.json": b"{}\n", "optim.h5": b""}
lines = ["kdtrain-checkpoint 1"]
for name, body in files.items():
    lines.append("%s  %d  %s" % (hashlib.sha256(body).hexdigest(), len(body), name))
put("manifest", "valid", "\n".join(lines + ["end"]) + "\n")
put("manifest", "no_optim", "\n".join(lines[:3] + ["end"]) + "\n")


# ---- safetensors: F32, F16 and BF16 tensors with metadata
def safetensors(tensors, meta):
    header, blob = {}, b""
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(raw)]}
        blob += raw
    header["__metadata__"] = meta
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + blob


a = np.arange(6, dtype=np.float32)
put("safetensors", "mixed.safetensors", safetensors({
    "w": ("F32", [2, 3], a.tobytes()),
    "h": ("F16", [3], a[:3].astype(np.float16).tobytes()),
    "b": ("BF16", [2], (a[:2].view(np.uint32) >> 16).astype(np.uint16).tobytes()),
    "s": ("F32", [], np.float32(1.5).tobytes())}, {"format": "pt"}))
put("safetensors", "empty.safetensors", safetensors({}, {}))

# ---- recipe: the committed recipes are seeds too (run.sh passes their directories)
put("recipe", "all_kinds.yaml", """\
x-batch: &batch {global: 4, micro: 2, seq_len: 16}
run: {name: all, out_dir: runs/all, seed: 3, backend: cpu, max_minutes: 5}
model:
  arch: {vocab_size: 259, d_model: 32, n_layers: 4, n_heads: 2, head_dim: 16, ffn_dim: 64}
  hybrid: {attn_layers: [0, 2], chunk_size: 8}
teacher: {from: {checkpoint: runs/teacher/final}}
stages:
  - {name: init, kind: init, from: {random: true}, hybrid: {ssm_layers: [1]}}
  - {name: align1, kind: align, phase: matrix, data: d.h5, batch: *batch}
  - name: distill
    kind: kd
    data: d.h5
    loss: {kl: 1.0, ce: 0.1, temperature: 2.0, divergence: jsd, beta: 0.3}
    optim: {lr: 1.0e-3, schedule: linear, warmup: 5}
    freeze: ["layers.*.mlp.*"]
  - {name: tune, kind: sft, data: sft.h5, packing: false}
  - {name: pref, kind: dpo, data: p.h5, loss: {type: ipo, beta: 0.2}, reference: {from: {stage: tune}}}
  - {name: ev, kind: eval, data: d.h5, tasks: [ppl]}
""")
print("seeds written to", out, file=sys.stderr)
