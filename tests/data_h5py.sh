#!/usr/bin/env bash
# data_h5py.sh: the dataset format is shared with Python. (1) h5py reads what we write:
# dtypes, chunking + gzip, attributes as Python ints/strs, tokens equal to the bytes of
# the packed text with BOS/EOS around each document, offsets; (2) we read what h5py
# writes (chunked + gzip + shuffle, int64 attributes, loss mask): `data inspect` reports
# the counts, mask coverage and first ids h5py wrote, and the same unigram entropy as
# numpy to 2e-6 nats (inspect prints 6 decimals; both sum in double); (3) an h5py file
# with a bad id is rejected with the documented message naming the index.
set -u
TOOL=${KD_DATA_TOOL:-$KD_BIN}
PY=${KD_PYTHON:-/usr/bin/python3}
T=$(mktemp -d /tmp/kd_data_h5py_XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
field() { sed -n "s/^$1: //p" "$2"; }

# ---------------------------------------------------------------- (1) h5py reads ours
printf 'first para\nline two\n\nsecond \xff para\n' >"$T/t.txt"
"$TOOL" data pack --text "$T/t.txt" --out "$T/ours.h5" --eos-between >/dev/null || fail "pack"
"$PY" - "$T/ours.h5" "$T/t.txt" <<'PYEOF' || fail "h5py check of our file"
import sys, h5py, numpy as np
path, txt = sys.argv[1], open(sys.argv[2], 'rb').read()
paras = [p.strip(b'\n') for p in txt.split(b'\n\n') if p.strip(b'\n')]
want, offs = [], [0]
for p in paras:
    want += [256] + list(p) + [257]
    offs.append(len(want))
bad = []
with h5py.File(path, 'r') as f:
    t, o = f['tokens'], f['offsets']
    if t.dtype != np.uint32: bad.append(f"tokens dtype {t.dtype}")
    if o.dtype != np.uint64: bad.append(f"offsets dtype {o.dtype}")
    if t.chunks is None or t.compression != 'gzip': bad.append(f"tokens chunks={t.chunks} compression={t.compression}")
    if t[:].tolist() != want: bad.append(f"tokens {t[:].tolist()} != {want}")
    if o[:].tolist() != offs: bad.append(f"offsets {o[:].tolist()} != {offs}")
    a = dict(f.attrs)
    exp = dict(kind='tokens', tokenizer='bytes', vocab_size=259, bos_id=256, eos_id=257, pad_id=258)
    for k, v in exp.items():
        if a.get(k) != v or type(a.get(k)) not in (type(v), np.int64): bad.append(f"attr {k}={a.get(k)!r}, expected {v!r}")
    if 'loss_mask' in f: bad.append("unexpected loss_mask")
for b in bad: print("  h5py:", b, file=sys.stderr)
sys.exit(1 if bad else 0)
PYEOF

# ---------------------------------------------------------------- (2) we read h5py's
"$PY" - "$T/theirs.h5" "$T/bad.h5" >"$T/expect.txt" <<'PYEOF' || fail "h5py writer"
import sys, h5py, numpy as np
rng = np.random.default_rng(3)
n = 50000
tok = rng.zipf(1.3, n) % 259
tok = tok.astype(np.uint32)
mask = (rng.random(n) < 0.3).astype(np.uint8)
offs = np.array([0, 10, 10, 31000, n], dtype=np.uint64)
def write(path, tok):
    with h5py.File(path, 'w') as f:
        f.create_dataset('tokens', data=tok, chunks=(4096,), compression='gzip', shuffle=True)
        f.create_dataset('offsets', data=offs)
        f.create_dataset('loss_mask', data=mask, chunks=(4096,), compression='gzip', shuffle=True)
        f.attrs['kind'] = 'sft'; f.attrs['tokenizer'] = 'bytes'
        f.attrs['vocab_size'] = 259; f.attrs['bos_id'] = 256; f.attrs['eos_id'] = 257; f.attrs['pad_id'] = -1
write(sys.argv[1], tok)
p = np.bincount(tok, minlength=259) / n
p = p[p > 0]
print("entropy", repr(float(-(p * np.log(p)).sum())))
print("masked", int(mask.sum()))
print("first", " ".join(str(int(x)) for x in tok[:8]))
bad = tok.copy().astype(np.int64); bad[31337] = 300
write(sys.argv[2], bad.astype(np.uint32))
PYEOF
"$TOOL" data inspect "$T/theirs.h5" --first 8 >"$T/theirs.txt" || fail "inspect h5py file: $(cat "$T/theirs.txt")"
ent=$(awk '/^entropy/{print $2}' "$T/expect.txt")
msk=$(awk '/^masked/{print $2}' "$T/expect.txt")
first=$(sed -n 's/^first //p' "$T/expect.txt")
[ "$(field kind "$T/theirs.txt")" = sft ] || fail "kind $(field kind "$T/theirs.txt")"
[ "$(field tokens "$T/theirs.txt")" = 50000 ] || fail "tokens $(field tokens "$T/theirs.txt")"
[ "$(field docs "$T/theirs.txt")" = 4 ] || fail "docs $(field docs "$T/theirs.txt")"
[ "$(field pad_id "$T/theirs.txt")" = -1 ] || fail "pad_id $(field pad_id "$T/theirs.txt")"
[ "$(field first_ids "$T/theirs.txt")" = "$first" ] \
  || fail "first ids '$(field first_ids "$T/theirs.txt")' vs h5py '$first'"
field loss_mask "$T/theirs.txt" | grep -q "^$msk of 50000 " \
  || fail "loss_mask '$(field loss_mask "$T/theirs.txt")', h5py wrote $msk ones"
got=$(field unigram_entropy_nats "$T/theirs.txt")
awk -v a="$got" -v b="$ent" 'BEGIN{d=a-b; if(d<0)d=-d; exit !(d <= 2e-6)}' \
  || fail "unigram entropy: inspect $got vs numpy $ent (tolerance 2e-6)"

# ---------------------------------------------------------------- (3) bad id from h5py
"$TOOL" data inspect "$T/bad.h5" >/dev/null 2>"$T/err"; rc=$?
[ $rc -eq 2 ] || fail "bad id: exit $rc, expected 2"
grep -qF "$T/bad.h5: /tokens[31337] = 300 >= vocab_size 259" "$T/err" \
  || fail "bad id message: $(cat "$T/err")"

[ $fails -eq 0 ] && echo "data_h5py: all checks passed"
exit $((fails > 0))
