#!/usr/bin/env bash
# End-to-end checks of `mlxn tokenize` / `mlxn detokenize` on a small byte-level tokenizer.json
# (expected ids worked out by hand below), and their errors: one `error: ...` line, non-zero exit.
# Usage: tokenize_cli_test.sh /path/to/mlxn
set -uo pipefail
mlxn=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail=0
check() {  # check <description> <condition...>
  local what=$1
  shift
  if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; fail=1; fi
}

# GPT-2 style: " " is the byte-level character "Ġ" (U+0120). Merges h+e, l+l, he+ll, hell+o,
# Ġ+hello. "hello hello" -> pieces "hello", "Ġhello" -> 7, 8; the template adds <s> (10) first.
cat >"$dir/tokenizer.json" <<'JSON'
{"added_tokens": [{"id": 10, "content": "<s>", "single_word": false, "lstrip": false,
   "rstrip": false, "normalized": false, "special": true}],
 "normalizer": null,
 "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
 "post_processor": {"type": "TemplateProcessing",
   "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
   "pair": [], "special_tokens": {"<s>": {"id": "<s>", "ids": [10], "tokens": ["<s>"]}}},
 "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
 "model": {"type": "BPE", "vocab": {"h": 0, "e": 1, "l": 2, "o": 3, "\u0120": 4, "he": 5, "ll": 6,
   "hello": 7, "\u0120hello": 8, "hell": 9}, "merges": ["h e", "l l", "he ll", "hell o", "\u0120 hello"]}}
JSON

out=$("$mlxn" tokenize --model "$dir" --text "hello hello" 2>&1); rc=$?
check "tokenize exits 0" test $rc -eq 0
check "tokenize prints the ids with BOS" test "$out" = "[10, 7, 8]"
out=$("$mlxn" tokenize --model "$dir" --text "hello hello" --no-special 2>&1)
check "--no-special leaves BOS out" test "$out" = "[7, 8]"
printf 'hello<s>hello' >"$dir/text.txt"
out=$("$mlxn" tokenize --model "$dir/tokenizer.json" --file "$dir/text.txt" --no-special 2>&1)
check "--file, special-token text" test "$out" = "[7, 10, 7]"
out=$("$mlxn" detokenize --model "$dir" --ids 10,7,8 2>&1)
check "detokenize" test "$out" = "<s>hello hello"
out=$("$mlxn" detokenize --model "$dir" --ids "[10, 7, 8]" --skip-special 2>&1)
check "detokenize --skip-special, JSON list" test "$out" = "hello hello"

for bad in "detokenize --model $dir --ids 1,x" "tokenize --model $dir/missing --text a"; do
  err=$($mlxn $bad 2>&1 >/dev/null); rc=$?
  check "'$bad': non-zero exit" test $rc -ne 0
  check "'$bad': one error line" test "$(wc -l <<<"$err")" -eq 1
  check "'$bad': error: prefix" grep -q "^error: " <<<"$err"
done
exit $fail
