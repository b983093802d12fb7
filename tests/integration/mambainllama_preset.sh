#!/usr/bin/env bash
# configs/mambainllama.yaml: `kdtrain check` accepts it on the synthetic demo data, and its
# settings are MambaInLlama's (mamba2_llama/ configs and train_mamba2/train_hybrid.py):
# distillation trains exactly the Mamba-2 mixer parameters (every name without "mamba"
# frozen there; checked here against the parameter names of the 25% and 50% hybrids with
# the same glob rules as kd_glob_match), 0.1 * KL batchmean + 1 * CE, Adam (0.9, 0.98), clip
# 0.1, lr 8e-5; PyTorch's default conv init; SFT lr 2e-5; DPO sigmoid beta 0.01, lr 5e-7.
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
"$KD_BIN" data synth --out data/demo --examples 200 >/dev/null
"$KD_BIN" check "$KD_SOURCE_DIR/configs/mambainllama.yaml" | tail -1
[ ! -e runs ] || { echo "FAIL: check wrote a run directory"; exit 1; }
PYTHONPATH=${KD_PYDEPS:-} "$KD_PYTHON" - "$KD_SOURCE_DIR/configs/mambainllama.yaml" <<'PY'
import fnmatch, sys
import yaml
r = yaml.safe_load(open(sys.argv[1]))
st = {s["name"]: s for s in r["stages"]}
fails = []
def want(what, got, exp):
    if got != exp:
        fails.append(f"{what}: got {got!r}, expected {exp!r}")
n_layers = r["model"]["arch"]["n_layers"]
def names(ssm):
    out = ["embed_tokens.weight", "lm_head.weight", "norm.weight"]
    for i in range(n_layers):
        out += [f"layers.{i}.input_layernorm.weight", f"layers.{i}.post_attention_layernorm.weight"]
        out += [f"layers.{i}.mlp.{p}_proj.weight" for p in ("gate", "up", "down")]
        mix = (["in_proj.weight", "conv1d.weight", "conv1d.bias", "dt_bias", "A_log", "D", "norm.weight",
                "out_proj.weight"] if i in ssm else [f"{p}_proj.weight" for p in "qkvo"])
        out += [f"layers.{i}.mixer.{m}" for m in mix]
    return out
for kd, init in (("distill_25", "init_25"), ("distill_50", "init_50")):
    s, ssm = st[kd], st[init]["hybrid"]["ssm_layers"]
    want(f"{init}.conv", st[init]["conv"], "default")
    # '*' matches any run (dots included) and '?' one character, as kd_glob_match
    trained = [n for n in names(ssm) if not any(fnmatch.fnmatchcase(n, g) for g in s["freeze"])]
    mamba = [n for n in names(ssm) if n.split(".")[0] == "layers" and int(n.split(".")[1]) in ssm
             and ".mixer." in n]
    want(f"{kd} trained parameters", trained, mamba)
    L, o = s["loss"], s["optim"]
    want(f"{kd}.loss", (L["kl"], L["ce"], L["normalize"], L["divergence"]), (0.1, 1.0, "batchmean", "forward"))
    want(f"{kd}.optim", (o["lr"], o["beta1"], o["beta2"], o["weight_decay"], o["grad_clip"], o["min_lr_ratio"]),
         (8e-5, 0.9, 0.98, 0.0, 0.1, 0.0))
want("progressive layouts", (st["init_25"]["hybrid"]["ssm_layers"], st["init_50"]["hybrid"]["ssm_layers"]),
     ([0], [0, 2]))
want("sft", ("freeze" in st["sft"], st["sft"]["optim"]["lr"]), (False, 2e-5))
want("dpo", ("freeze" in st["dpo"], st["dpo"]["loss"], st["dpo"]["optim"]["lr"]),
     (False, {"type": "sigmoid", "beta": 0.01}, 5e-7))
for f in fails:
    print("FAIL:", f)
sys.exit(1 if fails else 0)
PY
echo "mambainllama_preset: OK"
