#!/usr/bin/env bash
# End-to-end checks of `mlxn generate`, `chat`, `perplexity` and `bench` on the tiny llama_f32
# parity fixture (vocab 256) given a byte-level tokenizer written here: 256 byte tokens, no
# merges, so token id = byte value, and a small chat template. Checks: greedy output equals the
# argmax continuation computed from `mlxn score` logits and is the same run after run;
# --max-tokens bounds it; the stats line; seeded sampling is reproducible; chat from a pipe
# (two turns, KV-cache reuse gives the same replies as prefilling everything, /reset, /exit);
# perplexity equals the NLL computed in Python from `mlxn score` logits; bench --json; errors
# as one `error:` line with a non-zero exit; --help of every command.
# Usage: generate_cli_test.sh /path/to/mlxn /path/to/tests/engine/fixtures
set -uo pipefail
mlxn=$1
fixtures=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail=0
check() {  # check <description> <condition...>
  local what=$1
  shift
  if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; fail=1; fi
}

# ---- --help and errors need no model ----
for cmd in generate chat perplexity bench; do
  out=$("$mlxn" $cmd --help 2>&1); rc=$?
  check "$cmd --help exits 0" test $rc -eq 0
  check "$cmd --help shows the usage" grep -q "^usage: mlxn $cmd" <<<"$out"
  check "$cmd --help lists --backend" grep -q -- "--backend" <<<"$out"
done

# expect_error <description> <exit code or "any"> <needle> <command args...>
expect_error() {
  local what=$1 code=$2 needle=$3
  shift 3
  local err rc
  err=$("$mlxn" "$@" 2>&1 >/dev/null); rc=$?
  check "$what: non-zero exit" test $rc -ne 0
  [[ $code == any ]] || check "$what: exit $code" test $rc -eq "$code"
  check "$what: one line" test "$(wc -l <<<"$err")" -eq 1
  check "$what: starts with 'error:'" grep -q '^error: ' <<<"$err"
  check "$what: names the problem ($needle)" grep -qF -- "$needle" <<<"$err"
}

# No --model and no default model: the message says where it looked and how to pass --model.
export MLXN_DEFAULT_MODEL="$dir/no_default_model"
expect_error "generate, no default model" 1 "$dir/no_default_model" generate --prompt hi
expect_error "generate, no default model, hint" 1 "--model" generate --prompt hi
expect_error "chat, no default model" 1 "$dir/no_default_model" chat </dev/null
expect_error "bench, no default model" 1 "$dir/no_default_model" bench
echo hello >"$dir/small.txt"
expect_error "perplexity, no default model" 1 "$dir/no_default_model" perplexity \
  --file "$dir/small.txt"
unset MLXN_DEFAULT_MODEL
expect_error "generate, missing --model" 1 "$dir/missing" generate --model "$dir/missing" \
  --prompt hi

if [[ ! -d "$fixtures/llama_f32" ]]; then
  echo "skip: no llama_f32 fixture under '$fixtures'"
  exit $fail
fi

# ---- the model: the fixture plus a byte-level tokenizer ----
model="$dir/model"
cp -r "$fixtures/llama_f32" "$model"
python3 - "$model" <<'EOF'
import json, sys
d = sys.argv[1]
# GPT-2's byte-level alphabet: printable bytes stand for themselves, the others for 256 + n.
printable = set(range(0x21, 0x7F)) | set(range(0xA1, 0xAD)) | set(range(0xAE, 0x100))
chars, n = {}, 0
for b in range(256):
    if b in printable:
        chars[b] = chr(b)
    else:
        chars[b] = chr(256 + n)
        n += 1
assert json.load(open(d + "/config.json"))["vocab_size"] == 256
json.dump({"version": "1.0", "added_tokens": [], "normalizer": None,
           "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False,
                             "trim_offsets": True, "use_regex": True},
           "post_processor": None,
           "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                       "use_regex": True},
           "model": {"type": "BPE", "dropout": None, "unk_token": None,
                     "continuing_subword_prefix": None, "end_of_word_suffix": None,
                     "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                     "vocab": {chars[b]: b for b in range(256)}, "merges": []}},
          open(d + "/tokenizer.json", "w"))
template = ("{% for m in messages %}<|{{ m.role }}|>{{ m.content }}<|end|>\n{% endfor %}"
            "{% if add_generation_prompt %}<|assistant|>{% endif %}")
json.dump({"chat_template": template}, open(d + "/tokenizer_config.json", "w"))
EOF
check "tokenizer: id = byte" test "$("$mlxn" tokenize --model "$model" --text "Hi!")" = "[72, 105, 33]"

run() {  # run <name> <command args...>: stdout to $dir/<name>.out, stderr to .err, rc to .rc
  local name=$1
  shift
  "$mlxn" "$@" >"$dir/$name.out" 2>"$dir/$name.err"
  echo $? >"$dir/$name.rc"
}
rc_of() { cat "$dir/$1.rc"; }
differ() { ! cmp -s "$1" "$2"; }

# ---- generate ----
base=(generate --model "$model" --backend cpu --prompt "Once upon a time")
run g1 "${base[@]}" --temperature 0 --max-tokens 12 --ignore-eos
run g2 "${base[@]}" --temperature 0 --max-tokens 12 --ignore-eos
check "greedy generate exits 0" test "$(rc_of g1)" -eq 0
check "greedy output is the same run after run" cmp -s "$dir/g1.out" "$dir/g2.out"
check "greedy output is not empty" test -s "$dir/g1.out"
stats=$(cat "$dir/g1.err")
check "one stats line on stderr" test "$(wc -l <"$dir/g1.err")" -eq 1
for field in "prompt 16 tokens" "prefill [0-9.]+ tok/s" "decode [0-9.]+ tok/s" \
  "ttft [0-9.]+ ms" "generated 12 tokens"; do
  check "stats line has '$field'" grep -Eq "$field" <<<"$stats"
done

# The greedy continuation, worked out independently: argmax of the last row of `mlxn score`
# logits, one token at a time; token id = byte; the text decoded as UTF-8 with U+FFFD.
ids="79,110,99,101,32,117,112,111,110,32,97,32,116,105,109,101"  # "Once upon a time"
for _ in $(seq 12); do
  "$mlxn" score --model "$model" --backend cpu --tokens "$ids" --out "$dir/s.npy" >/dev/null
  next=$(python3 - "$dir/s.npy" <<'EOF'
import ast, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<H", b[8:10])[0]
h = ast.literal_eval(b[10:10 + n].decode("latin1"))
rows, vocab = h["shape"]
last = struct.unpack("<%df" % vocab, b[10 + n + 4 * vocab * (rows - 1):])
print(max(range(vocab), key=lambda i: last[i]))
EOF
)
  ids="$ids,$next"
done
# expect_text <n> <file>: <file> holds the first n tokens of that continuation, as text.
expect_text() {
  python3 - "$ids" "$1" "$2" <<'EOF'
import sys
n = int(sys.argv[2])
want = bytes([int(x) for x in sys.argv[1].split(",")][16:16 + n]).decode("utf-8", errors="replace")
want += "" if want.endswith("\n") else "\n"
sys.exit(0 if open(sys.argv[3], "rb").read().decode("utf-8") == want else 1)
EOF
}
check "greedy output = argmax continuation from mlxn score" expect_text 12 "$dir/g1.out"
run g3 "${base[@]}" --temperature 0 --max-tokens 5 --ignore-eos
MLXN_DEFAULT_MODEL="$model" "$mlxn" generate --backend cpu --prompt "Once upon a time" \
  --temperature 0 --max-tokens 12 --ignore-eos >"$dir/gd.out" 2>/dev/null
check "\$MLXN_DEFAULT_MODEL stands in for --model" cmp -s "$dir/gd.out" "$dir/g1.out"
check "--max-tokens 5: stats say 5 tokens" grep -q "generated 5 tokens" "$dir/g3.err"
check "--max-tokens 5: the first 5 tokens of the continuation" expect_text 5 "$dir/g3.out"
run g4 "${base[@]}" --temperature 0 --max-tokens 0
check "--max-tokens 0: no text" test "$(tr -d '\n' <"$dir/g4.out" | wc -c)" -eq 0

run s1 "${base[@]}" --temperature 1.0 --seed 7 --max-tokens 24 --ignore-eos --no-stats
run s2 "${base[@]}" --temperature 1.0 --seed 7 --max-tokens 24 --ignore-eos --no-stats
run s3 "${base[@]}" --temperature 1.0 --seed 8 --max-tokens 24 --ignore-eos --no-stats
check "sampling exits 0" test "$(rc_of s1)" -eq 0
check "--no-stats: nothing on stderr" test ! -s "$dir/s1.err"
check "the same --seed gives the same text" cmp -s "$dir/s1.out" "$dir/s2.out"
check "another --seed gives another text" differ "$dir/s1.out" "$dir/s3.out"
check "sampling differs from greedy" differ "$dir/s1.out" "$dir/g1.out"

run c1 "${base[@]}" --chat --system "Be brief." --temperature 0 --max-tokens 8
check "generate --chat exits 0" test "$(rc_of c1)" -eq 0
# <|system|>Be brief.<|end|>\n<|user|>Once upon a time<|end|>\n<|assistant|> = 72 bytes.
check "generate --chat renders the template" grep -q "prompt 72 tokens" "$dir/c1.err"
run c2 "${base[@]}" --system "x" --temperature 0
check "--system without --chat is a usage error" test "$(rc_of c2)" -eq 2

# ---- chat ----
chat=(chat --model "$model" --backend cpu --max-tokens 6)
greedy=(--temperature 0)
printf 'Hello there\nHow are you?\n' | "$mlxn" "${chat[@]}" "${greedy[@]}" --stats >"$dir/chat.out" \
  2>"$dir/chat.err"
check "chat from a pipe exits 0" test $? -eq 0
check "chat: two stats lines (two turns)" test "$(grep -c '^stats:' "$dir/chat.err")" -eq 2
check "chat: the first turn prefills everything" \
  grep -q "prompt 40 tokens (0 reused)" <(sed -n 1p "$dir/chat.err")
check "chat: the second turn reuses the cache" \
  grep -Eq "\(([1-9][0-9]*) reused\)" <(grep '^stats:' "$dir/chat.err" | sed -n 2p)
check "chat: replies on stdout" test "$(wc -l <"$dir/chat.out")" -ge 2
printf 'Hello there\nHow are you?\n' | "$mlxn" "${chat[@]}" "${greedy[@]}" --no-reuse \
  >"$dir/chat_noreuse.out" 2>/dev/null
check "chat: reusing the cache gives the replies of a full prefill" \
  cmp -s "$dir/chat.out" "$dir/chat_noreuse.out"
printf 'Hello there\nHow are you?\n' | "$mlxn" "${chat[@]}" --temperature 0.9 --seed 3 \
  >"$dir/chat_s1.out" 2>/dev/null
check "chat: sampling exits 0" test $? -eq 0
check "chat: sampled replies" test "$(wc -l <"$dir/chat_s1.out")" -ge 2
printf 'Hello there\nHow are you?\n' | "$mlxn" "${chat[@]}" --temperature 0.9 --seed 3 \
  --no-reuse >"$dir/chat_s2.out" 2>/dev/null
check "chat: sampled replies are the same with and without cache reuse" \
  cmp -s "$dir/chat_s1.out" "$dir/chat_s2.out"
# Sliding-window layers keep a ring of window + chunk - 1 positions, so going back in the cache
# is only safe while the ring still holds what the new tokens attend to: Gemma 2 (window 16)
# with small prefill chunks, three turns (the third drops the first exchange), must give the
# replies of a full prefill every turn.
if [[ -d "$fixtures/gemma2_f32" ]]; then
  gemma="$dir/gemma2"
  cp -r "$fixtures/gemma2_f32" "$gemma"
  cp "$model/tokenizer.json" "$model/tokenizer_config.json" "$gemma/"
  for chunk in 4 8; do
    turns='Hello there\nHow are you?\nok\n'
    printf "$turns" | "$mlxn" "${chat[@]/$model/$gemma}" --seed 3 --prefill-chunk $chunk --stats \
      >"$dir/gr.out" 2>"$dir/gr.err"
    check "gemma2 chat, chunk $chunk: exits 0" test $? -eq 0
    printf "$turns" | "$mlxn" "${chat[@]/$model/$gemma}" --seed 3 --prefill-chunk $chunk \
      --no-reuse >"$dir/gn.out" 2>/dev/null
    check "gemma2 chat, chunk $chunk: cache reuse gives the replies of a full prefill" \
      cmp -s "$dir/gr.out" "$dir/gn.out"
  done
  check "gemma2 chat, chunk 8: the second turn reuses the ring cache" \
    grep -Eq "\(([1-9][0-9]*) reused\)" <(grep '^stats:' "$dir/gr.err" | sed -n 2p)
fi
"$mlxn" generate --model "$model" --backend cpu --chat --prompt "Hello there" --temperature 0 \
  --max-tokens 6 --no-stats >"$dir/chat_gen.out"
check "chat: the first reply equals generate --chat" \
  cmp -s <(head -c "$(wc -c <"$dir/chat_gen.out")" "$dir/chat.out") "$dir/chat_gen.out"

printf 'Hello there\n/reset\nHello there\n/exit\nignored\n' | "$mlxn" "${chat[@]}" --stats \
  >"$dir/reset.out" 2>"$dir/reset.err"
check "chat /reset: exits 0" test $? -eq 0
check "chat /reset, /exit: two turns ran" test "$(grep -c '^stats:' "$dir/reset.err")" -eq 2
check "chat /reset: the turn after it starts from an empty cache" \
  grep -q "prompt 40 tokens (0 reused)" <(grep '^stats:' "$dir/reset.err" | sed -n 2p)
check "chat /reset: the same message gets the same reply" \
  python3 -c 'import sys; s=open(sys.argv[1],"rb").read(); h=len(s)//2; sys.exit(0 if len(s)%2==0 and s[:h]==s[h:] else 1)' \
  "$dir/reset.out"
printf '' | "$mlxn" "${chat[@]}" >"$dir/eof.out" 2>&1
check "chat: empty input exits 0" test $? -eq 0
long=$(head -c 300 /dev/zero | tr '\0' 'a')
printf 'hi\n%s\nhi\n' "$long" | "$mlxn" "${chat[@]}" >"$dir/long.out" 2>"$dir/long.err"
check "chat: a message larger than the context fails" test $? -ne 0
check "chat: ... with one error line" test "$(grep -c '^error: chat: ' "$dir/long.err")" -eq 1
check "chat: ... and the conversation goes on" test "$(wc -l <"$dir/long.out")" -ge 2

# ---- perplexity: against the NLL of `mlxn score` logits, computed here ----
python3 -c 'import random; random.seed(5); w="the cat sat on a mat and ran".split(); print(" ".join(random.choice(w) for _ in range(40)))' \
  >"$dir/text.txt"
"$mlxn" tokenize --model "$model" --file "$dir/text.txt" >"$dir/text_ids.json"
# expected_nll <context> <stride>: the sliding-window evaluation redone from score's logits.
expected_nll() {
  python3 - "$mlxn" "$model" "$dir" "$1" "$2" <<'EOF'
import ast, json, math, struct, subprocess, sys
mlxn, model, d, ctx, stride = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
ids = json.load(open(d + "/text_ids.json"))
def logits(window):
    subprocess.run([mlxn, "score", "--model", model, "--backend", "cpu", "--tokens",
                    ",".join(map(str, window)), "--out", d + "/w.npy"], check=True,
                   stdout=subprocess.DEVNULL)
    b = open(d + "/w.npy", "rb").read()
    n = struct.unpack("<H", b[8:10])[0]
    rows, vocab = ast.literal_eval(b[10:10 + n].decode("latin1"))["shape"]
    flat = struct.unpack("<%df" % (rows * vocab), b[10 + n:])
    return [flat[r * vocab:(r + 1) * vocab] for r in range(rows)]
total, count, prev_end, begin = 0.0, 0, 0, 0
while True:
    end = min(begin + ctx, len(ids))
    window = ids[begin:end]
    rows = logits(window)
    for j in range(max(1, len(window) - (end - prev_end)), len(window)):
        row = rows[j - 1]
        m = max(row)
        total += m + math.log(sum(math.exp(v - m) for v in row)) - row[window[j]]
        count += 1
    prev_end = end
    if end == len(ids):
        break
    begin += stride
print(count, total / count)
EOF
}
n_ids=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$dir/text_ids.json")
for cs in "128 64" "64 24" "48 48"; do
  read -r ctx stride <<<"$cs"
  out=$("$mlxn" perplexity --model "$model" --backend cpu --file "$dir/text.txt" --context "$ctx" \
    --stride "$stride" --json); rc=$?
  check "perplexity --context $ctx --stride $stride exits 0" test $rc -eq 0
  read -r want_count want_nll <<<"$(expected_nll "$ctx" "$stride")"
  python3 - "$out" "$want_count" "$want_nll" "$n_ids" "$ctx" "$stride" <<'EOF'
import json, math, sys
j = json.loads(sys.argv[1])
want_count, want_nll, n = int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
assert j["tokens"] == n, (j["tokens"], n)
assert j["tokens_scored"] == want_count, (j["tokens_scored"], want_count)
assert j["context"] == int(sys.argv[5]) and j["stride"] == int(sys.argv[6])
assert math.isfinite(j["perplexity"]) and j["perplexity"] > 1
assert abs(j["mean_nll"] - want_nll) <= 1e-4 * max(1.0, abs(want_nll)), (j["mean_nll"], want_nll)
assert abs(j["perplexity"] - math.exp(j["mean_nll"])) <= 1e-6 * j["perplexity"]
EOF
  check "perplexity --context $ctx --stride $stride: JSON matches score's NLL" test $? -eq 0
done
check "the text spans several windows of 48" test "$n_ids" -gt 100
out=$("$mlxn" perplexity --model "$model" --backend cpu --file "$dir/text.txt" --context 4096)
check "perplexity text: clamped to the model's 128 positions" grep -q "context 128, stride 64" \
  <<<"$out"
check "perplexity text: a finite perplexity" \
  grep -Eq "^perplexity: +[0-9]+\.[0-9]+$" <<<"$out"
expect_error "perplexity, stride > context" 2 "--stride" perplexity --model "$model" \
  --file "$dir/text.txt" --context 16 --stride 17
printf 'a' >"$dir/one.txt"
expect_error "perplexity, one token" 1 "at least 2" perplexity --model "$model" \
  --file "$dir/one.txt"

# ---- bench ----
out=$("$mlxn" bench --model "$model" --backend cpu --prompt 32 --gen 8 --repeat 2 --json); rc=$?
check "bench --json exits 0" test $rc -eq 0
python3 - "$out" <<'EOF'
import json, sys
j = json.loads(sys.argv[1])
for k in ("prefill_tok_s", "decode_tok_s", "ttft_ms"):
    assert j[k] > 0, k
assert j["backend"] == "cpu" and j["device"], j
assert j["prompt_tokens"] == 32 and j["gen_tokens"] == 8 and j["repeat"] == 2
assert j["architecture"] == "llama" and j["layers"] == 2 and j["vocab_size"] == 256
assert j["weights_bytes"] > 0 and j["dtype"] == "f32"
assert len(j["runs"]) == 2 and all(r["generated_tokens"] == 8 for r in j["runs"])
EOF
check "bench --json parses with the fields" test $? -eq 0
out=$("$mlxn" bench --model "$model" --backend cpu --prompt 16 --gen 4 --repeat 1)
check "bench text names prefill, decode, ttft" \
  bash -c 'grep -q "^prefill:" <<<"$1" && grep -q "^decode:" <<<"$1" && grep -q "^ttft:" <<<"$1"' \
  _ "$out"
expect_error "bench, more than the context" 1 "context" bench --model "$model" --prompt 120 \
  --gen 20

# ---- usage errors ----
for cmd in generate chat perplexity bench; do
  expect_error "$cmd, bad --backend" 2 "--backend" $cmd --model "$model" --backend gpu
  expect_error "$cmd, unknown option" 2 "--bogus" $cmd --model "$model" --bogus
done
expect_error "generate, no --prompt" 2 "--prompt" generate --model "$model"
expect_error "generate, bad --temperature" 2 "--temperature" generate --model "$model" \
  --prompt hi --temperature -1
expect_error "generate, bad --top-p" 2 "--top-p" generate --model "$model" --prompt hi --top-p 0
expect_error "generate, --max-tokens x" 2 "--max-tokens" generate --model "$model" --prompt hi \
  --max-tokens x
expect_error "generate, bad --dtype" 2 "--dtype" generate --model "$model" --prompt hi --dtype q4
expect_error "perplexity, no --file" 2 "--file" perplexity --model "$model"
expect_error "bench, --repeat 0" 2 "--repeat" bench --model "$model" --repeat 0
rm "$model/tokenizer_config.json"
expect_error "generate --chat without a template" 1 "chat template" generate --model "$model" \
  --prompt hi --chat
exit $fail
