#!/usr/bin/env python3
"""Hugging Face fidelity of kdtrain's import and export, against transformers 4.44.

A tiny Llama-3-style model made with transformers (rope_scaling llama3, tied embeddings,
GQA, saved as bf16 safetensors) and variants of it (linear, dynamic, rope_type default):
  1. kdtrain's loss on held-out ids equals transformers' within 1e-5 relative, and the
     greedy tokens are equal (kdtrain side: tests/unit/hf_tool.c, the library the CLI uses);
  2. `kdtrain export` of the HF directory (re-export) loads in LlamaForCausalLM with the
     same loss; tokenizer files and ids come from --tokenizer; generation through
     transformers stops at the export's EOS (generation_config.json, several stop ids);
  3. a hybrid (one Mamba-2 layer) exported by kdtrain: mamba_config.json has every field
     of MambaInLlama's MambaConfig and only Mamba2 arguments in ssm_cfg; config.json has
     _name_or_path; AutoModelForCausalLM and LlamaForCausalLM refuse it loudly; the
     pure-PyTorch reference loader (hybrid_loader.py) loads it strictly with equal loss;
  4. generate runs an HF directory; configs kdtrain would compute differently exit 2
     naming the key.
Usage: hf_llama3_test.py WORKDIR   (env KD_BIN, KD_HF_TOOL)
"""
import json
import os
import subprocess
import sys

import torch
import torch.nn.functional as F
from transformers import (AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM,
                          PreTrainedTokenizerFast)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hybrid_loader  # noqa: E402

KD, TOOL = os.environ["KD_BIN"], os.environ["KD_HF_TOOL"]
REL = 1e-5  # fp32 vs fp32 (transformers) or float64 (reference): a few 1e-7 expected
V, T, N_PROMPT, N_NEW = 97, 48, 8, 8
LLAMA3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 8192}
fails = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        fails.append(what)


def run(*args, expect=0):
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    if p.returncode != expect:
        print(f"command {args} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p


def make_model(d, rope_scaling, seed=0):
    cfg = LlamaConfig(vocab_size=V, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=131072,
                      rope_theta=500000.0, rms_norm_eps=1e-5, tie_word_embeddings=True,
                      rope_scaling=rope_scaling, bos_token_id=1, eos_token_id=2)
    torch.manual_seed(seed)
    m = LlamaForCausalLM(cfg)
    with torch.no_grad():  # larger weights than the default init: a sharper distribution
        for p in m.parameters():
            if p.dim() == 2:
                p.normal_(0, 0.15)
    m.to(torch.bfloat16).save_pretrained(d, safe_serialization=True)
    return LlamaForCausalLM.from_pretrained(d, torch_dtype=torch.float32).eval()


def hf_loss_greedy(m, ids):
    with torch.no_grad():
        logits = m(torch.tensor([ids])).logits[0]
        loss = F.cross_entropy(logits[:-1], torch.tensor(ids[1:])).item()
        seq = list(ids[:N_PROMPT])
        for _ in range(N_NEW):  # greedy by hand: no EOS, no generation_config involved
            seq.append(int(m(torch.tensor([seq])).logits[0, -1].argmax()))
    return loss, seq[N_PROMPT:]


def kd_eval(d, ids_file):
    p = run(TOOL, "eval", d, ids_file, N_PROMPT, N_NEW)
    lines = dict(line.split(" ", 1) for line in p.stdout.strip().splitlines())
    return float(lines["loss"]), [int(t) for t in lines["greedy"].split()]


def rel(a, b):
    return abs(a - b) / abs(b)


def fidelity(work, ids_file, ids):
    """Step 1 for every accepted rope_scaling; returns the llama3 model and its greedy."""
    keep = None
    for name, rs in [("llama3", LLAMA3), ("linear", {"rope_type": "linear", "factor": 4.0}),
                     ("dynamic", {"type": "dynamic", "factor": 2.0}), ("default", {"rope_type": "default"})]:
        d = os.path.join(work, "hf_" + name)
        m = make_model(d, rs)
        hl, hg = hf_loss_greedy(m, ids)
        kl, kg = kd_eval(d, ids_file)
        check(rel(kl, hl) < REL, f"{name}: kdtrain loss {kl:.9f} == transformers {hl:.9f} (rel {rel(kl, hl):.2e})")
        check(kg == hg, f"{name}: greedy tokens equal: kdtrain {kg} transformers {hg}")
        if name == "llama3":
            keep = (d, m, hl, hg)
    return keep


def make_tokenizer(d):
    from tokenizers import Tokenizer, models, pre_tokenizers
    vocab = {"<pad>": 0, "<bos>": 1, "<eos>": 2, "<eot>": 3}
    vocab.update({f"w{i}": i for i in range(4, V)})
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eot>",
                                   pad_token="<pad>")
    fast.save_pretrained(d)


def export_roundtrip(work, src, hf_loss, greedy, ids):
    tokdir = os.path.join(work, "tok")
    make_tokenizer(tokdir)
    out = os.path.join(work, "export_tok")
    run(KD, "export", src, "--out", out, "--tokenizer", tokdir)
    files = sorted(f for f in os.listdir(out))
    check(all(f in files for f in ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                   "generation_config.json", "config.json", "model.safetensors"]),
          f"export --tokenizer writes the tokenizer files and generation_config.json: {files}")
    cfg = json.load(open(os.path.join(out, "config.json")))
    check((cfg.get("bos_token_id"), cfg.get("eos_token_id"), cfg.get("pad_token_id")) == (1, 3, 0),
          f"config.json ids from the tokenizer: bos 1 eos 3 pad 0, found {cfg.get('bos_token_id')} "
          f"{cfg.get('eos_token_id')} {cfg.get('pad_token_id')}")
    check(cfg.get("rope_scaling") == LLAMA3, f"config.json keeps rope_scaling llama3: {cfg.get('rope_scaling')}")
    m = LlamaForCausalLM.from_pretrained(out, torch_dtype=torch.float32).eval()
    el, _ = hf_loss_greedy(m, ids)
    check(rel(el, hf_loss) < 1e-6, f"exported Transformer in LlamaForCausalLM: loss {el:.9f} == {hf_loss:.9f}")
    # stop ids: the third greedy token (first occurrence) and an id never generated
    k = next(i for i in range(2, N_NEW) if greedy[i] not in greedy[:i])
    stop, other = greedy[k], next(t for t in range(4, V) if t not in greedy)
    out2 = os.path.join(work, "export_eos")
    run(KD, "export", src, "--out", out2, "--eos-id", f"{other},{stop}")
    gc = json.load(open(os.path.join(out2, "generation_config.json")))
    check(gc.get("eos_token_id") == [other, stop], f"generation_config.json eos_token_id list: {gc}")
    m2 = AutoModelForCausalLM.from_pretrained(out2, torch_dtype=torch.float32).eval()
    gen = m2.generate(torch.tensor([ids[:N_PROMPT]]), do_sample=False, max_new_tokens=N_NEW)[0].tolist()
    check(gen[N_PROMPT:] == greedy[:k + 1],
          f"transformers generation stops at the exported EOS {stop}: {gen[N_PROMPT:]} vs {greedy[:k + 1]}")
    return tokdir


MAMBA_CONFIG_FIELDS = {"d_model", "ssm_cfg", "rms_norm_eps", "vocab_size", "d_inner", "d_xb",
                       "intermediate_size", "hidden_act", "n_layer", "attn_layers"}
MAMBA2_ARGS = {"d_state", "d_conv", "conv_init", "expand", "headdim", "d_ssm", "ngroups", "A_init_range",
               "D_has_hdim", "rmsnorm", "norm_before_gate", "dt_min", "dt_max", "dt_init_floor", "dt_limit",
               "repeat_kv_before_conv", "bias", "conv_bias", "chunk_size", "use_mem_eff_path"}


def refuses(fn, what):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - any loud failure is what we want
        check(True, f"{what} refuses the hybrid: {type(e).__name__}: {str(e).splitlines()[0][:100]}")
        return
    check(False, f"{what} loaded the hybrid silently")


def hybrid(work, src, tokdir, ids_file, ids):
    raw = os.path.join(work, "hyb_raw")
    run(TOOL, "hybrid", src, raw, 7, 1)
    out = os.path.join(work, "hybrid")
    run(KD, "export", raw, "--out", out, "--base", src, "--tokenizer", tokdir)
    mc = json.load(open(os.path.join(out, "mamba_config.json")))
    check(set(mc) == MAMBA_CONFIG_FIELDS, f"mamba_config.json has exactly MambaConfig's fields: {sorted(mc)}")
    check(set(mc["ssm_cfg"]) <= MAMBA2_ARGS, f"ssm_cfg holds only Mamba2 arguments: {sorted(mc['ssm_cfg'])}")
    check(mc["attn_layers"] == [0] and mc["n_layer"] == 2, f"attn_layers [0] of 2: {mc['attn_layers']}")
    cfg = json.load(open(os.path.join(out, "config.json")))
    check(cfg.get("_name_or_path") == src, "config.json has _name_or_path (--base) for MambaInLlama's wrapper")
    refuses(lambda: AutoModelForCausalLM.from_pretrained(out), "AutoModelForCausalLM")
    refuses(lambda: LlamaForCausalLM.from_pretrained(out), "LlamaForCausalLM")
    kl, _ = kd_eval(out, ids_file)
    rl = hybrid_loader.loss(hybrid_loader.load(out), ids)
    check(rel(kl, rl) < REL, f"hybrid: reference loader (strict) loss {rl:.9f} == kdtrain {kl:.9f}")
    # the export ships the test's word-level tokenizer.json, which kdtrain does not read: generate
    # says so, and runs without a tokenizer (raw ids) when told
    p = run(KD, "generate", out, "--prompt", "AB", "--greedy", "--max-new-tokens", "3", "--quiet", expect=2)
    check(p.returncode == 2 and "the tokenizer the model records" in p.stderr,
          f"generate refuses the export's unreadable tokenizer.json, naming it: {p.stderr.strip()[:160]}")
    p = run(KD, "generate", out, "--tokenizer", "none", "--prompt", "AB", "--greedy", "--max-new-tokens", "3",
            "--quiet")
    check(p.returncode == 0 and "=== 0:" in p.stdout, "generate runs an HF directory (the hybrid export)")


REFUSED = [("mlp_bias", {"mlp_bias": True}), ("attention_bias", {"attention_bias": True}),
           ("model_type", {"model_type": "qwen2"}), ("model_type", {"model_type": "mistral", "sliding_window": 4096}),
           ("sliding_window", {"sliding_window": 16, "use_sliding_window": True}),
           ("architectures", {"architectures": ["Qwen2ForCausalLM"]}),
           ("partial_rotary_factor", {"partial_rotary_factor": 0.5}), ("hidden_act", {"hidden_act": "gelu"}),
           ("head_dim", {"head_dim": 32}), ("rope_scaling.rope_type", {"rope_scaling": {"rope_type": "yarn", "factor": 4.0}}),
           ("max_position_embeddings", {"rope_scaling": {"rope_type": "dynamic", "factor": 2.0},
                                        "max_position_embeddings": None}),
           # dynamic NTK is plain RoPE only up to max_position_embeddings: longer is refused
           ("max_position_embeddings = 16", {"rope_scaling": {"rope_type": "dynamic", "factor": 2.0},
                                             "max_position_embeddings": 16})]


def refusals(work, src):
    base = json.load(open(os.path.join(src, "config.json")))
    for i, (key, change) in enumerate(REFUSED):
        d = os.path.join(work, f"bad{i}")
        os.makedirs(d)
        cfg = dict(base, **change)
        json.dump({k: v for k, v in cfg.items() if v is not None}, open(os.path.join(d, "config.json"), "w"))
        os.symlink(os.path.join(src, "model.safetensors"), os.path.join(d, "model.safetensors"))
        p = run(KD, "generate", d, "--prompt", "AB", expect=2)
        check(p.returncode == 2 and key in p.stderr, f"refused with exit 2 naming {key}: {p.stderr.strip()[:150]}")


def main():
    work = sys.argv[1]
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(4, V, (T,), generator=g).tolist()
    ids_file = os.path.join(work, "ids.txt")
    open(ids_file, "w").write(" ".join(map(str, ids)))
    src, _, hl, greedy = fidelity(work, ids_file, ids)
    tokdir = export_roundtrip(work, src, hl, greedy, ids)
    hybrid(work, src, tokdir, ids_file, ids)
    refusals(work, src)
    print(f"{len(fails)} failure(s)")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
