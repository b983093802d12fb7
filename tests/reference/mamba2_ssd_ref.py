"""A second, independent float64 reference of the kdtrain Mamba-2 layer: the minimal SSD.

Usage: mamba2_ssd_ref.py DIR, with the same files as mamba2_ref.py (dims.txt, inp.f32,
dout.f32, optional seg.i32, one <param>.f32 per parameter); writes out.f32, d_inp.f32 and
d_<param>.f32 (gradients of sum(out * dout)).

Unlike mamba2_ref.py this one is not written from docs/mamba2.md. The state-space part is
the chunked algorithm of the Mamba-2 paper (Dao & Gu 2024, "Transformers are SSMs",
section 6): with X = dt x and a = dt A per token,
  1. diagonal blocks: inside each chunk, Y = (C B^T o L) X with L = exp(segsum(a));
  2. chunk states: the state each chunk leaves, sum_s exp(a_cum[last] - a_cum[s]) X_s B_s^T;
  3. inter-chunk recurrence: the chunk states passed along with exp(segsum(chunk totals));
  4. state to output: C_t times the state entering its chunk, decayed by exp(a_cum[t]).
The layer around it follows the Mamba2 mixer with GQA of MambaInLlama (mamba2/
hybrid_mamba_layer.py): in_proj rows [z | x (n_kv P) | B (n_kv N) | C (H N) | dt], a depthwise
causal conv with bias and SiLU on [x|B|C] before x and B are repeated to the H heads
(repeat_kv), dt = softplus(dt + dt_bias), A = -exp(A_log), y + D x, RMSNormGated with
norm_before_gate = False and one group per head, out_proj. Document boundaries (seg) are
honoured by running every document on its own, so no masking logic is shared with the
layer under test. The SSD runs with two chunk lengths (5 and 8, neither required to divide
T) that must agree to 1e-12 before anything is written.
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

PARAMS = ["in_proj.weight", "conv1d.weight", "conv1d.bias", "dt_bias", "A_log", "D",
          "norm.weight", "out_proj.weight"]


def segsum(a):
    # a (..., L) -> (..., L, L): [i, j] = a[j+1] + ... + a[i] for j <= i, -inf for j > i
    cs = torch.cumsum(a, dim=-1)
    out = cs[..., :, None] - cs[..., None, :]
    L = a.shape[-1]
    upper = ~torch.tril(torch.ones(L, L, dtype=torch.bool))
    return out.masked_fill(upper, -float("inf"))


def ssd(X, a, Bm, Cm, Q):
    # X (b,T,h,p), a (b,T,h), Bm/Cm (b,T,h,n) -> Y (b,T,h,p); zero initial state
    b, T, h, p = X.shape
    pad = (-T) % Q  # trailing zeros: later tokens cannot reach earlier outputs
    X, Bm, Cm = (F.pad(t, (0, 0, 0, 0, 0, pad)) for t in (X, Bm, Cm))
    a = F.pad(a, (0, 0, 0, pad))
    c = (T + pad) // Q
    X = X.reshape(b, c, Q, h, p)
    Bm = Bm.reshape(b, c, Q, h, -1)
    Cm = Cm.reshape(b, c, Q, h, -1)
    a = a.reshape(b, c, Q, h).permute(0, 3, 1, 2)  # (b,h,c,Q)
    a_cum = torch.cumsum(a, dim=-1)
    # 1. within each chunk
    Lmat = torch.exp(segsum(a))  # (b,h,c,Q,Q)
    y_diag = torch.einsum("bcihn,bcjhn,bhcij,bcjhp->bcihp", Cm, Bm, Lmat, X)
    # 2. the state at the end of each chunk from its own tokens
    to_end = torch.exp(a_cum[..., -1:] - a_cum)  # (b,h,c,Q)
    S_local = torch.einsum("bcjhn,bhcj,bcjhp->bchpn", Bm, to_end, X)
    # 3. pass states from chunk to chunk (a zero state enters chunk 0)
    S_all = torch.cat([torch.zeros_like(S_local[:, :1]), S_local], dim=1)  # (b,c+1,h,p,n)
    totals = F.pad(a_cum[..., -1], (1, 0))  # (b,h,c+1)
    carry = torch.exp(segsum(totals))  # (b,h,c+1,c+1)
    S_in = torch.einsum("bhzc,bchpn->bzhpn", carry, S_all)[:, :-1]  # state entering chunk z
    # 4. the entering state read out by C, decayed to each position
    from_start = torch.exp(a_cum)  # (b,h,c,Q)
    y_off = torch.einsum("bcihn,bchpn,bhci->bcihp", Cm, S_in, from_start)
    return (y_diag + y_off).reshape(b, c * Q, h, p)[:, :T]


def mixer(u, p, dims, Q):
    # u (b,L,C) of ONE document per row -> (b,L,C)
    H, nkv, P, N, W = (dims[k] for k in ("H", "n_kv", "P", "N", "W"))
    b, L, _ = u.shape
    d_inner, d_xb = H * P, nkv * P
    zxbcdt = u @ p["in_proj.weight"].T
    z, xBC, dt = torch.split(zxbcdt, [d_inner, d_xb + nkv * N + H * N, H], dim=-1)
    # depthwise causal conv over time (Conv1d with padding W-1, first L outputs)
    conv = F.conv1d(xBC.transpose(1, 2), p["conv1d.weight"].reshape(-1, 1, W), p["conv1d.bias"],
                    padding=W - 1, groups=xBC.shape[-1])[..., :L]
    xBC = F.silu(conv.transpose(1, 2))
    x, Bm, Cm = torch.split(xBC, [d_xb, nkv * N, H * N], dim=-1)
    rep = H // nkv
    x = x.reshape(b, L, nkv, P).repeat_interleave(rep, dim=2)  # head h reads kv head h // rep
    Bm = Bm.reshape(b, L, nkv, N).repeat_interleave(rep, dim=2)
    Cm = Cm.reshape(b, L, H, N)
    dt = F.softplus(dt + p["dt_bias"])  # (b,L,H)
    A = -torch.exp(p["A_log"])
    y = ssd(x * dt[..., None], dt * A, Bm, Cm, Q) + x * p["D"][:, None]
    g = y.reshape(b, L, d_inner) * F.silu(z)  # gate, then normalise each head's group
    g = g.reshape(b, L, H, P)
    g = g / torch.sqrt(g.pow(2).mean(-1, keepdim=True) + dims["eps"])
    return (g.reshape(b, L, d_inner) * p["norm.weight"]) @ p["out_proj.weight"].T


def layer(inp, p, seg, dims, Q):
    if seg is None:
        return mixer(inp, p, dims, Q)
    rows = []
    for r in range(inp.shape[0]):
        s, parts, t0 = seg[r], [], 0
        for t in range(1, inp.shape[1] + 1):
            if t == inp.shape[1] or s[t] != s[t - 1]:
                parts.append(mixer(inp[r:r + 1, t0:t], p, dims, Q))
                t0 = t
        rows.append(torch.cat(parts, dim=1))
    return torch.cat(rows, dim=0)


def main():
    d = sys.argv[1]
    dims = {}
    for line in open(os.path.join(d, "dims.txt")):
        k, v = line.split()
        dims[k] = float(v) if k == "eps" else int(v)
    Bsz, T, C = dims["B"], dims["T"], dims["C"]

    def load(name):
        return np.fromfile(os.path.join(d, name + ".f32"), dtype="<f4").astype(np.float64)

    inp0 = torch.tensor(load("inp").reshape(Bsz, T, C))
    dout = torch.tensor(load("dout").reshape(Bsz, T, C))
    seg = None
    if dims["has_seg"]:
        seg = np.fromfile(os.path.join(d, "seg.i32"), dtype="<i4").reshape(Bsz, T).tolist()
    H, P, nkv, N = dims["H"], dims["P"], dims["n_kv"], dims["N"]
    d_inner = H * P
    shapes = {"in_proj.weight": (d_inner + nkv * P + nkv * N + H * N + H, C),
              "out_proj.weight": (C, d_inner)}
    raw = {n: torch.tensor(load(n).reshape(shapes.get(n, (-1,)))) for n in PARAMS}
    results = []
    for Q in (5, 8):
        p = {n: v.clone().requires_grad_(True) for n, v in raw.items()}
        inp = inp0.clone().requires_grad_(True)
        out = layer(inp, p, seg, dims, Q)
        (out * dout).sum().backward()
        res = {"out": out.detach(), "d_inp": inp.grad}
        res.update({"d_" + n: p[n].grad for n in PARAMS})
        results.append(res)
    for k in results[0]:
        a, b = results[0][k], results[1][k]
        err = (a - b).norm().item() / max(b.norm().item(), 1e-300)
        if not err <= 1e-12:
            print(f"mamba2_ssd_ref: chunk lengths 5 and 8 disagree on {k}: {err:.3g}")
            return 1
    for k, v in results[1].items():
        v.numpy().astype("<f4").tofile(os.path.join(d, k + ".f32"))
    print("mamba2_ssd_ref: wrote", len(results[1]), "tensors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
