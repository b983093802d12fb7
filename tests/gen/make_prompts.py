# make_prompts.py SRC.h5 OUT.h5 N: a prompts dataset (kind sft, byte tokenizer) of N
# prompts cut from the documents of SRC: prompt i is the first 2 + i % 11 tokens of
# document i (BOS + bytes). Prompt 7 gets a trailing EOS, which generation must drop.
import sys
import h5py
import numpy as np

src, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with h5py.File(src, "r") as f:
    tok, off = f["tokens"][:], f["offsets"][:]
    attrs = {k: f.attrs[k] for k in ("vocab_size", "bos_id", "eos_id", "pad_id")}
assert len(off) - 1 >= n, "source has too few documents"
docs = []
for i in range(n):
    d = tok[off[i]:off[i + 1]]
    p = list(d[: min(2 + i % 11, len(d) - 1)])
    if i == 7:
        p.append(attrs["eos_id"])
    docs.append(p)
with h5py.File(out, "w") as f:
    f["tokens"] = np.concatenate([np.array(d, dtype=np.uint32) for d in docs])
    f["offsets"] = np.cumsum([0] + [len(d) for d in docs]).astype(np.uint64)
    f.attrs["kind"] = "sft"
    f.attrs["tokenizer"] = "bytes"
    for k, v in attrs.items():
        f.attrs[k] = np.int64(v)
