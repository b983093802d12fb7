#!/usr/bin/env bash
# errors.sh: `kdtrain tokenize` on hand-written tokenizer.json files: a tiny BPE encodes and
# decodes as worked out by hand (merges by rank, added tokens, --special, byte fallback
# and unk), the bytes tokenizer works, and every bad input exits 2 with one line naming
# the file and the JSON key (missing file, malformed JSON, unknown model type, unknown
# regex, unsupported normalizer, merge outside the vocabulary, inconsistent added-token
# id, lstrip, a special token missing from the vocabulary, a bad id to decode).
set -u
T=$(mktemp -d /tmp/kd_tok_err_XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
tok() { "$KD_BIN" tokenize "$@"; }

# expect OUT ARGS...: stdin from $IN, stdout must equal OUT and the exit status 0.
expect() {
  local want=$1 got rc; shift
  got=$(printf '%b' "$IN" | tok "$@" 2>&1); rc=$?
  [ $rc -eq 0 ] && [ "$got" = "$want" ] || fail "tokenize $* <<< '$IN': rc=$rc
  got:      $got
  expected: $want"
}

# expect_error DIR 'SUBSTRING' [ARGS]: exit 2 and one stderr line holding SUBSTRING.
expect_error() {
  local dir=$1 want=$2 err rc; shift 2
  err=$(printf 'x\n' | tok --tokenizer "$dir" "$@" 2>&1 >/dev/null); rc=$?
  [ $rc -eq 2 ] || fail "$dir ($want): exit $rc, expected 2 ($err)"
  [ "$(wc -l <<<"$err")" -eq 1 ] && [[ "$err" == *"$want"* ]] || fail "$dir: stderr
  got:      $err
  expected: a line with: $want"
}

# mk NAME JSON: writes $T/NAME/tokenizer.json.
mk() { mkdir -p "$T/$1"; printf '%s' "$2" >"$T/$1/tokenizer.json"; }

# A BPE over characters: a b c, merges (b c) before (a b): "abc" -> a + bc, not ab + c.
VOCAB='"<unk>":0,"a":1,"b":2,"c":3,"ab":4,"bc":5,"<0x7A>":6'
ADDED='[{"id":7,"content":"<|eot|>","special":true,"normalized":false},{"id":8,"content":"<x>","special":false}]'
mk good "{\"added_tokens\":$ADDED,\"model\":{\"type\":\"BPE\",\"unk_token\":\"<unk>\",\"fuse_unk\":true,\"byte_fallback\":true,\"vocab\":{$VOCAB},\"merges\":[\"b c\",\"a b\"]}}"
IN='abc\nab<|eot|>c<x>\nzzqq\n'
expect $'1 5\n4 0 3 8\n6 6 0' --tokenizer "$T/good"
expect $'1 5\n4 7 3 8\n6 6 0' --tokenizer "$T/good" --special
expect $'1 5\n4 7 3 8\n6 6 0' --tokenizer "$T/good/tokenizer.json" --special
IN='4 7 3\n1 5\n'
expect $'ab c\na bc' --tokenizer "$T/good" --decode
expect $'ab <|eot|> c\na bc' --tokenizer "$T/good" --decode --special
IN='hi\n'
expect '104 105' --tokenizer bytes
expect $'104 105 10' --tokenizer bytes --whole
got=$(tok --tokenizer "$T/good" --info | sed -n 's/^name //p')
[ "$got" = good ] || fail "--info name: '$got', expected 'good'"

# ---------------------------------------------------------------- bad input
expect_error "$T/none" "$T/none: cannot read: No such file or directory (expected a Hugging Face tokenizer.json"
mk badjson '{"model": '
expect_error "$T/badjson" "tokenizer.json: line 1"
mk nomodel '{"added_tokens": []}'
expect_error "$T/nomodel" "tokenizer.json: model: missing"
mk wordpiece '{"model":{"type":"WordPiece","vocab":{}}}'
expect_error "$T/wordpiece" "tokenizer.json: model.type: 'WordPiece' is not supported"
mk regex "{\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\w+\"},\"behavior\":\"Isolated\",\"invert\":false},\"model\":{\"type\":\"BPE\",\"vocab\":{$VOCAB},\"merges\":[]}}"
expect_error "$T/regex" "pre_tokenizer.pattern.Regex: unknown pattern '\\w+'"
mk nfkc "{\"normalizer\":{\"type\":\"NFKC\"},\"model\":{\"type\":\"BPE\",\"vocab\":{$VOCAB},\"merges\":[]}}"
expect_error "$T/nfkc" "normalizer.type: 'NFKC' is not supported"
mk merge "{\"model\":{\"type\":\"BPE\",\"vocab\":{$VOCAB},\"merges\":[\"c a\"]}}"
expect_error "$T/merge" "model.merges[0]"
mk addedid "{\"added_tokens\":[{\"id\":3,\"content\":\"<s>\",\"special\":true}],\"model\":{\"type\":\"BPE\",\"vocab\":{$VOCAB},\"merges\":[]}}"
expect_error "$T/addedid" "added_tokens[0].id: 3 for '<s>', but the tokenizers package would give it 7"
mk lstrip "{\"added_tokens\":[{\"id\":7,\"content\":\"<m>\",\"lstrip\":true}],\"model\":{\"type\":\"BPE\",\"vocab\":{$VOCAB},\"merges\":[]}}"
expect_error "$T/lstrip" "added_tokens[0].lstrip: true is not supported"
cp -r "$T/good" "$T/cfg" && printf '{"eos_token": "</s>"}' >"$T/cfg/tokenizer_config.json"
expect_error "$T/cfg" "$T/cfg/tokenizer_config.json: eos_token: '</s>' is not a token"
err=$(printf '1 99\n' | tok --tokenizer "$T/good" --decode 2>&1 >/dev/null); rc=$?
[ $rc -eq 2 ] && [[ "$err" == *"stdin:1: '99': expected an id in [0, 9)"* ]] || fail "decode bad id: rc=$rc $err"
err=$(tok 2>&1); rc=$?
[ $rc -eq 2 ] && [[ "$err" == *"--tokenizer SPEC is required"* ]] || fail "no --tokenizer: rc=$rc $err"

[ $fails -eq 0 ] || { echo "$fails failure(s)" >&2; exit 1; }
echo "tokenizer errors: all cases hold"
