#!/usr/bin/python3
"""Independent PyTorch (float64, autograd) reference of kdtrain's distillation and
preference losses, written from the published formulas (docs/losses.md): used by
tests/unit/test_losses_ref.c, which writes the inputs and compares the outputs.

usage: losses_ref.py IN.h5 OUT.h5

IN holds one group per case; its integer attribute `kind` says what to compute:
  0 full: s, t (N,V) float32, w (N); attrs div (0 fwd KL, 1 rev KL, 2 JSD), beta, tau, dscale
  1 topk: s (N,V), ids (N,K) int32, lp (N,K) float32, w (N); attrs mode (0 tail, 1 renorm),
          tau, dscale
  2 logp: x (N,V), targets (N) int32, g (N)
  3 pref: logp_c, logp_r, ref_c, ref_r (P) float64, n_c, n_r (P) int32; attrs type
          (0 sigmoid, 1 ipo, 2 hinge, 3 simpo, 4 orpo), beta, eps, gamma, rpo_alpha (RPO)
OUT gets, per group: loss and grad (float64); pref also dlogp_c, dlogp_r, reward_c,
reward_r.
"""
import math
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)


def kl(log_p, log_q):
    """Row sums of KL(p || q) given log-probabilities (torch's kl_div, log targets)."""
    return F.kl_div(log_q, log_p, reduction="none", log_target=True).sum(-1)


def full_case(g):
    s = torch.tensor(g["s"][...], dtype=torch.float64, requires_grad=True)
    t = torch.tensor(g["t"][...], dtype=torch.float64)
    w = torch.tensor(g["w"][...], dtype=torch.float64)
    div, beta, tau = int(g.attrs["div"]), float(g.attrs["beta"]), float(g.attrs["tau"])
    ls = F.log_softmax(s / tau, dim=-1)
    lt = F.log_softmax(t / tau, dim=-1)
    if div == 0 or (div == 2 and beta == 0.0):
        d = kl(lt, ls)  # forward KL(p_t || p_s)
    elif div == 1 or (div == 2 and beta == 1.0):
        d = kl(ls, lt)  # reverse KL(p_s || p_t)
    else:  # generalized JSD with the mixture in log space (TRL's GKD)
        lm = torch.logsumexp(torch.stack([lt + math.log(beta), ls + math.log(1.0 - beta)]), dim=0)
        d = beta * kl(lt, lm) + (1.0 - beta) * kl(ls, lm)
    loss = w * tau * tau * d
    (float(g.attrs["dscale"]) * loss.sum()).backward()
    return loss, s.grad


def topk_case(g):
    s = torch.tensor(g["s"][...], dtype=torch.float64, requires_grad=True)
    ids = torch.tensor(g["ids"][...].astype(np.int64))
    lp = torch.tensor(g["lp"][...], dtype=torch.float64)
    w = torch.tensor(g["w"][...], dtype=torch.float64)
    mode, tau = int(g.attrs["mode"]), float(g.attrs["tau"])
    if mode == 0:
        # student: full-vocab tempered log-softmax, gathered at the ids, plus the log of
        # the mass of every other id
        ls = F.log_softmax(s / tau, dim=-1)
        top = torch.zeros_like(ls, dtype=torch.bool).scatter(1, ids, True)
        ls_tail = torch.logsumexp(ls.masked_fill(top, -math.inf), dim=-1, keepdim=True)
        ls_all = torch.cat([ls.gather(1, ids), ls_tail], dim=1)
        # teacher: the K cached log-masses plus log(1 - their mass), tempered as K+1 logits
        lt_tail = torch.log(-torch.expm1(torch.logsumexp(lp, dim=-1, keepdim=True)))
        lq = F.log_softmax(torch.cat([lp, lt_tail], dim=1) / tau, dim=-1)
    else:
        ls_all = F.log_softmax(s.gather(1, ids) / tau, dim=-1)
        lq = F.log_softmax(lp / tau, dim=-1)
    loss = w * tau * tau * kl(lq, ls_all)
    (float(g.attrs["dscale"]) * loss.sum()).backward()
    return loss, s.grad


def logp_case(g):
    x = torch.tensor(g["x"][...], dtype=torch.float64, requires_grad=True)
    tg = torch.tensor(g["targets"][...].astype(np.int64))
    gr = torch.tensor(g["g"][...], dtype=torch.float64)
    valid = tg >= 0
    lp = F.log_softmax(x, dim=-1).gather(1, tg.clamp(min=0)[:, None])[:, 0]
    lp = torch.where(valid, lp, torch.zeros_like(lp))
    (gr * lp).sum().backward()
    return lp, x.grad


def pref_case(g):
    pc = torch.tensor(g["logp_c"][...], requires_grad=True)
    pr = torch.tensor(g["logp_r"][...], requires_grad=True)
    rc = torch.tensor(g["ref_c"][...])
    rr = torch.tensor(g["ref_r"][...])
    nc = torch.tensor(g["n_c"][...].astype(np.float64))
    nr = torch.tensor(g["n_r"][...].astype(np.float64))
    kind, beta = int(g.attrs["type"]), float(g.attrs["beta"])
    eps, gamma = float(g.attrs["eps"]), float(g.attrs["gamma"])
    if kind in (0, 2):  # sigmoid (DPO), hinge: sums over completion tokens
        logits = (pc - rc) - (pr - rr)
        if kind == 0:
            loss = -(1 - eps) * F.logsigmoid(beta * logits) - eps * F.logsigmoid(-beta * logits)
        else:
            loss = torch.relu(1 - beta * logits)
        rew_c, rew_r = beta * (pc - rc), beta * (pr - rr)
    elif kind == 1:  # ipo: every log-prob averaged over its completion tokens
        ac, ar = (pc - rc) / nc, (pr - rr) / nr
        loss = ((ac - ar) - 1 / (2 * beta)) ** 2
        rew_c, rew_r = beta * ac, beta * ar
    elif kind == 3:  # simpo: reference free, length normalised, target margin gamma
        mc, mr = pc / nc, pr / nr
        z = beta * (mc - mr) - gamma
        loss = -(1 - eps) * F.logsigmoid(z) - eps * F.logsigmoid(-z)
        rew_c, rew_r = beta * mc, beta * mr
    else:  # orpo: NLL of chosen (per-token mean) + lambda * odds-ratio term
        mc, mr = pc / nc, pr / nr
        log_odds = (mc - mr) - (torch.log1p(-torch.exp(mc)) - torch.log1p(-torch.exp(mr)))
        loss = -mc - beta * F.logsigmoid(log_odds)
        rew_c, rew_r = beta * mc, beta * mr
    # RPO (TRL rpo_alpha): + alpha * NLL of the chosen completion, its per-token mean here
    alpha = float(g.attrs["rpo_alpha"]) if "rpo_alpha" in g.attrs else 0.0
    loss = loss + alpha * (-pc / nc)
    loss.sum().backward()
    return loss, pc.grad, pr.grad, rew_c.detach(), rew_r.detach()


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: losses_ref.py IN.h5 OUT.h5")
    with h5py.File(sys.argv[1], "r") as fin, h5py.File(sys.argv[2], "w") as fout:
        for name, g in fin.items():
            kind = ("full", "topk", "logp", "pref")[int(g.attrs["kind"])]
            o = fout.create_group(name)
            if kind == "pref":
                loss, dc, dr, rew_c, rew_r = pref_case(g)
                for k, v in (("dlogp_c", dc), ("dlogp_r", dr), ("reward_c", rew_c),
                             ("reward_r", rew_r)):
                    o[k] = v.numpy()
            else:
                fn = {"full": full_case, "topk": topk_case, "logp": logp_case}[kind]
                loss, grad = fn(g)
                o["grad"] = grad.numpy()
            o["loss"] = loss.detach().numpy()


if __name__ == "__main__":
    main()
