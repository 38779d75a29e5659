#!/usr/bin/env bash
# Builds the libFuzzer harnesses (clang, ASan + UBSan) and runs each for a bounded time.
#   scripts/fuzz.sh [seconds-per-harness]   (default 60)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${MLXN_FUZZ_BUILD_DIR:-$root/build-fuzz}
seconds=${1:-60}
cxx=$(command -v clang++-14 || command -v clang++ || true)
[[ -n "$cxx" ]] || { echo "fuzz.sh: clang++ not found (install clang-14 libclang-rt-14-dev)"; exit 1; }
CXX=$cxx cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMLXN_FUZZ=ON \
  -DMLXN_CUDA=OFF -DMLXN_BUILD_TESTS=OFF -DMLXN_BUILD_BENCH=OFF >/dev/null
targets=()
for src in "$root"/fuzz/*_fuzz.cpp; do targets+=("$(basename "$src" .cpp)"); done
cmake --build "$build" -j "${MLXN_JOBS:-$(nproc)}" --target "${targets[@]}"
for harness in "${targets[@]/#/$build/fuzz/}"; do
  name=$(basename "$harness")
  corpus="$build/corpus/$name"
  mkdir -p "$corpus"
  # Seeds: the checked-in examples for this format, if any.
  seeds="$root/fuzz/seeds/${name%_fuzz}"
  echo "== $name: ${seconds}s"
  log="$build/$name.log"
  rc=0
  "$harness" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    "$corpus" $( [[ -d "$seeds" ]] && echo "$seeds" ) >"$log" 2>&1 || rc=$?
  grep -E "stat::number_of_executed_units|ERROR|SUMMARY" "$log" || true
  if [[ $rc -ne 0 ]]; then
    echo "$name: crash or failure (exit $rc); log: $log"
    tail -40 "$log"
    exit 1
  fi
done
echo "fuzz: all harnesses ran clean"
