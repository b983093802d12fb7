"""parity.py: kdtrain's tokenizers against the `tokenizers` package (docs/tokenizers.md).
Trains the variants of make_tokenizers.py on 1 MiB of varied text, then for each asserts:
identical ids per line with special tokens matched (--special) and written as text
(encode_special_tokens), identical ids for the whole text in one piece (newlines, CR
runs), identical decoded text (skipping and keeping special tokens), the decoded text of a
byte-level tokenizer equal to the input line, and the special ids of --info. Exact
equality everywhere: tokenization is discrete, there is no tolerance.
With --valgrind VALGRIND every kdtrain run goes under valgrind (an error or a leak fails)
on the first 300 lines.
Run: PYTHONPATH=$KD_PYDEPS $KD_PYTHON parity.py [--valgrind VALGRIND] (KD_BIN names kdtrain)."""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_text import make_text  # noqa: E402
from make_tokenizers import make_all  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

KD_BIN = os.environ["KD_BIN"]
FAILS = []
RUNNER = []  # a command kdtrain runs under (valgrind)


def kd(args, data):
    p = subprocess.run([*RUNNER, KD_BIN, "tokenize", *args], input=data, capture_output=True)
    if p.returncode != 0:
        sys.exit(f"FAIL: kdtrain tokenize {' '.join(args)}: exit {p.returncode}: {p.stderr.decode()}")
    return p.stdout


def ids_of(out):
    return [[int(x) for x in s.split()] for s in out.decode().split("\n")[:-1]]


def compare(name, what, lines, want, got):
    if len(want) != len(got):
        FAILS.append(f"{name} {what}: {len(got)} output lines, expected {len(want)}")
        return
    bad = [i for i in range(len(want)) if want[i] != got[i]]
    if bad:
        i = bad[0]
        k = next(j for j in range(max(len(want[i]), len(got[i]))) if want[i][j:j + 1] != got[i][j:j + 1])
        lo = max(0, k - 6)
        FAILS.append(f"{name} {what}: {len(bad)} of {len(want)} lines differ; first: line {i + 1} "
                     f"{lines[i][:300]!r}\n  from item {lo}: tokenizers {want[i][lo:k + 6]}\n"
                     f"  {' ' * len(str(lo))}             kdtrain    {got[i][lo:k + 6]}")


def check(name, d, text, lines):
    tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
    data = text.encode("utf-8")
    spec = ["--tokenizer", d]
    want = [e.ids for e in tok.encode_batch(lines, add_special_tokens=False)]
    compare(name, "encode --special", lines, want, ids_of(kd(spec + ["--special"], data)))
    tok.encode_special_tokens = True
    plain = [e.ids for e in tok.encode_batch(lines, add_special_tokens=False)]
    compare(name, "encode (specials as text)", lines, plain, ids_of(kd(spec, data)))
    tok.encode_special_tokens = False
    whole = tok.encode(text, add_special_tokens=False).ids
    compare(name, "encode --whole --special", ["(whole text)"], [whole],
            ids_of(kd(spec + ["--whole", "--special"], data)))
    id_text = ("\n".join(" ".join(map(str, ids)) for ids in want) + "\n").encode()
    for keep in (0, 1):
        dec = tok.decode_batch(want, skip_special_tokens=not keep)
        got = kd(spec + ["--decode"] + (["--special"] if keep else []), id_text).decode("utf-8").split("\n")[:-1]
        compare(name, f"decode{' --special' if keep else ''}", lines, dec, got)
        if keep and name in ("gpt2", "llama3", "llama3_merges", "qwen2"):
            compare(name, "decode round trip", lines, lines, got)
    print(f"{name}: {len(lines)} lines, {len(data)} bytes, {sum(map(len, want))} tokens: checked", flush=True)
    return want


def check_info(dirs):
    info = dict(s.split(" ", 1) for s in kd(["--tokenizer", dirs["llama3"], "--info"], b"").decode().splitlines())
    tok = Tokenizer.from_file(os.path.join(dirs["llama3"], "tokenizer.json"))
    bos, eot, end = (tok.token_to_id(s) for s in ("<|begin_of_text|>", "<|eot_id|>", "<|endoftext|>"))
    want = {"name": "llama3", "bos": str(bos), "pad": "-1", "stop": f"{eot} {end}"}
    for k, v in want.items():
        if info.get(k) != v:
            FAILS.append(f"llama3 --info {k}: {info.get(k)!r}, expected {v!r}")
    info = dict(s.split(" ", 1) for s in kd(["--tokenizer", dirs["sp_meta"], "--info"], b"").decode().splitlines())
    if (info.get("bos"), info.get("stop")) != ("1", "2"):
        FAILS.append(f"sp_meta --info: bos {info.get('bos')} stop {info.get('stop')}, expected 1 and 2 (config.json)")
    import hashlib
    with open(os.path.join(dirs["llama3"], "tokenizer.json"), "rb") as f:
        if info and hashlib.sha256(f.read()).hexdigest() != dict(
                s.split(" ", 1) for s in kd(["--tokenizer", dirs["llama3"], "--info"], b"").decode().splitlines()
        )["fingerprint"]:
            FAILS.append("llama3 --info fingerprint is not the SHA-256 of tokenizer.json")


def main():
    text = make_text(1 << 20)
    lines = text.split("\n")[:-1]
    memcheck = sys.argv[1:2] == ["--valgrind"]
    with tempfile.TemporaryDirectory() as root:
        dirs = make_all(root, lines)
        if memcheck:
            # the project's suppressions: glibc's dlopen over-reads (SSE2 strncmp) and the
            # libraries' "still reachable" globals, as for the memcheck_* tests
            supp = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sanitizers", "valgrind.supp")
            RUNNER.extend([sys.argv[2], "--quiet", "--leak-check=full", "--errors-for-leak-kinds=definite,indirect",
                           "--error-exitcode=99", f"--suppressions={supp}"])
            lines = lines[:300]  # ~50x slower: the same paths on less text
            text = "\n".join(lines) + "\n"
        got = {name: check(name, d, text, lines) for name, d in dirs.items()}
        check_info(dirs)
    # the test must exercise ignore_merges: some words encode differently without it
    differ = sum(a != b for a, b in zip(got["llama3"], got["llama3_merges"]))
    print(f"ignore_merges changes {differ} lines")
    if differ == 0:
        FAILS.append("llama3 and llama3_merges encode identically: ignore_merges is not exercised")
    if FAILS:
        sys.exit("FAIL:\n" + "\n".join(FAILS))
    print("tokenizer parity: all variants identical")


if __name__ == "__main__":
    main()
