#!/usr/bin/env python3
"""llama_ref.py: independent float64 PyTorch reference for kdtrain's Llama model.

Written from the published Llama architecture (pre-norm RMSNorm, RoPE in the Hugging Face
rotate_half convention, grouped-query attention, SwiGLU MLP), not from kdtrain's C code, so
that it can check it.

  llama_ref.py IN.h5 OUT.h5   forward + backward; see the task layout below
  llama_ref.py --selftest     prove the reference itself: gradients vs finite differences,
                              forward vs a plain numpy loop, packing and RoPE invariances

IN.h5:  /config attrs vocab_size d_model n_layers n_heads n_kv_heads head_dim ffn_dim
        rope_theta norm_eps tie_embeddings; /params/<name> float32; /tokens int32 (B,T+1);
        optional /weights float32 (B,T), /positions int32 (B,T), /seg int32 (B,T).
OUT.h5: /logits (B,T,V) f64, /loss scalar f64, /grads/<name> f64 (same names and shapes),
        /grad_embed_out (B,T,C) f64 = d loss / d (embedding lookup output).
Loss = sum(w * CE) / sum(w) over all B*T targets.
"""
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import torch

CONFIG_INT = ["vocab_size", "d_model", "n_layers", "n_heads", "n_kv_heads", "head_dim", "ffn_dim",
              "tie_embeddings"]
CONFIG_FLOAT = ["rope_theta", "norm_eps"]


class InputError(Exception):
    pass


# ----------------------------------------------------------------------------- layout

def param_shapes(cfg):
    """Expected name -> shape for a config (the project's parameter names)."""
    V, C, NH, NKV, HD, F = (cfg[k] for k in ["vocab_size", "d_model", "n_heads", "n_kv_heads",
                                             "head_dim", "ffn_dim"])
    shapes = {"embed_tokens.weight": (V, C)}
    for i in range(cfg["n_layers"]):
        p = f"layers.{i}."
        shapes[p + "input_layernorm.weight"] = (C,)
        shapes[p + "mixer.q_proj.weight"] = (NH * HD, C)
        shapes[p + "mixer.k_proj.weight"] = (NKV * HD, C)
        shapes[p + "mixer.v_proj.weight"] = (NKV * HD, C)
        shapes[p + "mixer.o_proj.weight"] = (C, NH * HD)
        shapes[p + "post_attention_layernorm.weight"] = (C,)
        shapes[p + "mlp.gate_proj.weight"] = (F, C)
        shapes[p + "mlp.up_proj.weight"] = (F, C)
        shapes[p + "mlp.down_proj.weight"] = (C, F)
    shapes["norm.weight"] = (C,)
    if not cfg["tie_embeddings"]:
        shapes["lm_head.weight"] = (V, C)
    return shapes


def read_input(path):
    """Read and validate IN.h5; returns (cfg, params as float64 numpy, tokens, w, pos, seg)."""
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise InputError(f"{path}: expected an HDF5 file, found unreadable ({e})")
    with f:
        if "config" not in f:
            raise InputError(f"{path}: expected group /config, found none")
        attrs = f["config"].attrs
        cfg = {}
        for k in CONFIG_INT + CONFIG_FLOAT:
            if k not in attrs:
                raise InputError(f"{path}: /config: expected attribute '{k}', found none")
            v = np.asarray(attrs[k]).reshape(-1)
            if v.size != 1:
                raise InputError(f"{path}: /config.{k}: expected a scalar, found shape {v.shape}")
            v = v[0]
            if k in CONFIG_INT:
                if float(v) != int(v):
                    raise InputError(f"{path}: /config.{k}: expected an integer, found {v}")
                cfg[k] = int(v)
            else:
                cfg[k] = float(v)
        for k in CONFIG_INT[:-1]:
            if cfg[k] <= 0:
                raise InputError(f"{path}: /config.{k}: expected > 0, found {cfg[k]}")
        if cfg["tie_embeddings"] not in (0, 1):
            raise InputError(f"{path}: /config.tie_embeddings: expected 0 or 1, found "
                             f"{cfg['tie_embeddings']}")
        if cfg["n_heads"] % cfg["n_kv_heads"]:
            raise InputError(f"{path}: /config: expected n_heads divisible by n_kv_heads, found "
                             f"{cfg['n_heads']} and {cfg['n_kv_heads']}")
        if cfg["head_dim"] % 2:
            raise InputError(f"{path}: /config.head_dim: expected even (RoPE pairs), found "
                             f"{cfg['head_dim']}")
        if cfg["rope_theta"] <= 0 or cfg["norm_eps"] < 0:
            raise InputError(f"{path}: /config: expected rope_theta > 0 and norm_eps >= 0, found "
                             f"{cfg['rope_theta']} and {cfg['norm_eps']}")
        params = {}
        for name, shape in param_shapes(cfg).items():
            key = "params/" + name
            if key not in f:
                raise InputError(f"{path}: expected dataset /{key}, found none")
            a = f[key][()]
            if a.shape != shape:
                raise InputError(f"{path}: /{key}: expected shape {shape}, found {a.shape}")
            params[name] = np.asarray(a, dtype=np.float64)
        if "tokens" not in f:
            raise InputError(f"{path}: expected dataset /tokens, found none")
        tok = np.asarray(f["tokens"][()])
        if tok.ndim != 2 or tok.shape[1] < 2 or tok.shape[0] < 1:
            raise InputError(f"{path}: /tokens: expected shape (B, T+1) with T >= 1, found "
                             f"{tok.shape}")
        if not np.issubdtype(tok.dtype, np.integer):
            raise InputError(f"{path}: /tokens: expected integers, found {tok.dtype}")
        if tok.min() < 0 or tok.max() >= cfg["vocab_size"]:
            raise InputError(f"{path}: /tokens: expected ids in [0, {cfg['vocab_size']}), found "
                             f"[{tok.min()}, {tok.max()}]")
        B, T = tok.shape[0], tok.shape[1] - 1

        def optional(name, default, integer):
            if name not in f:
                return default
            a = np.asarray(f[name][()])
            if a.shape != (B, T):
                raise InputError(f"{path}: /{name}: expected shape {(B, T)}, found {a.shape}")
            if integer and not np.issubdtype(a.dtype, np.integer):
                raise InputError(f"{path}: /{name}: expected integers, found {a.dtype}")
            return a

        w = optional("weights", np.ones((B, T)), False).astype(np.float64)
        pos = optional("positions", np.tile(np.arange(T), (B, 1)), True).astype(np.int64)
        seg = optional("seg", np.zeros((B, T)), True).astype(np.int64)
        if not np.all(np.isfinite(w)) or w.min() < 0 or w.sum() <= 0:
            raise InputError(f"{path}: /weights: expected finite, >= 0 and not all zero, found "
                             f"min {w.min()} sum {w.sum()}")
        if pos.min() < 0:
            raise InputError(f"{path}: /positions: expected >= 0, found {pos.min()}")
    return cfg, params, tok.astype(np.int64), w, pos, seg


# ----------------------------------------------------------------------------- model

def rmsnorm(x, w, eps):
    # x is (..., C), w is (C)
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


def rope(x, pos, theta):
    # x is (B,H,T,HD), pos is (B,T); dims i and i+HD/2 rotate together by pos*theta^(-2i/HD)
    HD = x.shape[-1]
    inv_freq = theta ** (-torch.arange(0, HD, 2, dtype=torch.float64) / HD)  # (HD/2)
    ang = pos.to(torch.float64)[..., None] * inv_freq  # (B,T,HD/2)
    ang = torch.cat([ang, ang], dim=-1)[:, None]  # (B,1,T,HD)
    return x * torch.cos(ang) + rotate_half(x) * torch.sin(ang)


def attention(x, p, pre, cfg, pos, mask):
    # x is (B,T,C); mask is (B,1,T,T) bool, True where a query may attend a key
    B, T, _ = x.shape
    NH, NKV, HD = cfg["n_heads"], cfg["n_kv_heads"], cfg["head_dim"]
    q = (x @ p[pre + "q_proj.weight"].T).view(B, T, NH, HD).transpose(1, 2)  # (B,NH,T,HD)
    k = (x @ p[pre + "k_proj.weight"].T).view(B, T, NKV, HD).transpose(1, 2)  # (B,NKV,T,HD)
    v = (x @ p[pre + "v_proj.weight"].T).view(B, T, NKV, HD).transpose(1, 2)
    q, k = rope(q, pos, cfg["rope_theta"]), rope(k, pos, cfg["rope_theta"])
    rep = NH // NKV  # query head h reads kv head h // rep
    k = k.repeat_interleave(rep, dim=1)
    v = v.repeat_interleave(rep, dim=1)
    s = (q @ k.transpose(-1, -2)) / (HD ** 0.5)  # (B,NH,T,T)
    s = s.masked_fill(~mask, float("-inf"))
    y = torch.softmax(s, dim=-1) @ v  # (B,NH,T,HD)
    y = y.transpose(1, 2).reshape(B, T, NH * HD)
    return y @ p[pre + "o_proj.weight"].T


def forward(p, cfg, inputs, pos, seg, x0=None):
    """p: name -> float64 tensor. Returns (logits (B,T,V), x0 (B,T,C)). When x0 is given it
    replaces the embedding lookup (used to differentiate with respect to it)."""
    T = inputs.shape[1]
    if x0 is None:
        x0 = p["embed_tokens.weight"][inputs]  # (B,T,C)
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    mask = (causal[None] & (seg[:, :, None] == seg[:, None, :]))[:, None]  # (B,1,T,T)
    eps = cfg["norm_eps"]
    x = x0
    for i in range(cfg["n_layers"]):
        pre = f"layers.{i}."
        h = x + attention(rmsnorm(x, p[pre + "input_layernorm.weight"], eps), p, pre + "mixer.",
                          cfg, pos, mask)
        n = rmsnorm(h, p[pre + "post_attention_layernorm.weight"], eps)
        g = torch.nn.functional.silu(n @ p[pre + "mlp.gate_proj.weight"].T)
        x = h + (g * (n @ p[pre + "mlp.up_proj.weight"].T)) @ p[pre + "mlp.down_proj.weight"].T
    head = p["embed_tokens.weight"] if cfg["tie_embeddings"] else p["lm_head.weight"]
    return rmsnorm(x, p["norm.weight"], eps) @ head.T, x0


def weighted_ce(logits, targets, w):
    # logits (B,T,V), targets (B,T), w (B,T): sum(w * CE) / sum(w)
    lp = torch.log_softmax(logits, dim=-1)
    ce = -lp.gather(-1, targets[..., None])[..., 0]
    return (w * ce).sum() / w.sum()


def run(in_path, out_path):
    cfg, params, tok, w, pos, seg = read_input(in_path)
    p = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()}
    inputs, targets = torch.from_numpy(tok[:, :-1]), torch.from_numpy(tok[:, 1:])
    pos_t, seg_t, w_t = torch.from_numpy(pos), torch.from_numpy(seg), torch.from_numpy(w)
    logits, x0 = forward(p, cfg, inputs, pos_t, seg_t)
    x0.retain_grad()
    loss = weighted_ce(logits, targets, w_t)
    loss.backward()
    tmp = out_path + ".tmp"
    with h5py.File(tmp, "w") as f:
        f["logits"] = logits.detach().numpy()
        f["loss"] = np.float64(loss.item())
        for k, v in p.items():
            f["grads/" + k] = v.grad.numpy()
        f["grad_embed_out"] = x0.grad.numpy()
    os.replace(tmp, out_path)
    B, T = inputs.shape
    print(f"llama_ref: loss {loss.item():.10f} B={B} T={T} V={cfg['vocab_size']} "
          f"layers={cfg['n_layers']} -> {out_path}")


# ----------------------------------------------------------------------------- self-test

def write_input(path, cfg, params, tok, w=None, pos=None, seg=None):
    with h5py.File(path, "w") as f:
        g = f.create_group("config")
        for k in CONFIG_INT:
            g.attrs[k] = np.int64(cfg[k])
        for k in CONFIG_FLOAT:
            g.attrs[k] = np.float64(cfg[k])
        for k, v in params.items():
            f["params/" + k] = v.astype(np.float32)
        f["tokens"] = tok.astype(np.int32)
        for name, a, dt in [("weights", w, np.float32), ("positions", pos, np.int32),
                            ("seg", seg, np.int32)]:
            if a is not None:
                f[name] = a.astype(dt)


def numpy_forward(cfg, P, inputs, pos, seg):
    """A second, deliberately different forward: numpy, explicit loops over batch, token and
    head, RoPE as complex multiplication of (x_i, x_{i+HD/2}) pairs. Returns logits."""
    B, T = inputs.shape
    NH, NKV, HD, eps = cfg["n_heads"], cfg["n_kv_heads"], cfg["head_dim"], cfg["norm_eps"]
    half = HD // 2
    freq = np.array([cfg["rope_theta"] ** (-2.0 * i / HD) for i in range(half)])

    def norm(v, wt):
        return v / np.sqrt(np.mean(v * v) + eps) * wt

    def rot(v, t):  # v (HD), position t
        z = (v[:half] + 1j * v[half:]) * np.exp(1j * t * freq)
        return np.concatenate([z.real, z.imag])

    out = np.zeros((B, T, cfg["vocab_size"]))
    for b in range(B):
        x = P["embed_tokens.weight"][inputs[b]].copy()  # (T,C)
        for i in range(cfg["n_layers"]):
            pre = f"layers.{i}."
            xn = np.stack([norm(x[t], P[pre + "input_layernorm.weight"]) for t in range(T)])
            q = xn @ P[pre + "mixer.q_proj.weight"].T
            k = xn @ P[pre + "mixer.k_proj.weight"].T
            v = xn @ P[pre + "mixer.v_proj.weight"].T
            att = np.zeros((T, NH * HD))
            for h in range(NH):
                g = h // (NH // NKV)
                for t in range(T):
                    qt = rot(q[t, h * HD:(h + 1) * HD], pos[b, t])
                    keys = [s for s in range(t + 1) if seg[b, s] == seg[b, t]]
                    sc = np.array([qt @ rot(k[s, g * HD:(g + 1) * HD], pos[b, s]) for s in keys])
                    sc = np.exp((sc - sc.max()) / np.sqrt(HD))
                    sc /= sc.sum()
                    att[t, h * HD:(h + 1) * HD] = sum(a * v[s, g * HD:(g + 1) * HD]
                                                      for a, s in zip(sc, keys))
            hres = x + att @ P[pre + "mixer.o_proj.weight"].T
            n = np.stack([norm(hres[t], P[pre + "post_attention_layernorm.weight"])
                          for t in range(T)])
            gt = n @ P[pre + "mlp.gate_proj.weight"].T
            up = n @ P[pre + "mlp.up_proj.weight"].T
            x = hres + (gt / (1 + np.exp(-gt)) * up) @ P[pre + "mlp.down_proj.weight"].T
        head = P["embed_tokens.weight"] if cfg["tie_embeddings"] else P["lm_head.weight"]
        out[b] = np.stack([norm(x[t], P["norm.weight"]) for t in range(T)]) @ head.T
    return out


def selftest():
    rng = np.random.default_rng(1234)
    failures = []

    def check(ok, msg):
        if not ok:
            failures.append(msg)
            print("FAIL " + msg, file=sys.stderr)

    tmpdir = tempfile.mkdtemp(prefix="llama_ref_")
    for tie in (0, 1):
        cfg = dict(vocab_size=11, d_model=8, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=4,
                   ffn_dim=12, rope_theta=100.0, norm_eps=1e-5, tie_embeddings=tie)
        # float32-representable weights, so the file round trip is exact
        params = {k: (rng.standard_normal(s) * (0.5 if len(s) == 2 else 0.2) + (len(s) == 1))
                  .astype(np.float32).astype(np.float64) for k, s in param_shapes(cfg).items()}
        B, T = 2, 6
        tok = rng.integers(0, cfg["vocab_size"], size=(B, T + 1))
        w = rng.uniform(0.0, 2.0, size=(B, T)).astype(np.float32).astype(np.float64)
        pos = np.array([[0, 1, 2, 0, 1, 2], [3, 4, 5, 6, 7, 8]])
        seg = np.array([[0, 0, 0, 1, 1, 1], [0, 0, 0, 0, 0, 0]])
        inp, outp = os.path.join(tmpdir, f"in{tie}.h5"), os.path.join(tmpdir, f"out{tie}.h5")
        write_input(inp, cfg, params, tok, w, pos, seg)
        # Run through the command line, the way the C tests will.
        r = subprocess.run([sys.executable, os.path.abspath(__file__), inp, outp],
                           capture_output=True, text=True)
        check(r.returncode == 0 and r.stdout.count("\n") == 1,
              f"tie={tie}: CLI rc {r.returncode}, stdout {r.stdout!r}, stderr {r.stderr!r}")
        if r.returncode:
            continue
        with h5py.File(outp, "r") as f:
            logits = f["logits"][()]
            loss = float(f["loss"][()])
            grads = {k: f["grads/" + k][()] for k in params}
            gx0 = f["grad_embed_out"][()]
        check(set(grads) == set(params), f"tie={tie}: grad names differ")

        # (1) Forward vs the numpy loop. Both float64; differences are rounding only, so 1e-10
        # relative to the logit scale leaves 4+ orders of margin over accumulated error.
        ref = numpy_forward(cfg, params, tok[:, :-1], pos, seg)
        err = np.abs(logits - ref).max()
        check(err <= 1e-10 * max(1.0, np.abs(ref).max()), f"tie={tie}: logits vs numpy loop "
              f"max |diff| {err:.3e} (scale {np.abs(ref).max():.3e})")
        lp = ref - ref.max(-1, keepdims=True)
        lp = lp - np.log(np.exp(lp).sum(-1, keepdims=True))
        ce = -np.take_along_axis(lp, tok[:, 1:, None], -1)[..., 0]
        ref_loss = (w * ce).sum() / w.sum()
        check(abs(loss - ref_loss) <= 1e-10 * abs(ref_loss),
              f"tie={tie}: loss {loss!r} vs numpy {ref_loss!r}")

        # (2) Gradients vs central finite differences on every parameter element and every
        # embedding-output element. Step 1e-5 in float64: truncation ~h^2*f''' ~ 1e-10,
        # rounding ~1e-16/h ~ 1e-11; tolerance 1e-7 abs + 1e-6 rel leaves a wide margin
        # while a wrong formula is off by O(|grad|) ~ 1e-2..1.
        cfg_t = dict(cfg)
        inputs_t, targets_t = torch.from_numpy(tok[:, :-1]), torch.from_numpy(tok[:, 1:])
        pos_t, seg_t, w_t = torch.from_numpy(pos), torch.from_numpy(seg), torch.from_numpy(w)
        base = {k: torch.tensor(v) for k, v in params.items()}

        def loss_of(pmap, x0=None):
            with torch.no_grad():
                lg, _ = forward(pmap, cfg_t, inputs_t, pos_t, seg_t, x0)
                return weighted_ce(lg, targets_t, w_t).item()

        h = 1e-5
        worst = (0.0, "")
        for name, val in base.items():
            flat = val.view(-1)
            fd = np.zeros(flat.numel())
            for j in range(flat.numel()):
                old = flat[j].item()
                flat[j] = old + h
                lp_ = loss_of(base)
                flat[j] = old - h
                lm_ = loss_of(base)
                flat[j] = old
                fd[j] = (lp_ - lm_) / (2 * h)
            g = grads[name].reshape(-1)
            d = np.abs(g - fd) - (1e-7 + 1e-6 * np.abs(fd))
            if d.max() > worst[0]:
                j = int(d.argmax())
                worst = (d.max(), f"{name}[{j}]: analytic {g[j]:.10g} fd {fd[j]:.10g}")
        with torch.no_grad():
            x0 = base["embed_tokens.weight"][inputs_t].clone()
        fx = x0.view(-1)
        fd = np.zeros(fx.numel())
        for j in range(fx.numel()):
            old = fx[j].item()
            fx[j] = old + h
            lp_ = loss_of(base, x0)
            fx[j] = old - h
            lm_ = loss_of(base, x0)
            fx[j] = old
            fd[j] = (lp_ - lm_) / (2 * h)
        d = np.abs(gx0.reshape(-1) - fd) - (1e-7 + 1e-6 * np.abs(fd))
        if d.max() > worst[0]:
            j = int(d.argmax())
            worst = (d.max(), f"grad_embed_out[{j}]: analytic {gx0.reshape(-1)[j]:.10g} "
                     f"fd {fd[j]:.10g}")
        check(worst[0] <= 0, f"tie={tie}: gradient vs finite differences: {worst[1]}")
        check(all(np.abs(g).max() > 0 for g in grads.values()), f"tie={tie}: a zero gradient")

        # (3) Packing: document 2 of row 0 (seg 1, positions restarting at 0) must give the
        # same logits as that document alone in its own row. Tolerance: rounding only.
        solo = numpy_forward(cfg, params, tok[:1, 3:6], np.array([[0, 1, 2]]),
                             np.zeros((1, 3), int))
        err = np.abs(logits[0, 3:6] - solo[0]).max()
        check(err <= 1e-10 * max(1.0, np.abs(solo).max()),
              f"tie={tie}: packed document differs from the same document alone by {err:.3e}")
        # (4) RoPE is relative: shifting all positions of a row by 5 leaves logits unchanged.
        p2 = {k: torch.tensor(v) for k, v in params.items()}
        with torch.no_grad():
            lg2, _ = forward(p2, cfg, inputs_t, pos_t + 5, seg_t)
        err = np.abs(lg2.numpy() - logits).max()
        check(err <= 1e-10 * max(1.0, np.abs(logits).max()),
              f"tie={tie}: shifting positions changed logits by {err:.3e}")

    # (5) Malformed input: a missing parameter must exit non-zero with a message naming it.
    cfg["tie_embeddings"] = 0
    params = {k: np.zeros(s) for k, s in param_shapes(cfg).items()}
    del params["layers.1.mlp.up_proj.weight"]
    bad = os.path.join(tmpdir, "bad.h5")
    write_input(bad, cfg, params, np.zeros((1, 3), int))
    r = subprocess.run([sys.executable, os.path.abspath(__file__), bad,
                        os.path.join(tmpdir, "o.h5")], capture_output=True, text=True)
    check(r.returncode == 2 and "layers.1.mlp.up_proj.weight" in r.stderr,
          f"malformed input: rc {r.returncode}, stderr {r.stderr!r}")

    for fn in os.listdir(tmpdir):
        os.remove(os.path.join(tmpdir, fn))
    os.rmdir(tmpdir)
    if failures:
        print(f"llama_ref selftest: {len(failures)} failure(s)", file=sys.stderr)
        return 1
    print("llama_ref selftest: ok (forward vs numpy loop, gradients vs finite differences, "
          "packing, RoPE shift, malformed input)")
    return 0


def main(argv):
    torch.set_num_threads(1)
    if argv[1:] == ["--selftest"]:
        return selftest()
    if len(argv) != 3:
        print("usage: llama_ref.py IN.h5 OUT.h5 | --selftest", file=sys.stderr)
        return 2
    try:
        run(argv[1], argv[2])
    except InputError as e:
        print(f"llama_ref: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
