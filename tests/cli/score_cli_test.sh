#!/usr/bin/env bash
# End-to-end checks of `mlxn score`: bad input (no --model, empty or garbage tokens, a missing
# tokens file or model, an unwritable --out) gives exactly one `error:` line, a non-zero exit and
# no output file; with the llama_f32 parity fixture present, the written .npy is float32
# [tokens, vocab] (checked with a standard-library-only reader), matches the reference logits,
# --tokens-file gives the same bytes, and an out-of-vocabulary id fails leaving an earlier
# output untouched.
# Usage: score_cli_test.sh /path/to/mlxn /path/to/tests/engine/fixtures
set -uo pipefail
mlxn=$1
fixtures=${2:-}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail=0
check() {  # check <description> <condition...>
  local what=$1
  shift
  if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; fail=1; fi
}

# Runs mlxn score with the given arguments expecting failure: non-zero exit, one stderr line
# starting with "error:" that contains <needle>, and nothing left in the scratch directory
# besides the files that were there before.
expect_error() {  # expect_error <description> <needle> <args...>
  local what=$1 needle=$2
  shift 2
  local before after err rc
  before=$(ls -A "$dir" | sort)
  err=$("$mlxn" score "$@" 2>&1 >/dev/null); rc=$?
  after=$(ls -A "$dir" | sort)
  check "$what: non-zero exit" test $rc -ne 0
  check "$what: one line" test "$(wc -l <<<"$err")" -eq 1
  check "$what: starts with 'error:'" grep -q '^error: ' <<<"$err"
  check "$what: names the problem ($needle)" grep -qF -- "$needle" <<<"$err"
  check "$what: writes nothing" test "$before" = "$after"
}

help=$("$mlxn" score --help 2>&1); rc=$?
check "--help exits 0" test $rc -eq 0
check "--help shows the usage" grep -q "usage: mlxn score" <<<"$help"

touch "$dir/regular_file"
printf '3 4\n5\n' >"$dir/tokens.txt"
nomodel="$dir/no_such_model"
expect_error "no --model" "--model" --tokens 1,2 --out "$dir/a.npy"
expect_error "no --out" "--out" --model "$nomodel" --tokens 1,2
expect_error "no tokens" "--tokens" --model "$nomodel" --out "$dir/a.npy"
expect_error "empty --tokens" "no token ids" --model "$nomodel" --tokens "" --out "$dir/a.npy"
expect_error "blank --tokens" "empty item" --model "$nomodel" --tokens " , " --out "$dir/a.npy"
expect_error "garbage --tokens" "'x'" --model "$nomodel" --tokens 1,x,3 --out "$dir/a.npy"
expect_error "negative id" "'-1'" --model "$nomodel" --tokens -1 --out "$dir/a.npy"
expect_error "id over 32 bits" "'4294967296'" --model "$nomodel" --tokens 4294967296 \
  --out "$dir/a.npy"
expect_error "empty item" "empty item" --model "$nomodel" --tokens 1,,2 --out "$dir/a.npy"
expect_error "both token sources" "exactly one" --model "$nomodel" --tokens 1 \
  --tokens-file "$dir/tokens.txt" --out "$dir/a.npy"
expect_error "missing --tokens-file" "$dir/none.txt" --model "$nomodel" \
  --tokens-file "$dir/none.txt" --out "$dir/a.npy"
expect_error "unknown option" "--bogus" --model "$nomodel" --tokens 1 --out "$dir/a.npy" --bogus
expect_error "bad --dtype" "--dtype" --model "$nomodel" --tokens 1 --out "$dir/a.npy" --dtype q4
expect_error "--out in a missing directory" "$dir/missing/a.npy" --model "$nomodel" --tokens 1 \
  --out "$dir/missing/a.npy"
expect_error "--out under a regular file" "$dir/regular_file/a.npy" --model "$nomodel" \
  --tokens 1 --out "$dir/regular_file/a.npy"
expect_error "--out is a directory" "is a directory" --model "$nomodel" --tokens 1 --out "$dir"
expect_error "missing model" "$nomodel" --model "$nomodel" --tokens 1,2 --out "$dir/a.npy"

# The llama_f32 fixture: model path, tokens, reference logits and tolerance from the manifest
# (or just the model directory when there is no manifest).
fixture=$(python3 - "$fixtures" <<'EOF'
import json, os, sys
d = sys.argv[1]
if not d:
    sys.exit(0)
try:
    m = json.load(open(os.path.join(d, "manifest.json")))
except OSError:
    if os.path.isdir(os.path.join(d, "llama_f32")):
        vocab = json.load(open(os.path.join(d, "llama_f32", "config.json")))["vocab_size"]
        print(os.path.join(d, "llama_f32"), "1,2,3,4", "-", 0, vocab)
    sys.exit(0)
cases = [c for c in m["cases"] if c["name"] == "llama_f32"] or \
        [c for c in m["cases"] if c["kind"] == "f32"]
if cases:
    c = cases[0]
    print(os.path.join(d, c["model"]), ",".join(map(str, m["tokens"])),
          os.path.join(d, c["logits"]), c["tolerance"], 0)
EOF
)
if [[ -z "$fixture" ]]; then
  echo "skip: no llama_f32 fixture under '${fixtures}' (run tools/make_parity_fixtures.py --out tests/engine/fixtures)"
  exit $fail
fi
read -r model tokens reference tolerance vocab <<<"$fixture"
n_tokens=$(tr ',' '\n' <<<"$tokens" | wc -l)

out=$("$mlxn" score --model "$model" --tokens "$tokens" --out "$dir/logits.npy" --backend cpu \
  --dtype f32 2>&1); rc=$?
check "score on $model exits 0" test $rc -eq 0
[[ $rc -eq 0 ]] || echo "$out"
# Reads the .npy with the standard library only; checks the layout, the shape, and (with a
# reference) rel-L2 against it. Prints the vocabulary size.
npy_check=$(python3 - "$dir/logits.npy" "$n_tokens" "$reference" "$tolerance" "$vocab" <<'EOF'
import ast, math, struct, sys
path, n, ref_path, tol, vocab = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
def read(p):
    b = open(p, "rb").read()
    assert b[:6] == b"\x93NUMPY", "bad magic"
    major = b[6]
    ln = struct.unpack("<H" if major == 1 else "<I", b[8:10] if major == 1 else b[8:12])[0]
    start = 10 if major == 1 else 12
    h = ast.literal_eval(b[start:start + ln].decode("latin1"))
    data = b[start + ln:]
    return major, start + ln, h, data
major, off, h, data = read(path)
assert major == 1, "version %d" % major
assert off % 64 == 0, "data offset %d not 64-aligned" % off
assert h["descr"] == "<f4", h["descr"]
assert h["fortran_order"] is False
shape = h["shape"]
assert len(shape) == 2 and shape[0] == n, "shape %r, expected (%d, vocab)" % (shape, n)
assert len(data) == 4 * shape[0] * shape[1], "data size"
if vocab:
    assert shape[1] == vocab, "vocab %d, config says %d" % (shape[1], vocab)
if ref_path != "-":
    _, _, rh, rdata = read(ref_path)
    assert tuple(rh["shape"]) == tuple(shape), "reference shape %r" % (rh["shape"],)
    a = struct.unpack("<%df" % (len(data) // 4), data)
    r = struct.unpack("<%df" % (len(rdata) // 4), rdata)
    err = math.sqrt(sum((x - y) ** 2 for x, y in zip(a, r)) / sum(y * y for y in r))
    assert err <= tol, "rel-L2 %g > %g" % (err, tol)
print(shape[1])
EOF
); rc=$?
check "the .npy is float32 [$n_tokens, vocab] (and matches the reference, if any)" test $rc -eq 0
vocab=${npy_check:-0}

tr ',' '\n' <<<"$tokens" | paste -sd' ' | sed 's/ /,\n /g' >"$dir/ids.txt"
"$mlxn" score --model "$model" --tokens-file "$dir/ids.txt" --out "$dir/logits2.npy" \
  --backend cpu --dtype f32 >/dev/null 2>&1
check "--tokens-file gives the same file" cmp -s "$dir/logits.npy" "$dir/logits2.npy"
rm -f "$dir/logits2.npy" "$dir/ids.txt"

if [[ "$vocab" -gt 0 ]]; then
  cp "$dir/logits.npy" "$dir/before.npy"
  expect_error "id == vocab" "out of range" --model "$model" --tokens "1,$vocab" \
    --out "$dir/logits.npy" --backend cpu
  check "a failed run leaves the earlier output untouched" cmp -s "$dir/logits.npy" \
    "$dir/before.npy"
fi
exit $fail
