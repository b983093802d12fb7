#!/usr/bin/env python3
"""Write a tiny random Llama in the Hugging Face layout (config.json + model.safetensors,
safetensors written by hand: 8-byte header length, JSON header, raw little-endian data)
and, for the test, the same weights under kdtrain's names in EXPECT.h5 (/params/<name>).
Some tensors are stored as BF16 so the import's conversion is exercised; EXPECT holds the
values after bf16 rounding. Usage: make_hf_llama.py DIR EXPECT.h5"""
import json, os, struct, sys

import h5py
import numpy as np

def bf16_bits(x):
    u = x.astype(np.float32).view(np.uint32)
    rounded = u + 0x7FFF + ((u >> 16) & 1)  # round to nearest even
    return (rounded >> 16).astype(np.uint16)

def main():
    out, expect = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    V, C, L, NH, NKV, HD, F = 53, 32, 2, 4, 2, 8, 48
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": V,
           "hidden_size": C, "num_hidden_layers": L, "num_attention_heads": NH,
           "num_key_value_heads": NKV, "intermediate_size": F, "hidden_act": "silu",
           "rope_theta": 500000.0, "rms_norm_eps": 1e-5, "tie_word_embeddings": False,
           "rope_scaling": None}
    json.dump(cfg, open(os.path.join(out, "config.json"), "w"), indent=1)
    rng = np.random.default_rng(0)
    tensors = {}  # hf name -> (kdtrain name, array, dtype)
    def add(hf, ours, shape, dtype="F32"):
        tensors[hf] = (ours, rng.standard_normal(shape).astype(np.float32) * 0.1, dtype)
    add("model.embed_tokens.weight", "embed_tokens.weight", (V, C), "BF16")
    for l in range(L):
        p, q = f"model.layers.{l}.", f"layers.{l}."
        add(p + "input_layernorm.weight", q + "input_layernorm.weight", (C,))
        add(p + "self_attn.q_proj.weight", q + "mixer.q_proj.weight", (NH * HD, C), "BF16")
        add(p + "self_attn.k_proj.weight", q + "mixer.k_proj.weight", (NKV * HD, C))
        add(p + "self_attn.v_proj.weight", q + "mixer.v_proj.weight", (NKV * HD, C))
        add(p + "self_attn.o_proj.weight", q + "mixer.o_proj.weight", (C, NH * HD))
        add(p + "post_attention_layernorm.weight", q + "post_attention_layernorm.weight", (C,))
        add(p + "mlp.gate_proj.weight", q + "mlp.gate_proj.weight", (F, C))
        add(p + "mlp.up_proj.weight", q + "mlp.up_proj.weight", (F, C))
        add(p + "mlp.down_proj.weight", q + "mlp.down_proj.weight", (C, F))
    add("model.norm.weight", "norm.weight", (C,))
    add("lm_head.weight", "lm_head.weight", (V, C))
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    with h5py.File(expect, "w") as h:
        for hf, (ours, a, dt) in tensors.items():
            if dt == "BF16":
                bits = bf16_bits(a)
                raw = bits.astype("<u2").tobytes()
                a = (bits.astype(np.uint32) << 16).view(np.float32)
            else:
                raw = a.astype("<f4").tobytes()
            header[hf] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
            blobs.append(raw)
            off += len(raw)
            h.create_dataset("params/" + ours, data=a)
    hb = json.dumps(header).encode()
    hb += b" " * (-len(hb) % 8)
    with open(os.path.join(out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(hb)) + hb + b"".join(blobs))
    print(f"wrote {out} ({len(tensors)} tensors) and {expect}")

if __name__ == "__main__":
    main()
