#!/usr/bin/env bash
# data_chat_h5py.sh: the preference format is shared with Python both ways. h5py writes
# preference files by hand (int64 tokens, fixed-length string attributes, no chunking) and
# the reader (kd_prefs_open, driven by chat_prefs_roundtrip FILE) returns their counts and
# ids; broken variants are refused with the documented one-line message naming the path:
# unequal counts, an id >= vocab_size, an empty chosen, a wrong kind, a missing group.
set -u
PROBE=${KD_PREFS_PROBE:?path of chat_prefs_roundtrip}
PY=${KD_PYTHON:-/usr/bin/python3}
T=$(mktemp -d /tmp/kd_chat_h5py_XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

"$PY" - "$T" <<'PYEOF' || fail "h5py could not write the test files"
import sys, h5py, numpy as np
d = sys.argv[1]
def write(name, parts, kind="preference", vocab=259, drop=None):
    with h5py.File(f"{d}/{name}.h5", "w") as f:
        f.attrs["kind"] = np.bytes_(kind)                  # fixed-length string
        for k, v in dict(vocab_size=vocab, bos_id=256, eos_id=257, pad_id=258).items():
            f.attrs[k] = np.int64(v)
        f.attrs["tokenizer"] = "bytes"
        for g, docs in parts.items():
            if g == drop: continue
            toks = [t for doc in docs for t in doc]
            offs = np.cumsum([0] + [len(doc) for doc in docs])
            f.create_dataset(f"{g}/tokens", data=np.array(toks, dtype=np.int64))
            f.create_dataset(f"{g}/offsets", data=offs.astype(np.int64))
good = dict(prompt=[[256, 65, 66], [256, 67]], chosen=[[1, 257], [10, 11, 12, 257]],
            rejected=[[2, 257], [13, 257]])
write("good", good)
write("counts", dict(good, rejected=[[2, 257]]))
write("vocab", dict(good, chosen=[[1, 257], [10, 300, 257]]))
write("empty", dict(good, chosen=[[1, 257], []]))
write("kind", good, kind="sft")
write("nogroup", good, drop="rejected")
PYEOF

expect() { # FILE EXPECTED-OUTPUT EXPECTED-RC
  local out rc
  out=$("$PROBE" "$T/$1.h5"); rc=$?
  [ "$rc" = "$3" ] && [ "$out" = "$2" ] || fail "$1: rc=$rc, output
  got:      $out
  expected: $2"
}
expect good "count 2 tokens 5/6/4 last_chosen 10 11 12 257" 0
expect counts "error: $T/counts.h5: /rejected/offsets has 2 entries, expected 3 (as /prompt/offsets)" 2
expect vocab "error: $T/vocab.h5: /chosen/tokens[3] = 300, expected 0..258" 2
expect empty "error: $T/empty.h5: /chosen/offsets[2] = 2, expected > the previous offset (completions are non-empty)" 2
expect kind "error: $T/kind.h5: attribute kind: expected \"preference\", found \"sft\"" 2
expect nogroup "error: $T/nogroup.h5: /rejected/tokens is missing, expected a 1-D integer dataset" 2

[ $fails -eq 0 ] && echo "data_chat_h5py: all checks passed"
exit $((fails > 0))
