#!/usr/bin/env python3
"""torch_llama_bench.py: PyTorch CPU training-throughput baseline for kdtrain's bench model.

Measures tokens/s of forward + backward + AdamW step for a Llama-style model (default: V=4096,
d=384, 6 layers, 6 heads / 2 KV heads, head_dim 64, SwiGLU 1024, seq 256, batch 8, fp32,
2 threads). `--ssm-layers 0,2,4` swaps those layers' attention for a Mamba-2 mixer in the
MambaInLlama layout, computed with the chunked SSD algorithm. Prints one line:
  torch: N tokens/s (config...)
`--check-ssd` instead compares the chunked SSD against the plain recurrence and exits.
Not a ctest: run by hand (about 20-30 s with the defaults on 2 cores).
"""
import argparse
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):  # x is (..., dim)
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


class Attention(nn.Module):
    """Causal GQA attention with RoPE (rotate_half pairing of dims i and i+HD/2)."""

    def __init__(self, d, nh, nkv, hd, theta):
        super().__init__()
        self.nh, self.nkv, self.hd = nh, nkv, hd
        self.q_proj = nn.Linear(d, nh * hd, bias=False)
        self.k_proj = nn.Linear(d, nkv * hd, bias=False)
        self.v_proj = nn.Linear(d, nkv * hd, bias=False)
        self.o_proj = nn.Linear(nh * hd, d, bias=False)
        self.register_buffer("inv_freq", theta ** (-torch.arange(0, hd, 2).float() / hd))

    def forward(self, x):  # x is (B,T,C)
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.nh, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.nkv, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.nkv, self.hd).transpose(1, 2)
        ang = torch.arange(T, dtype=torch.float32)[:, None] * self.inv_freq  # (T,HD/2)
        ang = torch.cat([ang, ang], -1)
        cos, sin = ang.cos(), ang.sin()
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        rep = self.nh // self.nkv
        k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd)  # (B,NH,T,T)
        mask = torch.ones(T, T, dtype=torch.bool).triu(1)
        y = torch.softmax(s.masked_fill(mask, float("-inf")), -1) @ v
        return self.o_proj(y.transpose(1, 2).reshape(B, T, self.nh * self.hd))


# ---------------------------------------------------------------------------- Mamba-2

def ssd_chunked(x, a, b, c, chunk):
    """Chunked state-space dual form of h_t = exp(a_t) h_{t-1} + x_t (x) b_t, y_t = h_t . c_t.
    x is (B,L,H,P) (already scaled by dt), a is (B,L,H) (= dt*A, <= 0), b and c are (B,L,H,N).
    Returns y (B,L,H,P). L must be a multiple of chunk."""
    Bsz, L, H, P = x.shape
    N = b.shape[-1]
    nc = L // chunk
    x = x.view(Bsz, nc, chunk, H, P)
    b = b.view(Bsz, nc, chunk, H, N)
    c = c.view(Bsz, nc, chunk, H, N)
    a = a.view(Bsz, nc, chunk, H).permute(0, 3, 1, 2)  # (B,H,nc,Q)
    acum = a.cumsum(-1)  # (B,H,nc,Q): decay from chunk start to each position
    # Within a chunk: weight of source j on target i (j <= i) is exp(acum_i - acum_j).
    diff = acum[..., :, None] - acum[..., None, :]  # (B,H,nc,Q,Q)
    causal = torch.ones(chunk, chunk, dtype=torch.bool).tril()
    decay = torch.exp(diff.masked_fill(~causal, float("-inf")))
    scores = torch.einsum("bzihn,bzjhn->bhzij", c, b) * decay
    y = torch.einsum("bhzij,bzjhp->bzihp", scores, x)
    # State each chunk leaves behind (as if it started from zero): sum_j exp(a_end - acum_j) x_j b_j.
    to_end = torch.exp(acum[..., -1:] - acum)  # (B,H,nc,Q)
    states = torch.einsum("bzjhn,bhzj,bzjhp->bzhpn", b, to_end, x)
    # Carry states across chunks sequentially (few chunks), decaying by each chunk's total.
    total = torch.exp(acum[..., -1])  # (B,H,nc)
    h = torch.zeros(Bsz, H, P, N, dtype=x.dtype)
    carried = []
    for z in range(nc):
        carried.append(h)
        h = total[:, :, z, None, None] * h + states[:, z]
    carried = torch.stack(carried, 1)  # (B,nc,H,P,N): state entering each chunk
    # Contribution of the entering state to each position: exp(acum_i) * c_i . h.
    y = y + torch.einsum("bzihn,bzhpn,bhzi->bzihp", c, carried, torch.exp(acum))
    return y.reshape(Bsz, L, H, P)


def ssd_recurrent(x, a, b, c):
    """Plain per-step recurrence, for --check-ssd."""
    Bsz, L, H, P = x.shape
    h = torch.zeros(Bsz, H, P, b.shape[-1], dtype=x.dtype)
    ys = []
    for t in range(L):
        h = torch.exp(a[:, t])[..., None, None] * h + x[:, t, :, :, None] * b[:, t, :, None, :]
        ys.append((h * c[:, t, :, None, :]).sum(-1))
    return torch.stack(ys, 1)


class Mamba2(nn.Module):
    """Mamba-2 mixer, MambaInLlama layout: in_proj rows [z | x | B | C | dt] of sizes
    [d_inner | d_xb | d_xb | d_inner | nheads], depthwise causal conv (width 4) + SiLU on
    x,B,C before the GQA repeat of x and B, dt = softplus(dt + dt_bias), A = -exp(A_log),
    D skip, gated RMSNorm per head group of rmsnorm(y * silu(z)), out_proj."""

    def __init__(self, d, nh, nkv, hd, chunk):
        super().__init__()
        self.nh, self.nkv, self.hd, self.chunk = nh, nkv, hd, chunk
        self.d_inner, self.d_xb, self.n = nh * hd, nkv * hd, hd  # d_state = head_dim
        conv_dim = self.d_inner + 2 * self.d_xb
        self.in_proj = nn.Linear(d, 2 * self.d_inner + 2 * self.d_xb + nh, bias=False)
        self.conv1d = nn.Conv1d(conv_dim, conv_dim, 4, groups=conv_dim, padding=3)
        dt = torch.exp(torch.empty(nh).uniform_(math.log(1e-3), math.log(1e-1))).clamp(min=1e-4)
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))  # softplus^-1(dt)
        self.A_log = nn.Parameter(torch.log(torch.empty(nh).uniform_(1, 16)))
        self.D = nn.Parameter(torch.ones(nh))
        self.norm_weight = nn.Parameter(torch.ones(self.d_inner))
        self.out_proj = nn.Linear(self.d_inner, d, bias=False)

    def forward(self, u):  # u is (B,L,C)
        Bsz, L, _ = u.shape
        di, dx, nh, hd = self.d_inner, self.d_xb, self.nh, self.hd
        z, xbc, dt = torch.split(self.in_proj(u), [di, di + 2 * dx, nh], -1)
        xbc = F.silu(self.conv1d(xbc.transpose(1, 2))[..., :L].transpose(1, 2))
        x, b, c = torch.split(xbc, [dx, dx, di], -1)
        rep = nh // self.nkv
        x = x.view(Bsz, L, self.nkv, hd).repeat_interleave(rep, 2)  # (B,L,NH,HD)
        b = b.view(Bsz, L, self.nkv, self.n).repeat_interleave(rep, 2)  # (B,L,NH,N)
        c = c.view(Bsz, L, nh, self.n)
        dt = F.softplus(dt + self.dt_bias)  # (B,L,NH)
        A = -torch.exp(self.A_log)
        y = ssd_chunked(x * dt[..., None], dt * A, b, c, self.chunk) + self.D[:, None] * x
        g = (y * F.silu(z.view(Bsz, L, nh, hd)))
        g = g * torch.rsqrt(g.pow(2).mean(-1, keepdim=True) + 1e-5)  # per-head group RMSNorm
        return self.out_proj(g.reshape(Bsz, L, di) * self.norm_weight)


class Block(nn.Module):
    def __init__(self, a, ssm):
        super().__init__()
        self.input_layernorm = RMSNorm(a.d_model)
        self.mixer = (Mamba2(a.d_model, a.heads, a.kv_heads, a.head_dim, a.chunk) if ssm else
                      Attention(a.d_model, a.heads, a.kv_heads, a.head_dim, 10000.0))
        self.post_attention_layernorm = RMSNorm(a.d_model)
        self.gate_proj = nn.Linear(a.d_model, a.ffn, bias=False)
        self.up_proj = nn.Linear(a.d_model, a.ffn, bias=False)
        self.down_proj = nn.Linear(a.ffn, a.d_model, bias=False)

    def forward(self, x):
        h = x + self.mixer(self.input_layernorm(x))
        n = self.post_attention_layernorm(h)
        return h + self.down_proj(F.silu(self.gate_proj(n)) * self.up_proj(n))


class Model(nn.Module):
    def __init__(self, a, ssm_layers):
        super().__init__()
        self.embed_tokens = nn.Embedding(a.vocab, a.d_model)
        self.layers = nn.ModuleList([Block(a, i in ssm_layers) for i in range(a.layers)])
        self.norm = RMSNorm(a.d_model)
        self.lm_head = nn.Linear(a.d_model, a.vocab, bias=False)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)

    def forward(self, idx):
        x = self.embed_tokens(idx)
        for layer in self.layers:
            x = layer(x)
        return self.lm_head(self.norm(x))


def check_ssd():
    torch.manual_seed(0)
    Bsz, L, H, P, N = 2, 32, 3, 4, 5
    x = torch.randn(Bsz, L, H, P, dtype=torch.float64)
    a = -torch.rand(Bsz, L, H, dtype=torch.float64)
    b = torch.randn(Bsz, L, H, N, dtype=torch.float64)
    c = torch.randn(Bsz, L, H, N, dtype=torch.float64)
    ref = ssd_recurrent(x, a, b, c)
    worst = max((ssd_chunked(x, a, b, c, q) - ref).abs().max().item() for q in (1, 8, 32))
    # float64; both forms are sums of the same terms, so only rounding differs.
    ok = worst <= 1e-10 * ref.abs().max().item()
    print(f"ssd check: chunked vs recurrent max |diff| {worst:.3e} -> {'ok' if ok else 'FAIL'}")
    return 0 if ok else 1


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--vocab", type=int, default=4096)
    p.add_argument("--d-model", type=int, default=384)
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--heads", type=int, default=6)
    p.add_argument("--kv-heads", type=int, default=2)
    p.add_argument("--head-dim", type=int, default=64)
    p.add_argument("--ffn", type=int, default=1024)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--ssm-layers", default="", help="comma-separated layer indices, e.g. 0,2,4")
    p.add_argument("--chunk", type=int, default=64, help="SSD chunk length (divides --seq)")
    p.add_argument("--check-ssd", action="store_true")
    a = p.parse_args()
    if a.check_ssd:
        return check_ssd()
    ssm = sorted({int(s) for s in a.ssm_layers.split(",") if s.strip()})
    if any(i < 0 or i >= a.layers for i in ssm) or (ssm and a.seq % a.chunk):
        p.error("--ssm-layers must name layers < --layers, and --chunk must divide --seq")
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = Model(a, set(ssm))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1)
    data = torch.randint(0, a.vocab, (a.batch, a.seq + 1))

    def step():
        logits = model(data[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, a.vocab), data[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(a.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    dt = time.perf_counter() - t0
    tps = a.batch * a.seq * a.steps / dt
    nparam = sum(q.numel() for q in model.parameters())
    print(f"torch: {tps:.0f} tokens/s (V={a.vocab} d={a.d_model} layers={a.layers} "
          f"heads={a.heads}/{a.kv_heads} hd={a.head_dim} ffn={a.ffn} seq={a.seq} "
          f"batch={a.batch} fp32 threads={a.threads} ssm=[{','.join(map(str, ssm))}] "
          f"chunk={a.chunk} params={nparam / 1e6:.2f}M steps={a.steps} "
          f"{dt / a.steps * 1000:.0f} ms/step torch {torch.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
