#!/usr/bin/env bash
# Issue 7's side-by-side, on the GPU machine in one call: `mlxn bench` of the Llama-3-8B shape
# in its four storages, then PyTorch's eager, CUDA-graph, compiled and int4 decode of the same
# shape (tools/torch_decode_bench.py), merged into one markdown table with the GPU's name on top.
#   scripts/side_by_side.sh            uses the mlxn CLI already built in $MLXN_BUILD_DIR
#   scripts/side_by_side.sh --build    configures and builds the CLI there first (CUDA on)
# Environment: MLXN_BUILD_DIR (build-gpu), PROMPT (512), GEN (128), BANDWIDTH_TBS (the ceiling
# both engines' decode rates are compared with; default: the copy bandwidth, read + write, that
# the first mlxn bench measures on the GPU), QUANTS ("mlx4 mlx8 q4_0 bf16"),
# TORCH_BENCH_ARGS (extra arguments for torch_decode_bench.py, e.g. "--no-compile" or
# "--compile-mode default" when time is short), PYTHON (python3), OUT (where the raw JSON
# lines and logs go; a temporary folder when unset).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${MLXN_BUILD_DIR:-$root/build-gpu}
[[ $build = /* ]] || build=$root/$build
prompt=${PROMPT:-512}
gen=${GEN:-128}
tbs=${BANDWIDTH_TBS:-}
quants=${QUANTS:-mlx4 mlx8 q4_0 bf16}
python=${PYTHON:-python3}
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"

fail() {
  echo "side_by_side: FAILED: $*" >&2
  exit 1
}

do_build=0
for arg in "$@"; do
  case "$arg" in
    --build) do_build=1 ;;
    *) echo "usage: $0 [--build]" >&2; exit 2 ;;
  esac
done
export PATH=/usr/local/cuda/bin:$PATH

gpu=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | head -1) \
  || fail "nvidia-smi (no GPU here?)"
echo "side_by_side: $gpu; raw results in $out" >&2

if [[ $do_build -eq 1 ]]; then
  # As scripts/gpu_test.sh builds, but only the CLI.
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMLXN_CUDA=ON \
    >"$out/configure.log" 2>&1 || { tail -40 "$out/configure.log" >&2; fail "cmake configure"; }
  cmake --build "$build" -j "$(nproc)" --target mlxn_cli >"$out/build.log" 2>&1 \
    || { grep -E "error" -A3 "$out/build.log" | head -60 >&2; fail "build of mlxn_cli"; }
fi
mlxn=$build/mlxn  # the mlxn_cli target (OUTPUT_NAME mlxn) lands at the top of the build dir
[[ -x $mlxn ]] \
  || fail "no mlxn CLI at $mlxn: build it (--build, or scripts/gpu_test.sh) or set MLXN_BUILD_DIR"

given=()
[[ -n $tbs ]] && given=(--bandwidth-gbs "$(awk -v t="$tbs" 'BEGIN { printf "%g", t * 1000 }')")
inputs=()
for q in $quants; do
  echo "side_by_side: mlxn bench --quant $q" >&2
  "$mlxn" bench --synthetic llama3-8b --quant "$q" --prompt "$prompt" --gen "$gen" \
    "${given[@]}" --json >"$out/mlxn_$q.json" \
    || fail "mlxn bench --synthetic llama3-8b --quant $q (exit $?)"
  inputs+=("$out/mlxn_$q.json")
done
if [[ -z $tbs ]]; then
  # The ceiling of the whole table: the copy bandwidth the first mlxn run measured on this GPU.
  tbs=$("$python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["bandwidth_gbs"] / 1000)' \
    "${inputs[0]}") || fail "no measured copy bandwidth in ${inputs[0]}"
  echo "side_by_side: measured copy bandwidth ${tbs} TB/s" >&2
fi

echo "side_by_side: tools/torch_decode_bench.py ${TORCH_BENCH_ARGS:-}" >&2
torch_status=0
# shellcheck disable=SC2086  # TORCH_BENCH_ARGS is a list of words on purpose
PYTHONUNBUFFERED=1 "$python" "$root/tools/torch_decode_bench.py" --prompt "$prompt" --gen "$gen" \
  --bandwidth-tbs "$tbs" --json ${TORCH_BENCH_ARGS:-} >"$out/torch.jsonl" || torch_status=$?
# A failed torch variant still leaves its row (with the error) and those of the others: print
# the table first, then fail.
[[ -s $out/torch.jsonl ]] && inputs+=("$out/torch.jsonl")

heading="Llama-3-8B shape, random weights; batch 1, prompt $prompt, greedy decode of $gen tokens"
heading+="; median of 3 runs after 1 warm-up (both engines' defaults)"
"$python" "$root/tools/side_by_side_table.py" --gpu "$gpu" --bandwidth-tbs "$tbs" \
  --heading "$heading" "${inputs[@]}" | tee "$out/side_by_side.md" \
  || fail "tools/side_by_side_table.py"
[[ $torch_status -eq 0 ]] \
  || fail "tools/torch_decode_bench.py (exit $torch_status; see its rows and stderr above)"
