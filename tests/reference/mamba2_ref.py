"""Independent float64 PyTorch reference of the kdtrain Mamba-2 mixer layer.

Usage: mamba2_ref.py DIR. DIR holds dims.txt ("key value" lines: C H n_kv P N W Q B T eps
has_seg), inp.f32 (B,T,C), dout.f32 (B,T,C), optional seg.i32 (B,T) and one <param>.f32 per
parameter (in_proj.weight, conv1d.weight, ...; little-endian float32). Writes out.f32 (the
layer output) and d_inp.f32, d_<param>.f32 (gradients of sum(out * dout)).

The layer is written from the formulas (docs/mamba2.md): in_proj rows [z|x|B|C|dt], causal
depthwise conv + SiLU before the GQA repeat, dt = softplus(dt + dt_bias), A = -exp(A_log),
h_t = exp(dt A) h_{t-1} + dt x_t B_t^T, y_t = h_t C_t + D x_t, gated group RMSNorm,
out_proj. Two scans are implemented, a sequential one and a chunked SSD (padding the
last chunk); the script fails unless both agree to 1e-10 in outputs and gradients.
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

PARAMS = ["in_proj.weight", "conv1d.weight", "conv1d.bias", "dt_bias", "A_log", "D",
          "norm.weight", "out_proj.weight"]


def doc_ids(seg):
    # seg (B,T) -> running document index: equal ids <=> no boundary in between
    reset = torch.zeros_like(seg, dtype=torch.int64)
    reset[:, 1:] = (seg[:, 1:] != seg[:, :-1]).to(torch.int64)
    return torch.cumsum(reset, dim=1)


def scan_sequential(x, dt, A, Bm, Cm, doc):
    # x (B,T,H,P), dt (B,T,H), A (H), Bm/Cm (B,T,H,N), doc (B,T) -> y (B,T,H,P)
    Bsz, T, H, P = x.shape
    N = Bm.shape[-1]
    h = torch.zeros(Bsz, H, P, N, dtype=x.dtype)
    ys = []
    for t in range(T):
        a = torch.exp(dt[:, t] * A)  # (B,H)
        if t > 0:
            a = a * (doc[:, t] == doc[:, t - 1]).to(x.dtype)[:, None]
        h = a[:, :, None, None] * h + (dt[:, t, :, None, None] * x[:, t, :, :, None]
                                       * Bm[:, t, :, None, :])
        ys.append(torch.einsum("bhpn,bhn->bhp", h, Cm[:, t]))
    return torch.stack(ys, dim=1)


def scan_chunked(x, dt, A, Bm, Cm, doc, Q):
    Bsz, T, H, P = x.shape
    N = Bm.shape[-1]
    pad = (-T) % Q
    if pad:  # padded tokens come last, so they cannot change earlier outputs
        x = F.pad(x, (0, 0, 0, 0, 0, pad))
        Bm = F.pad(Bm, (0, 0, 0, 0, 0, pad))
        Cm = F.pad(Cm, (0, 0, 0, 0, 0, pad))
        dt = F.pad(dt, (0, 0, 0, pad))
        doc = torch.cat([doc, doc[:, -1:].expand(Bsz, pad)], dim=1)
    S = torch.zeros(Bsz, H, P, N, dtype=x.dtype)
    out = []
    tri = torch.tril(torch.ones(Q, Q, dtype=torch.bool))
    for t0 in range(0, T + pad, Q):
        sl = slice(t0, t0 + Q)
        xc, dtc, Bc, Cc, dc = x[:, sl], dt[:, sl], Bm[:, sl], Cm[:, sl], doc[:, sl]
        cum = torch.cumsum(dtc * A, dim=1)  # (B,Q,H)
        prev = doc[:, t0 - 1] if t0 > 0 else dc[:, 0]
        same = (dc[:, :, None] == dc[:, None, :]) & tri  # (B,Q,Q)
        diff = cum[:, :, None, :] - cum[:, None, :, :]  # (B,i,j,H)
        Lm = torch.exp(torch.where(same[..., None], diff, torch.full_like(diff, -float("inf"))))
        G = torch.einsum("bihn,bjhn->bijh", Cc, Bc)
        y = torch.einsum("bijh,bjh,bjhp->bihp", G * Lm, dtc, xc)
        keep = (dc == prev[:, None]).to(x.dtype)  # (B,Q): state from before t0 survives
        e = torch.exp(cum) * keep[:, :, None]
        y = y + torch.einsum("bihn,bhpn->bihp", Cc, S) * e[..., None]
        f = torch.exp(cum[:, -1:, :] - cum) * (dc == dc[:, -1:]).to(x.dtype)[:, :, None]
        el = torch.exp(cum[:, -1]) * keep[:, -1:].expand(-1, H)
        S = el[:, :, None, None] * S + torch.einsum("bjh,bjhp,bjhn->bhpn", f * dtc, xc, Bc)
        out.append(y)
    return torch.cat(out, dim=1)[:, :T]


def layer(inp, p, seg, dims, scan):
    C, H, nkv, P, N, W = (dims[k] for k in ("C", "H", "n_kv", "P", "N", "W"))
    Bsz, T, _ = inp.shape
    d_inner, d_xb, rep = H * P, nkv * P, H // nkv
    conv_dim = 2 * d_xb + d_inner
    zxbcdt = inp @ p["in_proj.weight"].T
    z, xBC, dtr = torch.split(zxbcdt, [d_inner, conv_dim, H], dim=-1)
    doc = doc_ids(seg) if seg is not None else torch.zeros(Bsz, T, dtype=torch.int64)
    w = p["conv1d.weight"].reshape(conv_dim, W)
    pre = p["conv1d.bias"].expand(Bsz, T, conv_dim).clone()
    for k in range(W):
        sh = W - 1 - k  # input t - sh
        if sh >= T:
            continue
        src = F.pad(xBC, (0, 0, sh, 0))[:, :T]
        dsrc = torch.cat([torch.full((Bsz, sh), -1, dtype=torch.int64), doc], dim=1)[:, :T]
        valid = (dsrc == doc).to(inp.dtype)[..., None]
        pre = pre + w[:, k] * src * valid
    xBC = F.silu(pre)
    x, Bm, Cm = torch.split(xBC, [d_xb, d_xb, d_inner], dim=-1)
    x = x.reshape(Bsz, T, nkv, P).repeat_interleave(rep, dim=2)
    Bm = Bm.reshape(Bsz, T, nkv, N).repeat_interleave(rep, dim=2)
    Cm = Cm.reshape(Bsz, T, H, N)
    dt = F.softplus(dtr + p["dt_bias"])
    A = -torch.exp(p["A_log"])
    y = scan(x, dt, A, Bm, Cm, doc) + p["D"][:, None] * x
    g = (y.reshape(Bsz, T, d_inner) * F.silu(z)).reshape(Bsz, T, H, P)
    g = g * torch.rsqrt(g.pow(2).mean(-1, keepdim=True) + dims["eps"])
    yn = g.reshape(Bsz, T, d_inner) * p["norm.weight"]
    return yn @ p["out_proj.weight"].T


def main():
    d = sys.argv[1]
    dims = {}
    for line in open(os.path.join(d, "dims.txt")):
        k, v = line.split()
        dims[k] = float(v) if k == "eps" else int(v)
    Bsz, T, C = dims["B"], dims["T"], dims["C"]

    def load(name):
        a = np.fromfile(os.path.join(d, name + ".f32"), dtype="<f4").astype(np.float64)
        return a

    inp0 = torch.tensor(load("inp").reshape(Bsz, T, C))
    dout = torch.tensor(load("dout").reshape(Bsz, T, C))
    seg = None
    if dims["has_seg"]:
        seg = torch.tensor(np.fromfile(os.path.join(d, "seg.i32"), dtype="<i4").reshape(Bsz, T)
                           .astype(np.int64))
    H, P, nkv = dims["H"], dims["P"], dims["n_kv"]
    d_inner = H * P
    d_in_proj = 2 * d_inner + 2 * nkv * P + H
    shapes = {"in_proj.weight": (d_in_proj, C), "out_proj.weight": (C, d_inner)}
    raw = {n: torch.tensor(load(n).reshape(shapes.get(n, (-1,)))) for n in PARAMS}
    results = []
    for scan in (scan_sequential, lambda *a: scan_chunked(*a, dims["Q"])):
        p = {n: v.clone().requires_grad_(True) for n, v in raw.items()}
        inp = inp0.clone().requires_grad_(True)
        out = layer(inp, p, seg, dims, scan)
        (out * dout).sum().backward()
        res = {"out": out.detach(), "d_inp": inp.grad}
        res.update({"d_" + n: p[n].grad for n in PARAMS})
        results.append(res)
    for k in results[0]:
        a, b = results[0][k], results[1][k]
        err = (a - b).norm().item() / max(b.norm().item(), 1e-300)
        if not err <= 1e-10:
            print(f"mamba2_ref: sequential and chunked torch scans disagree on {k}: {err:.3g}")
            return 1
    for k, v in results[1].items():
        v.numpy().astype("<f4").tofile(os.path.join(d, k + ".f32"))
    print("mamba2_ref: wrote", len(results[1]), "tensors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
