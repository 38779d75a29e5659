#!/usr/bin/env bash
# End-to-end check of `mlxn bench --synthetic`: the tiny preset for every storage kind, with
# --json parsed in Python (fields present, rates positive, the bandwidth figures consistent with
# the bytes per token and the measured copy bandwidth), --row-order-weights, the text report
# (measured and given bandwidth), and the option errors.
# Usage: bench_synthetic_cli_test.sh /path/to/mlxn
set -uo pipefail
mlxn=$1
fail=0
check() {  # check <description> <condition...>
  local what=$1
  shift
  if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; fail=1; fi
}

for quant in mlx4 mlx8 bf16 q4_0; do
  out=$("$mlxn" bench --synthetic tiny --quant $quant --prompt 16 --gen 4 --repeat 1 --warmup 0 \
    --backend cpu --json 2>&1)
  rc=$?
  check "bench --synthetic tiny --quant $quant exits 0" test $rc -eq 0
  check "bench --synthetic tiny --quant $quant JSON" python3 - "$quant" "$out" <<'PY'
import json, sys
quant, text = sys.argv[1], sys.argv[2]
j = json.loads(text)
assert j["synthetic"] == "tiny" and j["quant"] == quant, (j["synthetic"], j["quant"])
assert j["prompt_tokens"] == 16 and j["gen_tokens"] == 4
for k in ("prefill_tok_s", "decode_tok_s", "ttft_ms", "weight_bytes_per_token",
          "decode_bandwidth_gbs", "bandwidth_fraction"):
    assert isinstance(j[k], (int, float)) and j[k] > 0, (k, j[k])
assert j["weight_bytes_per_token"] < j["weights_bytes"]
gbs = j["decode_tok_s"] * j["weight_bytes_per_token"] / 1e9
assert abs(gbs - j["decode_bandwidth_gbs"]) <= 1e-6 * gbs, (gbs, j["decode_bandwidth_gbs"])
# No --bandwidth-gbs: the limit is the copy bandwidth measured on the device in the same run.
assert j["bandwidth_source"] == "measured copy (read + write)", j["bandwidth_source"]
assert isinstance(j["bandwidth_gbs"], (int, float)) and j["bandwidth_gbs"] > 0, j["bandwidth_gbs"]
assert abs(j["bandwidth_fraction"] - gbs / j["bandwidth_gbs"]) <= 1e-6
assert j["runs"][0]["generated_tokens"] == 4
# The CPU keeps MLX's row order (the tile order is a CUDA + bf16 load-time choice).
assert j["decode_tiles"] is False, j["decode_tiles"]
PY
done

# --row-order-weights is a model option every loading command takes; the JSON says which order
# the loaded weights hold.
out=$("$mlxn" bench --synthetic tiny --prompt 8 --gen 2 --repeat 1 --warmup 0 --backend cpu \
  --row-order-weights --json 2>&1)
check "--row-order-weights exits 0" test $? -eq 0
check "--row-order-weights: decode_tiles is false" python3 -c \
  'import json, sys; assert json.loads(sys.argv[1])["decode_tiles"] is False' "$out"

out=$("$mlxn" bench --synthetic tiny --prompt 8 --gen 2 --repeat 1 --warmup 0 --backend cpu \
  --bandwidth-gbs 100 2>&1)
check "text report exits 0" test $? -eq 0
check "text report names the synthetic model" grep -q "synthetic tiny (mlx4" <<<"$out"
check "text report gives the bandwidth it was given" grep -q "of 100 GB/s (--bandwidth-gbs)" <<<"$out"

out=$("$mlxn" bench --synthetic tiny --prompt 8 --gen 2 --repeat 1 --warmup 0 --backend cpu 2>&1)
check "text report, measured bandwidth: exits 0" test $? -eq 0
check "text report names the measured copy bandwidth" \
  grep -qE "% of [0-9]+ GB/s \(measured copy \(read \+ write\)\)" <<<"$out"

expect_error() {  # expect_error <description> <needle> <args...>
  local what=$1 needle=$2
  shift 2
  local err
  err=$("$mlxn" "$@" 2>&1 >/dev/null)
  check "$what: non-zero exit" test $? -ne 0
  check "$what: names the problem ($needle)" grep -qF -- "$needle" <<<"$err"
}
expect_error "unknown preset" "llama9" bench --synthetic llama9 --backend cpu
expect_error "unknown quant" "--quant" bench --synthetic tiny --quant q3_k --backend cpu
expect_error "--synthetic with --model" "cannot be used together" bench --synthetic tiny \
  --model /nonexistent
expect_error "--quant without --synthetic" "--synthetic" bench --quant mlx4 --model /nonexistent
exit $fail
