#!/usr/bin/env bash
# data_cli.sh: `kdtrain data` pack / inspect / synth from the command line: --help works,
# synth is deterministic (same seed -> identical bytes, other seed -> different), pack
# makes the documents the help text promises (per file, or per paragraph with
# --eos-between), and every bad invocation exits 2 with one line on stderr and leaves no
# output file and no temporary behind.
set -u
TOOL=${KD_DATA_TOOL:-$KD_BIN}
T=$(mktemp -d /tmp/kd_data_cli_XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
kd() { "$TOOL" data "$@"; }
field() { sed -n "s/^$1: //p" "$2"; }   # value of "key: value" in an inspect output

# ---------------------------------------------------------------- help
for sub in "" pack inspect synth; do
  out=$(kd $sub --help 2>&1); rc=$?
  [ $rc -eq 0 ] && grep -q "usage: kdtrain data" <<<"$out" || fail "'data $sub --help' rc=$rc: $out"
done

# ---------------------------------------------------------------- synth determinism
kd synth --out "$T/a" --seed 5 --tokens 20000 >/dev/null || fail "synth a"
kd synth --out "$T/b" --seed 5 --tokens 20000 >/dev/null || fail "synth b"
kd synth --out "$T/c" --seed 6 --tokens 20000 >/dev/null || fail "synth c"
for f in pretrain.h5 pretrain_val.h5; do
  ha=$(sha256sum <"$T/a/$f"); hb=$(sha256sum <"$T/b/$f"); hc=$(sha256sum <"$T/c/$f")
  [ "$ha" = "$hb" ] || fail "synth same seed differs for $f: $ha vs $hb"
  [ "$ha" != "$hc" ] || fail "synth different seeds give identical $f"
done
kd inspect "$T/a/pretrain.h5" >"$T/a.txt" || fail "inspect synth output"
n=$(field tokens "$T/a.txt"); h=$(field unigram_entropy_nats "$T/a.txt")
[ "${n:-0}" -ge 20000 ] && [ "${n:-0}" -lt 21000 ] || fail "synth --tokens 20000 gave $n tokens"
# byte text with ~50 symbols in use: the unigram entropy is between 2 and ln(50)=3.9 nats
awk -v h="${h:-0}" 'BEGIN{exit !(h > 2.0 && h < 3.92)}' || fail "synth unigram entropy $h nats"
[ "$(field kind "$T/a.txt")" = tokens ] || fail "synth kind: $(field kind "$T/a.txt")"
[ -z "$(ls "$T/a" | grep tmp-)" ] || fail "synth left temporaries: $(ls "$T/a")"

# ---------------------------------------------------------------- pack
printf 'hello\n' >"$T/one.txt"                                # 6 bytes
printf 'ab\ncd\n\n\n  \nsecond\n\nthird' >"$T/two.txt"        # 3 paragraphs
: >"$T/empty.txt"
kd pack --text "$T/one.txt" "$T/two.txt" "$T/empty.txt" --out "$T/files.h5" >/dev/null \
  || fail "pack per file"
kd inspect "$T/files.h5" --first 9 >"$T/files.txt" || fail "inspect pack per file"
# per file: (6+2) + (24+2) tokens, 2 documents (the empty file is skipped)
[ "$(field docs "$T/files.txt")" = 2 ] && [ "$(field tokens "$T/files.txt")" = 34 ] \
  || fail "pack per file: docs=$(field docs "$T/files.txt") tokens=$(field tokens "$T/files.txt")"
[ "$(field first_text "$T/files.txt")" = '"<bos>hello\n<eos><bos>"' ] \
  || fail "pack first_text: $(field first_text "$T/files.txt")"
[ "$(field first_ids "$T/files.txt")" = "256 104 101 108 108 111 10 257 256" ] \
  || fail "pack first_ids: $(field first_ids "$T/files.txt")"
kd pack --text "$T/two.txt" --out "$T/para.h5" --eos-between >/dev/null || fail "pack paragraphs"
kd inspect "$T/para.h5" --first 40 >"$T/para.txt" || fail "inspect pack paragraphs"
want='"<bos>ab\ncd<eos><bos>second<eos><bos>third<eos>"'
[ "$(field first_text "$T/para.txt")" = "$want" ] \
  || fail "pack --eos-between: $(field first_text "$T/para.txt"), expected $want"
[ "$(field docs "$T/para.txt")" = 3 ] || fail "pack --eos-between docs=$(field docs "$T/para.txt")"

# ---------------------------------------------------------------- bad invocations
# expect_bad NAME OUTPUT_THAT_MUST_NOT_EXIST ARGS...: exit 2, one stderr line, no output.
expect_bad() {
  local name=$1 out=$2; shift 2
  kd "$@" >/dev/null 2>"$T/err"; local rc=$?
  local lines; lines=$(wc -l <"$T/err")
  [ $rc -eq 2 ] || fail "$name: exit $rc, expected 2 ($(cat "$T/err"))"
  [ "$lines" -eq 1 ] || fail "$name: $lines stderr lines, expected 1: $(cat "$T/err")"
  [ -z "$out" ] || [ ! -e "$out" ] || fail "$name: $out was written"
  [ -z "$(ls "$T" | grep tmp-)" ] || fail "$name: temporaries left: $(ls "$T")"
}
expect_bad "pack missing text file" "$T/x.h5" pack --text "$T/one.txt" "$T/nope.txt" --out "$T/x.h5"
expect_bad "pack empty texts" "$T/x.h5" pack --text "$T/empty.txt" --out "$T/x.h5"
expect_bad "pack no --out" "" pack --text "$T/one.txt"
expect_bad "pack no --text" "$T/x.h5" pack --out "$T/x.h5"
expect_bad "pack unknown option" "$T/x.h5" pack --text "$T/one.txt" --out "$T/x.h5" --bogus
expect_bad "pack into missing dir" "$T/no/x.h5" pack --text "$T/one.txt" --out "$T/no/x.h5"
expect_bad "inspect missing file" "" inspect "$T/nope.h5"
expect_bad "inspect text file" "" inspect "$T/one.txt"
expect_bad "inspect no file" "" inspect
expect_bad "inspect bad --first" "" inspect "$T/files.h5" --first lots
expect_bad "synth no --out" "" synth --seed 3
expect_bad "synth bad --tokens" "$T/s" synth --out "$T/s" --tokens 12k
expect_bad "synth tiny --tokens" "$T/s/pretrain.h5" synth --out "$T/s" --tokens 10
expect_bad "unknown subcommand" "" frobnicate
expect_bad "no subcommand" ""

# a failed pack over an existing dataset leaves the old one intact
cp "$T/files.h5" "$T/keep.h5"
kd pack --text "$T/nope.txt" --out "$T/keep.h5" 2>/dev/null
cmp -s "$T/files.h5" "$T/keep.h5" || fail "failed pack damaged the existing $T/keep.h5"

[ $fails -eq 0 ] && echo "data_cli: all checks passed"
exit $((fails > 0))
