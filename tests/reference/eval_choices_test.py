#!/usr/bin/env python3
"""Multiple-choice evaluation (stages/eval_choices.c) against transformers, scored the way
lm-eval scores multiple_choice tasks, written here from lm-eval's description:

- a tiny Llama made with transformers and a byte-level BPE tokenizer trained with
  `tokenizers` (tokenizer_config.json: BOS <|begin_of_text|>), saved as an HF directory;
- items: data synth's mc_tasks.jsonl, plus items whose context ends with a space (lm-eval
  moves it to the choice), holds special tokens, or is longer; choices of several tokens;
- kdtrain runs an eval stage on the HF directory; here every choice's loglikelihood is
  sum log p(choice ids | [BOS] + context ids) with choice ids = encode(context + choice)
  [len(encode(context)):], the context's trailing whitespace moved to the choice first.
Checks: every item's log-probs (choices-<file> in the stage directory) equal the ones here
within 1e-4 relative, acc and acc_norm (by characters) in eval.json equal the ones here, and
the picks equal. Usage: eval_choices_test.py WORKDIR (env KD_BIN)."""
import json
import os
import subprocess
import sys

import torch
from transformers import LlamaConfig, LlamaForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tokenizer"))
from make_tokenizers import RE_LLAMA3, byte_level, write  # noqa: E402
from tokenizers import Regex, Tokenizer, pre_tokenizers  # noqa: E402

KD = os.environ["KD_BIN"]
fails = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        fails.append(what)


def run(*args, cwd=None):
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd)
    if p.returncode != 0:
        sys.exit(f"FAIL: {args} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p


def make_model(work, lines):
    d = os.path.join(work, "hf")
    split = pre_tokenizers.Split(Regex(RE_LLAMA3), behavior="isolated", invert=False)
    pre = pre_tokenizers.Sequence([split, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    write(work, "hf", byte_level(lines, pre, 500),
          {"tokenizer_config.json": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}})
    tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
    cfg = LlamaConfig(vocab_size=tok.get_vocab_size(), hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, rope_theta=10000.0, rms_norm_eps=1e-5,
                      tie_word_embeddings=False, max_position_embeddings=2048)
    torch.manual_seed(3)
    m = LlamaForCausalLM(cfg)
    with torch.no_grad():  # sharper than the default init, so the choices' scores differ
        for p in m.parameters():
            if p.dim() == 2:
                p.normal_(0, 0.2)
    m.save_pretrained(d, safe_serialization=True)
    return d, tok, m.eval()


def loglikelihood(m, tok, bos, context, choice):
    """lm-eval's _encode_pair, then the sum of the choice's log-probs."""
    n_space = len(context) - len(context.rstrip())
    if n_space:
        choice, context = context[-n_space:] + choice, context[:-n_space]
    ctx = tok.encode(context, add_special_tokens=False).ids
    whole = tok.encode(context + choice, add_special_tokens=False).ids
    cont = whole[len(ctx):]
    ids = [bos] + ctx + cont
    with torch.no_grad():
        lp = torch.log_softmax(m(torch.tensor([ids])).logits[0].double(), -1)
    start = 1 + len(ctx)
    return sum(lp[start - 1 + j, t].item() for j, t in enumerate(cont))


def main():
    work = sys.argv[1]
    run(KD, "data", "synth", "--out", os.path.join(work, "syn"), "--examples", "200", "--tokens", "3000")
    lines = [m["content"] for line in open(os.path.join(work, "syn", "sft.jsonl"))
             for m in json.loads(line)["messages"]]
    d, tok, m = make_model(work, lines)
    bos = tok.token_to_id("<|begin_of_text|>")
    items = [json.loads(line) for line in open(os.path.join(work, "syn", "mc_tasks.jsonl"))]
    items += [
        {"task": "space", "context": "Question: what is 2+2? Answer: ", "choices": ["4", "five", "22 or so"], "gold": 0},
        {"task": "space", "context": "The colour of the sky is", "choices": [" blue", " green", " a deep red"],
         "gold": 0},
        {"task": "special", "context": "<|start_header_id|>user<|end_header_id|>\n\nCopy this: abc<|eot_id|>"
                                       "<|start_header_id|>assistant<|end_header_id|>\n\n",
         "choices": ["abc", "acb", "bca", "cab"], "gold": 0},
        {"task": "special", "context": "Sort these digits: 3 1 2\n",
         "choices": ["1 2 3", "3 2 1", "1 3 2"], "gold": 0},
    ]
    mc = os.path.join(work, "mc.jsonl")
    with open(mc, "w") as f:
        for it in items:
            f.write(json.dumps(it) + "\n")
    recipe = os.path.join(work, "r.yaml")
    with open(recipe, "w") as f:
        f.write(f"run: {{name: mc, out_dir: {work}/run, backend: cpu}}\n"
                f"model: {{from: {{hf: {d}}}}}\n"
                f"stages:\n  - {{name: eval, kind: eval, tasks: [{mc}], batch: {{global: 4, micro: 4, seq_len: 128}}}}\n")
    run(KD, "run", recipe, "--quiet")
    got = [json.loads(line) for line in open(os.path.join(work, "run", "stages", "00-eval", "choices-mc.jsonl"))]
    res = json.load(open(os.path.join(work, "run", "stages", "00-eval", "eval.json")))
    check(len(got) == len(items), f"choices-mc.jsonl has one line per item: {len(got)} of {len(items)}")
    worst, hits, hits_n, picks = 0.0, 0, 0, 0
    for it, g in zip(items, got):
        want = [loglikelihood(m, tok, bos, it["context"], c) for c in it["choices"]]
        worst = max(worst, max(abs(a - b) / max(abs(b), 1e-9) for a, b in zip(g["logprobs"], want)))
        pred = max(range(len(want)), key=lambda k: (want[k], -k))
        norm = [w / len(c) for w, c in zip(want, it["choices"])]
        pred_n = max(range(len(norm)), key=lambda k: (norm[k], -k))
        hits += pred == it["gold"]
        hits_n += pred_n == it["gold"]
        picks += (g["pred"], g["pred_norm"]) == (pred, pred_n)
    check(worst < 1e-4, f"per-choice log-probs equal transformers' (worst relative difference {worst:.2e})")
    check(picks == len(items), f"picks (acc and acc_norm) equal on {picks} of {len(items)} items")
    acc, acc_n = hits / len(items), hits_n / len(items)
    check(abs(res["choices/all/acc"] - acc) < 1e-9 and abs(res["choices/all/acc_norm"] - acc_n) < 1e-9,
          f"eval.json choices/all acc {res['choices/all/acc']:.4f} acc_norm {res['choices/all/acc_norm']:.4f} "
          f"== {acc:.4f} {acc_n:.4f}")
    check("choices/space/acc" in res and "choices/add/acc_norm" in res, "per-task keys in eval.json")
    print(f"{len(fails)} failure(s)")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
