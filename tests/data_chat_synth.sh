#!/usr/bin/env bash
# data_chat_synth.sh: the chat task suite of `kdtrain data synth`. (1) Deterministic: the
# same seed gives byte-identical files, another seed different ones. (2) h5py reads every
# new file, and an independent Python rendering of the documented "bytes" template,
# applied to the JSONL sources synth wrote, reproduces sft.h5 (ids and loss mask) and
# prefs.h5 exactly. (3) The tasks are measurable: every answer in sft/prefs/eval is
# recomputed from its question, every rejected answer is wrong, prompts.h5 holds prompts
# only (mask 0, ending in the assistant header), and no held-out question (sft_val,
# prefs_val, eval_tasks) occurs in a training file. (4) Sizes follow --examples.
set -u
TOOL=${KD_DATA_TOOL:-$KD_BIN}
PY=${KD_PYTHON:-/usr/bin/python3}
T=$(mktemp -d /tmp/kd_chat_synth_XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
kd() { "$TOOL" data "$@"; }

NEW="sft.h5 sft_val.h5 prefs.h5 prefs_val.h5 prompts.h5 eval_tasks.jsonl sft.jsonl sft_val.jsonl prefs.jsonl prefs_val.jsonl"
t0=$(date +%s.%N)
kd synth --out "$T/a" --seed 7 --tokens 5000 --examples 600 >/dev/null || fail "synth a"
t1=$(date +%s.%N)
kd synth --out "$T/b" --seed 7 --tokens 5000 --examples 600 >/dev/null || fail "synth b"
kd synth --out "$T/c" --seed 8 --tokens 5000 --examples 600 >/dev/null || fail "synth c"
for f in $NEW; do
  [ -f "$T/a/$f" ] || { fail "synth did not write $f"; continue; }
  ha=$(sha256sum <"$T/a/$f"); hb=$(sha256sum <"$T/b/$f"); hc=$(sha256sum <"$T/c/$f")
  [ "$ha" = "$hb" ] || fail "same seed, different $f"
  [ "$ha" != "$hc" ] || fail "different seeds, identical $f"
done
[ -z "$(ls "$T/a" | grep tmp-)" ] || fail "synth left temporaries: $(ls "$T/a")"
# the default size must stay quick (the brief: under ~5 s); 600 examples take far less
awk -v a="$t0" -v b="$t1" 'BEGIN{exit !(b - a < 5)}' || fail "synth took $(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}') s"

"$PY" - "$T/a" 600 <<'PYEOF' || fail "python checks of the synth chat files"
import sys, json, re, h5py, numpy as np
d, E = sys.argv[1], int(sys.argv[2])
BOS, EOS = 256, 257
HDR = {"system": "<|system|>\n", "user": "<|user|>\n", "assistant": "<|assistant|>\n"}
FTR = {"system": "\n", "user": "\n", "assistant": ""}
bad = []

def b(s): return list(s.encode())

def render(msgs, gen=False):  # the documented bytes template, written independently
    ids, mask = [BOS], [0]
    for m in msgs:
        r, c = m["role"], m["content"]
        ids += b(HDR[r]); mask += [0] * len(HDR[r])
        if r == "assistant":
            t = b(c + FTR[r]) + [EOS]; ids += t; mask += [1] * len(t)
        else:
            t = b(c + FTR[r]); ids += t; mask += [0] * len(t)
    if gen:
        ids += b(HDR["assistant"]); mask += [0] * len(HDR["assistant"])
    return ids, mask

def answer(q):  # recompute the exact answer of a task question
    m = re.fullmatch(r"What is (\d+)([+-])(\d+)\?", q)
    if m:
        x, y = int(m[1]), int(m[3]); return str(x + y if m[2] == "+" else x - y)
    m = re.fullmatch(r"Copy this: ([a-z]+)", q)
    if m: return m[1]
    m = re.fullmatch(r"Reverse this: ([a-z]+)", q)
    if m: return m[1][::-1]
    m = re.fullmatch(r"Sort these digits: ([0-9 ]+)", q)
    if m: return " ".join(sorted(m[1].split()))
    m = re.fullmatch(r"((?:[a-z]=\d, )*[a-z]=\d)\. What is ([a-z])\?", q)
    if m: return dict(kv.split("=") for kv in m[1].split(", "))[m[2]]
    raise ValueError("unknown task question: " + q)

def check_attrs(f, kind, name):
    a = dict(f.attrs)
    for k, v in dict(kind=kind, tokenizer="bytes", vocab_size=259, bos_id=256, eos_id=257, pad_id=258).items():
        if a.get(k) != v: bad.append(f"{name}: attr {k}={a.get(k)!r}, expected {v!r}")

def lines(name): return [json.loads(l) for l in open(f"{d}/{name}")]

questions = {}  # file -> set of user questions
for split, n in (("sft", E), ("sft_val", E // 10)):
    src = lines(split + ".jsonl")
    if len(src) != n: bad.append(f"{split}.jsonl: {len(src)} lines, expected {n}")
    qs = questions.setdefault(split, set())
    with h5py.File(f"{d}/{split}.h5", "r") as f:
        check_attrs(f, "sft", split)
        t, o, m = f["tokens"][:], f["offsets"][:], f["loss_mask"][:]
        if len(o) != len(src) + 1: bad.append(f"{split}.h5: {len(o)-1} docs, expected {len(src)}")
        for i, conv in enumerate(src[: len(o) - 1]):
            msgs = conv["messages"]
            for u, a in zip(msgs, msgs[1:]):
                if u["role"] == "user":
                    qs.add(u["content"])
                    if a["role"] != "assistant" or answer(u["content"]) != a["content"]:
                        bad.append(f"{split}.jsonl:{i+1}: answer {a['content']!r} to {u['content']!r} is wrong")
            ids, mask = render(msgs)
            got_i, got_m = t[o[i]:o[i+1]].tolist(), m[o[i]:o[i+1]].tolist()
            if got_i != ids or got_m != mask:
                bad.append(f"{split}.h5 doc {i}: ids/mask differ from the Python rendering "
                           f"({len(got_i)} vs {len(ids)} tokens)")
                break

for split, n in (("prefs", E // 2), ("prefs_val", E // 10)):
    src = lines(split + ".jsonl")
    if len(src) != n: bad.append(f"{split}.jsonl: {len(src)} lines, expected {n}")
    qs = questions.setdefault(split, set())
    with h5py.File(f"{d}/{split}.h5", "r") as f:
        check_attrs(f, "preference", split)
        g = {k: (f[k]["tokens"][:].tolist(), f[k]["offsets"][:].tolist()) for k in ("prompt", "chosen", "rejected")}
        for k, (t, o) in g.items():
            if len(o) != len(src) + 1: bad.append(f"{split}.h5 /{k}: {len(o)-1} docs, expected {len(src)}")
        for i, ex in enumerate(src):
            p = ex["prompt"]
            msgs = [{"role": "user", "content": p}] if isinstance(p, str) else p
            q = msgs[-1]["content"]; qs.add(q)
            comp = {k: ex[k] if isinstance(ex[k], str) else ex[k][0]["content"] for k in ("chosen", "rejected")}
            if comp["chosen"] != answer(q): bad.append(f"{split}.jsonl:{i+1}: chosen {comp['chosen']!r} is not the answer to {q!r}")
            if comp["rejected"] == answer(q): bad.append(f"{split}.jsonl:{i+1}: rejected {comp['rejected']!r} is the right answer")
            want = {"prompt": render(msgs, gen=True)[0], "chosen": b(comp["chosen"]) + [EOS], "rejected": b(comp["rejected"]) + [EOS]}
            for k, (t, o) in g.items():
                if t[o[i]:o[i+1]] != want[k]:
                    bad.append(f"{split}.h5 example {i} /{k}: {t[o[i]:o[i+1]]} != {want[k]}")

with h5py.File(f"{d}/prompts.h5", "r") as f:
    check_attrs(f, "sft", "prompts")
    t, o, m = f["tokens"][:], f["offsets"][:], f["loss_mask"][:]
    if len(o) - 1 != E // 2: bad.append(f"prompts.h5: {len(o)-1} docs, expected {E//2}")
    if m.any(): bad.append(f"prompts.h5: {int(m.sum())} mask ones, expected none")
    qs = questions.setdefault("prompts", set())
    tail = b(HDR["assistant"])
    for i in range(len(o) - 1):
        doc = t[o[i]:o[i+1]].tolist()
        if doc[0] != BOS or doc[-len(tail):] != tail: bad.append(f"prompts.h5 doc {i} does not run BOS ... assistant header"); break
        qs.add(bytes(doc[1:]).decode().split(HDR["user"])[1][: -len(FTR["user"]) - len(tail)])

ev = lines("eval_tasks.jsonl")
if len(ev) != E // 10: bad.append(f"eval_tasks.jsonl: {len(ev)} lines, expected {E//10}")
tasks = set()
for i, e in enumerate(ev):
    tasks.add(e["task"])
    q = e["prompt"].split(HDR["user"])[1][: -len(FTR["user"]) - len(HDR["assistant"])]
    if not e["prompt"].endswith(HDR["assistant"]) or answer(q) != e["answer"]:
        bad.append(f"eval_tasks.jsonl:{i+1}: answer {e['answer']!r} to {q!r} is wrong")
    questions.setdefault("eval", set()).add(q)
if tasks != {"add", "sub", "copy", "reverse", "sort", "kv"}: bad.append(f"eval tasks {sorted(tasks)}")

train = questions["sft"] | questions["prefs"] | questions["prompts"]
for held in ("sft_val", "prefs_val", "eval"):
    leak = questions[held] & train
    if leak: bad.append(f"{held}: {len(leak)} questions also in training files, e.g. {sorted(leak)[:3]}")
for msg in bad[:20]: print("  " + msg, file=sys.stderr)
sys.exit(1 if bad else 0)
PYEOF

[ $fails -eq 0 ] && echo "data_chat_synth: all checks passed"
exit $((fails > 0))
