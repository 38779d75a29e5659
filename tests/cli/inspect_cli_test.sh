#!/usr/bin/env bash
# End-to-end checks of `mlxn inspect`: a valid safetensors file (text and --json, --tensors), and
# invalid input giving exactly one `error: <path>: ...` line on stderr with a non-zero exit.
# Usage: inspect_cli_test.sh /path/to/mlxn
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

# A two-element F32 tensor: 8-byte header length, JSON header padded to 8 bytes, then the data.
header='{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'
while (( ${#header} % 8 )); do header+=' '; done
{
  printf "$(printf '\\x%02x' $(( ${#header} )) 0 0 0 0 0 0 0)"
  printf '%s' "$header"
  printf '\x00\x00\x80\x3f\x00\x00\x00\x40'  # 1.0f, 2.0f little-endian
} >"$dir/t.safetensors"

out=$("$mlxn" inspect "$dir/t.safetensors" 2>&1); rc=$?
check "valid file exits 0" test $rc -eq 0
check "valid file names the format" grep -q "safetensors" <<<"$out"
json=$("$mlxn" inspect "$dir/t.safetensors" --json 2>&1)
check "--json reports the tensor count" grep -q '"tensor_count": 1' <<<"$json"
tensors=$("$mlxn" inspect "$dir/t.safetensors" --tensors 2>&1)
check "--tensors lists the tensor" grep -qE '(^|[[:space:]])w[[:space:]]' <<<"$tensors"

head -c 20 "$dir/t.safetensors" >"$dir/truncated.safetensors"
for bad in "$dir/truncated.safetensors" "$dir/missing.gguf"; do
  err=$("$mlxn" inspect "$bad" 2>&1 >/dev/null); rc=$?
  check "$(basename "$bad"): non-zero exit" test $rc -ne 0
  check "$(basename "$bad"): one line" test "$(wc -l <<<"$err")" -eq 1
  check "$(basename "$bad"): 'error: <path>:' prefix" grep -q "^error: $bad: " <<<"$err"
done
exit $fail
