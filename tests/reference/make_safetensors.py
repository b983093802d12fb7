#!/usr/bin/env python3
"""make_safetensors.py OUTDIR: write safetensors files BY HAND (struct + json + numpy, not
the safetensors package) for the C reader to check against, plus the expected float32
values and a manifest the C test walks.

Files written:
  OUTDIR/mixed.safetensors   F32, F16 (subnormals, +-0, +-inf, max), BF16 (rounded to
                             nearest even by hand), a scalar, an empty tensor, an I64 tensor;
                             header NOT padded, with __metadata__.
  OUTDIR/sharded/            model-0000{1,2}-of-00002.safetensors + model.safetensors.index.json
  OUTDIR/<tag>.f32           expected values, raw little-endian float32
  OUTDIR/manifest.txt        lines "ok PATH TENSOR EXPECTED.f32 NUMEL SHAPE..." and
                             "readerr PATH TENSOR SUBSTRING" and "meta PATH KEY VALUE"
"""
import json
import os
import struct
import sys

import numpy as np


def bf16_bits(x):
    """float32 array -> uint16 bfloat16 bits, round to nearest even (finite inputs)."""
    u = np.ascontiguousarray(x, dtype="<f4").view("<u4").astype(np.uint64)
    r = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return r.astype("<u2")


def bf16_value(bits):
    return (bits.astype("<u4") << 16).view("<f4")


def write_st(path, tensors, metadata=None, pad=False):
    """tensors: list of (name, dtype string, shape, raw bytes)."""
    header, blobs, off = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, ensure_ascii=False).encode("utf-8")
    if pad:
        h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_safetensors.py OUTDIR")
    out = sys.argv[1]
    os.makedirs(os.path.join(out, "sharded"), exist_ok=True)
    rng = np.random.default_rng(7)
    manifest = []

    def expect(path, name, values, shape):
        tag = f"{os.path.basename(path).split('.')[0]}_{name}".replace("/", "_")
        np.ascontiguousarray(values, dtype="<f4").tofile(os.path.join(out, tag + ".f32"))
        manifest.append(" ".join(["ok", path, name, tag + ".f32", str(int(np.prod(shape)))]
                                 + [str(s) for s in shape]))

    # ---- mixed dtypes in one file
    a = rng.standard_normal((3, 5)).astype("<f4")
    h = np.array([0.0, -0.0, 1.0, -2.5, 65504.0, 6e-8, 1e-5, -3e-6, np.inf, -np.inf, 0.33325],
                 dtype="<f2")
    hb = np.concatenate([h, rng.standard_normal(21).astype("<f2")]).reshape(4, 8)
    bsrc = (rng.standard_normal((2, 3, 4)) * 100).astype("<f4")
    bsrc.flat[0], bsrc.flat[1] = 1.00390625, 1.01171875  # exact ties: round to even
    bb = bf16_bits(bsrc)
    s = np.array(3.25, dtype="<f4")
    ids = np.arange(6, dtype="<i8")
    mixed = os.path.join(out, "mixed.safetensors")
    write_st(mixed, [
        ("model.a.weight", "F32", a.shape, a.tobytes()),
        ("h16", "F16", hb.shape, hb.tobytes()),
        ("b16", "BF16", bsrc.shape, bb.tobytes()),
        ("scalar", "F32", (), s.tobytes()),
        ("empty", "F32", (0, 4), b""),
        ("ids", "I64", ids.shape, ids.tobytes()),
    ], metadata={"format": "pt", "note": "caf\u00e9 \"q\""})
    expect("mixed.safetensors", "model.a.weight", a, a.shape)
    expect("mixed.safetensors", "h16", hb.astype("<f4"), hb.shape)
    expect("mixed.safetensors", "b16", bf16_value(bb), bsrc.shape)
    expect("mixed.safetensors", "scalar", s.reshape(1), ())
    expect("mixed.safetensors", "empty", np.zeros(0, "<f4"), (0, 4))
    manifest.append("readerr mixed.safetensors ids dtype F32, F16 or BF16, found I64")
    manifest.append("meta mixed.safetensors format pt")

    # ---- a sharded checkpoint, Hugging Face layout (padded headers, as their writer does)
    sd = os.path.join(out, "sharded")
    w = {f"layers.{i}.w": rng.standard_normal((4, 3)).astype("<f4") for i in range(3)}
    emb = rng.standard_normal((5, 4)).astype("<f4")
    embb = bf16_bits(emb)
    names1 = ["embed_tokens.weight", "layers.0.w"]
    write_st(os.path.join(sd, "model-00001-of-00002.safetensors"), [
        ("embed_tokens.weight", "BF16", emb.shape, embb.tobytes()),
        ("layers.0.w", "F32", (4, 3), w["layers.0.w"].tobytes())], metadata={"format": "pt"}, pad=True)
    write_st(os.path.join(sd, "model-00002-of-00002.safetensors"), [
        ("layers.1.w", "F32", (4, 3), w["layers.1.w"].tobytes()),
        ("layers.2.w", "F16", (4, 3), w["layers.2.w"].astype("<f2").tobytes())],
        metadata={"format": "pt"}, pad=True)
    wm = {n: "model-00001-of-00002.safetensors" for n in names1}
    wm.update({n: "model-00002-of-00002.safetensors" for n in ["layers.1.w", "layers.2.w"]})
    with open(os.path.join(sd, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": 1234}, "weight_map": wm}, f, indent=2)
    expect("sharded", "embed_tokens.weight", bf16_value(embb), emb.shape)
    expect("sharded", "layers.0.w", w["layers.0.w"], (4, 3))
    expect("sharded", "layers.1.w", w["layers.1.w"], (4, 3))
    expect("sharded", "layers.2.w", w["layers.2.w"].astype("<f2").astype("<f4"), (4, 3))

    with open(os.path.join(out, "manifest.txt"), "w") as f:
        f.write("\n".join(manifest) + "\n")


if __name__ == "__main__":
    main()
