#!/usr/bin/env python3
"""A small pure-PyTorch loader for kdtrain's Hugging Face exports, hybrids included
(docs/hybrid.md). It proves an export is usable without kdtrain: it builds the model from
config.json (and, for a hybrid, mamba_config.json: the attention layers are listed in its
attn_layers, every other layer is Mamba-2), loads model.safetensors with a STRICT
state-dict load (every tensor used, none missing), and computes the next-token loss.

Written from the formulas (Llama decoder: RMSNorm, GQA attention with rotate-half RoPE and
the rope_scaling types of transformers' config, SwiGLU MLP; the Mamba-2 mixer is
tests/reference/mamba2_ref.py, itself written from docs/mamba2.md), in float64.

Usage: hybrid_loader.py EXPORT_DIR IDS_FILE  -> prints "loss L".
"""
import json
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import safe_open

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mamba2_ref  # noqa: E402


def rope_inv_freq(cfg, hd):
    """Inverse frequency of each rotated pair, with the rope_scaling of config.json."""
    base = cfg.get("rope_theta", 10000.0)
    inv = [base ** (-2.0 * i / hd) for i in range(hd // 2)]
    rs = cfg.get("rope_scaling") or {}
    kind = rs.get("rope_type", rs.get("type", "default"))
    if kind == "linear":  # position interpolation: every frequency / factor
        inv = [f / rs["factor"] for f in inv]
    elif kind == "llama3":  # long wavelengths / factor, short kept, a linear blend between
        old = rs["original_max_position_embeddings"]
        lo, hi, fac = rs["low_freq_factor"], rs["high_freq_factor"], rs["factor"]
        out = []
        for f in inv:
            wl = 2 * math.pi / f
            if wl < old / hi:
                out.append(f)
            elif wl > old / lo:
                out.append(f / fac)
            else:
                s = (old / wl - lo) / (hi - lo)
                out.append((1 - s) * f / fac + s * f)
        inv = out
    elif kind not in ("default", "dynamic"):  # dynamic == default up to max_position_embeddings
        raise ValueError(f"rope_scaling type {kind!r} is not handled")
    return torch.tensor(inv, dtype=torch.float64)


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight, self.eps = nn.Parameter(torch.ones(n, dtype=torch.float64)), eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def linear(i, o):
    return nn.Linear(i, o, bias=False, dtype=torch.float64)


class Attention(nn.Module):
    def __init__(self, C, nh, nkv, hd, inv_freq):
        super().__init__()
        self.nh, self.nkv, self.hd, self.inv_freq = nh, nkv, hd, inv_freq
        self.q_proj, self.k_proj = linear(C, nh * hd), linear(C, nkv * hd)
        self.v_proj, self.o_proj = linear(C, nkv * hd), linear(nh * hd, C)

    def rope(self, x):  # x (B,H,T,hd): pair (i, i+hd/2) rotates by t * inv_freq[i]
        T, h = x.shape[2], self.hd // 2
        ang = torch.arange(T, dtype=torch.float64)[:, None] * self.inv_freq[None, :]
        c, s = torch.cos(ang), torch.sin(ang)
        a, b = x[..., :h], x[..., h:]
        return torch.cat([a * c - b * s, b * c + a * s], dim=-1)

    def forward(self, x):
        B, T, _ = x.shape
        q = self.rope(self.q_proj(x).view(B, T, self.nh, self.hd).transpose(1, 2))
        k = self.rope(self.k_proj(x).view(B, T, self.nkv, self.hd).transpose(1, 2))
        v = self.v_proj(x).view(B, T, self.nkv, self.hd).transpose(1, 2)
        rep = self.nh // self.nkv
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        s = q @ k.transpose(-1, -2) / math.sqrt(self.hd)
        s = s.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), -math.inf)
        y = torch.softmax(s, dim=-1) @ v
        return self.o_proj(y.transpose(1, 2).reshape(B, T, self.nh * self.hd))


class Mamba2(nn.Module):
    """Parameters named as in the export; the computation is mamba2_ref.layer."""

    def __init__(self, C, H, nkv, P, N, W, eps):
        super().__init__()
        d_inner, d_xb = H * P, nkv * P
        conv = d_inner + 2 * d_xb
        self.dims = {"C": C, "H": H, "n_kv": nkv, "P": P, "N": N, "W": W, "eps": eps}
        self.in_proj = linear(C, 2 * d_inner + 2 * d_xb + H)
        self.conv1d = nn.Conv1d(conv, conv, W, groups=conv, dtype=torch.float64)
        self.dt_bias = nn.Parameter(torch.zeros(H, dtype=torch.float64))
        self.A_log = nn.Parameter(torch.zeros(H, dtype=torch.float64))
        self.D = nn.Parameter(torch.zeros(H, dtype=torch.float64))
        self.norm = nn.Module()
        self.norm.weight = nn.Parameter(torch.ones(d_inner, dtype=torch.float64))
        self.out_proj = linear(d_inner, C)

    def forward(self, x):
        p = {"in_proj.weight": self.in_proj.weight, "conv1d.weight": self.conv1d.weight,
             "conv1d.bias": self.conv1d.bias, "dt_bias": self.dt_bias, "A_log": self.A_log,
             "D": self.D, "norm.weight": self.norm.weight, "out_proj.weight": self.out_proj.weight}
        return mamba2_ref.layer(x, p, None, self.dims, mamba2_ref.scan_sequential)


class MLP(nn.Module):
    def __init__(self, C, Fd):
        super().__init__()
        self.gate_proj, self.up_proj, self.down_proj = linear(C, Fd), linear(C, Fd), linear(Fd, C)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, mixer_name, mixer, C, Fd, eps):
        super().__init__()
        self.input_layernorm, self.post_attention_layernorm = RMSNorm(C, eps), RMSNorm(C, eps)
        self.mixer_name = mixer_name
        setattr(self, mixer_name, mixer)
        self.mlp = MLP(C, Fd)

    def forward(self, x):
        x = x + getattr(self, self.mixer_name)(self.input_layernorm(x))
        return x + self.mlp(self.post_attention_layernorm(x))


class CausalLM(nn.Module):
    def __init__(self, cfg, mcfg):
        super().__init__()
        V, C, L = cfg["vocab_size"], cfg["hidden_size"], cfg["num_hidden_layers"]
        nh = cfg["num_attention_heads"]
        nkv = cfg.get("num_key_value_heads", nh)
        hd = cfg.get("head_dim", C // nh)
        eps, Fd = cfg["rms_norm_eps"], cfg["intermediate_size"]
        attn = set(range(L)) if mcfg is None else set(mcfg["attn_layers"])
        inv = rope_inv_freq(cfg, hd)
        self.model = nn.Module()
        self.model.embed_tokens = nn.Embedding(V, C, dtype=torch.float64)
        layers = []
        for i in range(L):
            if i in attn:
                layers.append(Layer("self_attn", Attention(C, nh, nkv, hd, inv), C, Fd, eps))
            else:
                s = mcfg["ssm_cfg"]
                assert mcfg["d_inner"] == nh * hd and mcfg["d_xb"] == nkv * hd and s["ngroups"] == nh
                m = Mamba2(C, nh, nkv, hd, s["d_state"], s.get("d_conv", 4), mcfg["rms_norm_eps"])
                layers.append(Layer("mamba", m, C, Fd, eps))
        self.model.layers = nn.ModuleList(layers)
        self.model.norm = RMSNorm(C, eps)
        self.lm_head = linear(C, V)
        if cfg.get("tie_word_embeddings"):
            self.lm_head.weight = self.model.embed_tokens.weight

    def forward(self, ids):
        x = self.model.embed_tokens(ids)
        for layer in self.model.layers:
            x = layer(x)
        return self.lm_head(self.model.norm(x))


def load(d):
    cfg = json.load(open(os.path.join(d, "config.json")))
    mpath = os.path.join(d, "mamba_config.json")
    mcfg = json.load(open(mpath)) if os.path.exists(mpath) else None
    model = CausalLM(cfg, mcfg)
    sd = {}
    with safe_open(os.path.join(d, "model.safetensors"), framework="pt") as f:
        for k in f.keys():
            sd[k] = f.get_tensor(k).to(torch.float64)
    if cfg.get("tie_word_embeddings") and "lm_head.weight" not in sd:
        sd["lm_head.weight"] = sd["model.embed_tokens.weight"]  # a tied Llama export
    model.load_state_dict(sd, strict=True)  # raises on any missing or unexpected tensor
    return model


def loss(model, ids):
    with torch.no_grad():
        logits = model(torch.tensor([ids]))
        return F.cross_entropy(logits[0, :-1], torch.tensor(ids[1:])).item()


if __name__ == "__main__":
    m = load(sys.argv[1])
    print(f"loss {loss(m, [int(t) for t in open(sys.argv[2]).read().split()]):.12g}")
