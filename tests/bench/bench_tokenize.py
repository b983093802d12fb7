"""bench_tokenize.py: encoding speed of kdtrain's tokenizers against the `tokenizers`
package, single thread on both sides, on the same text (docs/performance.md,
"Tokenizers"). Prints MB/s; never a pass/fail test. kdtrain is timed end to end
(`kdtrain tokenize FILE > /dev/null`: process start, loading tokenizer.json, encoding, and
printing the ids); `tokenizers` is timed on encode_batch of the same lines (ids only, no
file loading) and on one encode of the whole text. Best of 3 runs each, as wall-clock and
as CPU time (the process's, or the child's for kdtrain): on a loaded machine CPU time is
the steadier of the two.
Run: RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false KD_BIN=build/kdtrain \\
     PYTHONPATH=.pydeps /usr/bin/python3 tests/bench/bench_tokenize.py [MiB]"""
import os
import resource

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tokenizer"))
from gen_text import make_text  # noqa: E402
from make_tokenizers import make_all  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

KD_BIN = os.environ["KD_BIN"]


def cpu():
    self, child = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return self.ru_utime + self.ru_stime + child.ru_utime + child.ru_stime


def best(f, n=3):
    """(wall seconds, CPU seconds), each the best of n runs."""
    wall, used = [], []
    for _ in range(n):
        t0, c0 = time.perf_counter(), cpu()
        f()
        wall.append(time.perf_counter() - t0)
        used.append(cpu() - c0)
    return min(wall), min(used)


def main():
    mib = float(sys.argv[1]) if len(sys.argv) > 1 else 4
    text = make_text(int(mib * (1 << 20)), seed=99)
    lines = text.split("\n")[:-1]
    size = len(text.encode("utf-8")) / 1e6
    print(f"text: {size:.2f} MB, {len(lines)} lines; RAYON_NUM_THREADS={os.environ['RAYON_NUM_THREADS']}")
    with tempfile.TemporaryDirectory() as root:
        train = make_text(1 << 20)  # the tokenizers are trained on other text
        dirs = make_all(root, train.split("\n")[:-1])
        path = os.path.join(root, "text.txt")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"load average {os.getloadavg()[0]:.1f}; MB/s as wall-clock / CPU time")
        print(f"{'tokenizer':12} {'tokenizers batch':>17} {'tokenizers whole':>17} {'kdtrain lines':>14} "
              f"{'kdtrain whole':>14} {'speedup (CPU, lines vs batch)':>30}")
        for name in ("gpt2", "llama3", "qwen2", "sp_meta", "sp_llama2"):
            d = dirs[name]
            tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
            hf_batch = best(lambda: tok.encode_batch(lines, add_special_tokens=False))
            hf_whole = best(lambda: tok.encode(text, add_special_tokens=False))

            def run(*extra):
                with open(os.devnull, "wb") as null:
                    subprocess.run([KD_BIN, "tokenize", "--tokenizer", d, "--special", *extra, path],
                                   stdout=null, check=True)
            kd_lines = best(run)
            kd_whole = best(lambda: run("--whole"))
            def rate(t):
                return f"{size / t[0]:.1f} / {size / t[1]:.1f}"
            print(f"{name:12} {rate(hf_batch):>17} {rate(hf_whole):>17} {rate(kd_lines):>14} {rate(kd_whole):>14} "
                  f"{hf_batch[1] / kd_lines[1]:29.1f}x", flush=True)


if __name__ == "__main__":
    main()
