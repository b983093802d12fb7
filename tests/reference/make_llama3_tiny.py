#!/usr/bin/env python3
"""make_llama3_tiny.py OUT SYNTH_DIR: a tiny Llama-3-style teacher for the end-to-end test
of configs/llama3-hybrid.yaml (tests/integration/llama3_hybrid.sh), made the way a user's
real model is: with the `tokenizers` and `transformers` packages.

- OUT/tokenizer.json: a byte-level BPE with Llama 3's pre-tokenizer regex, trained on the
  text of SYNTH_DIR's chat files (`kdtrain data synth`), with Llama 3's special tokens;
  tokenizer_config.json (bos <|begin_of_text|>, eos <|eot_id|>) and generation_config.json
  (stop ids <|endoftext|> and <|eot_id|>, as Llama 3 instruct ships two).
- OUT/config.json + model.safetensors: LlamaForCausalLM with rope_scaling llama3, tied
  embeddings, GQA, saved in bf16, trained for a few hundred steps on the SFT conversations
  rendered with the llama3 chat template, so that it answers the tasks better than chance
  and distillation from it has something to transfer.
- SYNTH_DIR/eval_tasks_llama3.jsonl and mc_tasks_llama3.jsonl: the exact-match and
  multiple-choice tasks with their prompts rendered in the llama3 template (eval prepends
  BOS itself).
Prints the teacher's final training loss."""
import json
import os
import re
import sys

import torch
from transformers import LlamaConfig, LlamaForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tokenizer"))
from make_tokenizers import RE_LLAMA3, byte_level, write  # noqa: E402
from tokenizers import Regex, Tokenizer, pre_tokenizers  # noqa: E402

LLAMA3_ROPE = {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 8192}


def turn(role, content):
    return f"<|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>"


def header(role):
    return f"<|start_header_id|>{role}<|end_header_id|>\n\n"


def main(out, syn):
    convs = [json.loads(line)["messages"] for line in open(os.path.join(syn, "sft.jsonl"))]
    lines = [m["content"] for c in convs for m in c]
    split = pre_tokenizers.Split(Regex(RE_LLAMA3), behavior="isolated", invert=False)
    pre = pre_tokenizers.Sequence([split, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    j = byte_level(lines, pre, 600)
    ids = {a["content"]: a["id"] for a in j["added_tokens"]}
    write(os.path.dirname(out) or ".", os.path.basename(out), j, {
        "tokenizer_config.json": {"bos_token": "<|begin_of_text|>",
                                  "eos_token": {"content": "<|eot_id|>", "special": True}}})
    tok = Tokenizer.from_file(os.path.join(out, "tokenizer.json"))
    V = tok.get_vocab_size()

    cfg = LlamaConfig(vocab_size=V, hidden_size=64, intermediate_size=128, num_hidden_layers=4,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=131072,
                      rope_theta=500000.0, rms_norm_eps=1e-5, tie_word_embeddings=True,
                      rope_scaling=LLAMA3_ROPE, bos_token_id=ids["<|begin_of_text|>"],
                      eos_token_id=[ids["<|endoftext|>"], ids["<|eot_id|>"]])
    torch.manual_seed(0)
    m = LlamaForCausalLM(cfg)
    # the SFT conversations as one stream of llama3-rendered documents, cut into rows of T
    stream = []
    for c in convs:
        stream += tok.encode("<|begin_of_text|>" + "".join(turn(x["role"], x["content"]) for x in c),
                             add_special_tokens=False).ids
    T, B = 64, 16
    rows = torch.tensor(stream[: len(stream) // T * T]).view(-1, T)
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3, weight_decay=0.0)
    g = torch.Generator().manual_seed(0)
    for step in range(200):
        batch = rows[torch.randint(0, rows.shape[0], (B,), generator=g)]
        loss = m(batch, labels=batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(f"teacher: vocab {V}, {rows.numel()} tokens, final training loss {loss.item():.3f}")
    m.to(torch.bfloat16).save_pretrained(out, safe_serialization=True)

    for name, key in (("eval_tasks", "prompt"), ("mc_tasks", "context")):
        with open(os.path.join(syn, f"{name}_llama3.jsonl"), "w") as f:
            for line in open(os.path.join(syn, f"{name}.jsonl")):
                t = json.loads(line)
                # bytes template: <|ROLE|>\nCONTENT\n per turn, ending with <|assistant|>\n
                parts = re.split(r"<\|(system|user|assistant)\|>\n", t[key])
                assert parts[0] == "" and parts[-2:] == ["assistant", ""], t[key]
                turns = zip(parts[1:-2:2], parts[2:-2:2])
                t[key] = "".join(turn(r, c[:-1]) for r, c in turns) + header("assistant")
                f.write(json.dumps(t) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
