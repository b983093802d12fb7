#!/usr/bin/env bash
# data_chat_errors.sh: `kdtrain data chat` and `data prefs` from the command line: --help
# works; every bad input (malformed JSON, missing keys, unknown role, empty completion, no
# assistant turn, a prompt that leaves no room for the completion, an empty or missing
# file, an unknown template) exits 2 with exactly one documented line "FILE:LINE: ..." on
# stderr, leaves an existing output untouched and no temporary behind; the summary line
# counts truncations exactly; --prompts writes prompt sets (reply dropped, mask 0, cut from
# the left); a YAML template file works end to end.
set -u
TOOL=${KD_DATA_TOOL:-$KD_BIN}
T=$(mktemp -d /tmp/kd_chat_err_XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
kd() { "$TOOL" data "$@"; }
field() { sed -n "s/^$1: //p" "$2"; }
F=$T/in.jsonl

for sub in chat prefs; do
  out=$(kd $sub --help 2>&1); rc=$?
  [ $rc -eq 0 ] && grep -q "usage: kdtrain data $sub" <<<"$out" || fail "'data $sub --help' rc=$rc: $out"
done

# expect_error SUB 'EXPECTED STDERR' [extra args]: input is $F, output $T/out.h5, which
# holds "previous" before the run and must still hold it after.
expect_error() {
  local sub=$1 want=$2; shift 2
  printf previous >"$T/out.h5"
  local err rc
  err=$(kd "$sub" --jsonl "$F" --out "$T/out.h5" "$@" 2>&1 >/dev/null); rc=$?
  [ $rc -eq 2 ] || fail "$sub ($want): exit $rc, expected 2"
  [ "$err" = "kdtrain: $want" ] || fail "$sub: stderr
  got:      $err
  expected: kdtrain: $want"
  [ "$(cat "$T/out.h5")" = previous ] || fail "$sub ($want): existing output was modified"
  local extra
  extra=$(ls "$T" | grep -v -e '^in.jsonl$' -e '^out.h5$' -e '^t.yaml$')
  [ -z "$extra" ] || fail "$sub ($want): files left behind: $extra"
}

# ---------------------------------------------------------------- chat
GOOD='{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}]}'
printf '%s\n\n{"messages": [}\n' "$GOOD" >"$F"
expect_error chat "$F:3:15: expected a value (object, array, string, number, true, false, null), found '}'"
echo '{"msgs": []}' >"$F"
expect_error chat "$F:1: expected a key \"messages\", found none"
echo '[1]' >"$F"
expect_error chat "$F:1: expected an object {\"messages\": [...]}, found array"
printf '%s\n{"messages":[{"content":"hi"}]}\n' "$GOOD" >"$F"
expect_error chat "$F:2: messages[0].role: expected a string, found no \"role\" key"
echo '{"messages":[{"role":"user"}]}' >"$F"
expect_error chat "$F:1: messages[0].content: expected a string, found no \"content\" key"
echo '{"messages":[{"role":"bot","content":"hi"}]}' >"$F"
expect_error chat "$F:1: messages[0].role: expected one of system|user|assistant, found \"bot\""
echo '{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":""}]}' >"$F"
expect_error chat "$F:1: messages[1].content: expected a non-empty assistant reply, found \"\""
echo '{"messages":[{"role":"system","content":"s"},{"role":"user","content":"hi"}]}' >"$F"
expect_error chat "$F:1: messages: expected at least one assistant turn, found none"
# BOS + "<|user|>\nhello\n" + "<|assistant|>\n" = 30 tokens; BOS and the 14-token header
# are never cut, so with --max-len 15 nothing of the reply would remain
echo '{"messages":[{"role":"user","content":"hello"},{"role":"assistant","content":"x"}]}' >"$F"
expect_error chat "$F:1: expected a prompt shorter than --max-len 15 so that some of the completion remains, found a prompt of 15 tokens after truncation" --max-len 15
: >"$F"
expect_error chat "$F:1: expected one JSON object per line, found an empty file"
printf '\n  \n' >"$F"
expect_error chat "$F:1: expected one JSON object per line, found an empty file"
echo "$GOOD" >"$F"
expect_error chat "nosuch: expected a built-in template (bytes|llama3|chatml|mistral) or a readable YAML file, found neither: No such file or directory" --template nosuch
rm -f "$F"
expect_error chat "$F: cannot read JSONL file: No such file or directory"
expect_error chat "data chat: --max-len expects an integer 0..2^30, found -3 (see kdtrain data chat --help)" --max-len -3

# ---------------------------------------------------------------- prefs
echo '{"prompt": "hi", "chosen": "a"}' >"$F"
expect_error prefs "$F:1: expected a key \"rejected\", found none"
echo '{"prompt": "hi", "chosen": "", "rejected": "b"}' >"$F"
expect_error prefs "$F:1: chosen: expected a non-empty completion, found \"\""
echo '{"prompt": "hi", "chosen": "a", "rejected": [{"role":"assistant","content":""}]}' >"$F"
expect_error prefs "$F:1: rejected: expected a non-empty completion, found \"\""
echo '{"prompt": [{"role":"user","content":"q"},{"role":"assistant","content":"a"}], "chosen": "a", "rejected": "b"}' >"$F"
expect_error prefs "$F:1: prompt[1].role: expected the prompt to end with a user turn, found \"assistant\""
echo '{"prompt": [{"role":"human","content":"q"}], "chosen": "a", "rejected": "b"}' >"$F"
expect_error prefs "$F:1: prompt[0].role: expected one of system|user|assistant, found \"human\""
echo '{"prompt": "hi", "chosen": 3, "rejected": "b"}' >"$F"
expect_error prefs "$F:1: chosen: expected a string or a messages array, found number"
printf '{"prompt": "hi", "chosen": "a", "rejected": "b"}\n{"prompt": "hi" "chosen"}\n' >"$F"
expect_error prefs "$F:2:17: expected ',' or '}' in an object, found '\"'"
# prompt = 1 + 9 + 25 + 1 + 14 = 50 tokens, cut to --max-prompt-len 30 >= --max-len 20
echo '{"prompt": "hello world, this is longer", "chosen": "a", "rejected": "b"}' >"$F"
expect_error prefs "$F:1: prompt: expected fewer than --max-len 20 tokens so that some of the completion remains, found 30 after truncation" --max-len 20 --max-prompt-len 30
expect_error prefs "$F:1: prompt: expected --max-prompt-len >= 15 (BOS and the assistant header), found 10" --max-len 40 --max-prompt-len 10
: >"$F"
expect_error prefs "$F:1: expected one JSON object per line, found an empty file"

# ---------------------------------------------------------------- truncation counts
rm -f "$T/out.h5"
{
  echo '{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}]}'
  echo '{"messages":[{"role":"user","content":"0123456789"},{"role":"assistant","content":"b"}]}'
  echo '{"messages":[{"role":"user","content":"0123456789"},{"role":"assistant","content":"01234567890123456789"}]}'
} >"$F"
# line 1: 1+9+1+1+14 + 1+1 = 28 fits in 30; line 2: 35 + 2 = 37 -> prompt cut by 7;
# line 3: 35 + 21 = 56 -> prompt cut to BOS + header (15), reply cut to 15 of 21.
# Targets: 2 + 2 + 15. So 2 prompts and 1 completion truncated.
out=$(kd chat --jsonl "$F" --out "$T/out.h5" --max-len 30) || fail "chat with truncation"
want="chat: wrote 3 examples to $T/out.h5 (88 tokens, 19 target tokens); truncated: 2 prompts from the left, 1 completions from the right"
[ "$out" = "$want" ] || fail "summary
  got:      $out
  expected: $want"
kd inspect "$T/out.h5" >"$T/i.txt" || fail "inspect truncated output"
[ "$(field doc_tokens_max "$T/i.txt")" = 30 ] || fail "longest document $(field doc_tokens_max "$T/i.txt"), expected 30"

# ---------------------------------------------------------------- --prompts (prompt sets)
rm -f "$T/i.txt"
echo '{"messages":[{"role":"assistant","content":"only a reply"}]}' >"$F"
expect_error chat "$F:1: messages: expected a turn before the assistant reply, found only the reply" --prompts
rm -f "$T/out.h5"
{
  echo "$GOOD"                                                   # the reply is dropped
  echo '{"messages":[{"role":"user","content":"0123456789"}]}'  # ends with the user: kept whole
} >"$F"
# BOS + "<|user|>\nhi\n" (12) + header (14) = 27; the second is 35 -> cut from the left to 30
out=$(kd chat --jsonl "$F" --out "$T/out.h5" --prompts --max-len 30) || fail "chat --prompts"
want="chat: wrote 2 examples to $T/out.h5 (57 tokens, 0 target tokens); truncated: 1 prompts from the left, 0 completions from the right"
[ "$out" = "$want" ] || fail "--prompts summary
  got:      $out
  expected: $want"
kd inspect "$T/out.h5" --first 27 >"$T/i.txt" || fail "inspect prompts"
[ "$(field first_text "$T/i.txt")" = '"<bos><|user|>\nhi\n<|assistant|>\n"' ] || fail "--prompts rendering: $(field first_text "$T/i.txt")"
[ "$(field loss_mask "$T/i.txt")" = "0 of 57 tokens (0.0000)" ] || fail "--prompts mask: $(field loss_mask "$T/i.txt")"

# ---------------------------------------------------------------- YAML template
cat >"$T/t.yaml" <<'YEOF'
bos: false
eos: true
user: {header: "Q: ", footer: "\n"}
assistant: {header: "A: ", footer: "\n"}
YEOF
echo "$GOOD" >"$F"
rm -f "$T/out.h5"
kd chat --jsonl "$F" --out "$T/out.h5" --template "$T/t.yaml" >/dev/null || fail "chat with a YAML template"
kd inspect "$T/out.h5" --first 20 >"$T/i.txt"
[ "$(field first_text "$T/i.txt")" = '"Q: hi\nA: yo\n<eos>"' ] || fail "YAML template rendering: $(field first_text "$T/i.txt")"
[ "$(field loss_mask "$T/i.txt")" = "4 of 13 tokens (0.3077)" ] || fail "YAML template mask: $(field loss_mask "$T/i.txt")"

[ $fails -eq 0 ] && echo "data_chat_errors: all checks passed"
exit $((fails > 0))
