#!/usr/bin/env bash
# On an NVIDIA GPU machine with no network (Ubuntu 24.04, CUDA 13): builds with CUDA, runs the
# whole test suite including the `cuda` tests, the CUDA tests under compute-sanitizer (memcheck
# and racecheck), the selftest, and optionally the benchmarks. Logs go to $OUT when it is set.
#   scripts/gpu_test.sh            build + tests + sanitizer
#   scripts/gpu_test.sh --bench    also run the benchmarks
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${MLXN_BUILD_DIR:-$root/build-gpu}
out=${OUT:-$build/logs}
mkdir -p "$out"
status=0
export PATH=/usr/local/cuda/bin:$PATH

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMLXN_CUDA=ON >"$out/configure.log" 2>&1 \
  || { tail -40 "$out/configure.log"; exit 1; }
cmake --build "$build" -j 16 >"$out/build.log" 2>&1 || { grep -E "error" -A3 "$out/build.log" | head -60; exit 1; }
echo "== build ok"

"$build/mlxn" devices
"$build/mlxn" selftest || status=1

ctest --test-dir "$build" --output-on-failure -j 4 --timeout 300 >"$out/ctest.log" 2>&1 || status=1
grep -E "tests passed|tests failed|Failed|\*\*\*" "$out/ctest.log" | tail -30

# The event-based timeline fallback (used where 64-bit stream memory operations are missing).
MLXN_CUDA_TIMELINE=events "$build/tests/mlxn_core_tests" --gtest_filter='*Session*/Cuda*' \
  --gtest_brief=1 >"$out/events_timeline.log" 2>&1 && echo "event timeline sessions: ok" \
  || { echo "event timeline sessions: FAILED"; tail -20 "$out/events_timeline.log"; status=1; }

# compute-sanitizer over the CUDA-labelled tests of each test binary.
for bin in mlxn_core_tests mlxn_ops_tests; do
  for tool in memcheck racecheck; do
    log="$out/sanitizer_${bin}_${tool}.log"
    compute-sanitizer --tool "$tool" --error-exitcode 99 "$build/tests/$bin" \
      --gtest_filter="${MLXN_SANITIZE_FILTER:-*Cuda*}" \
      --gtest_brief=1 >"$log" 2>&1
    rc=$?
    summary=$(grep -E "ERROR SUMMARY|RACECHECK SUMMARY" "$log" | tail -1)
    echo "sanitizer $tool $bin: rc=$rc ${summary}"
    [[ $rc -eq 0 ]] || status=1
  done
done

if [[ "${1:-}" == "--bench" ]]; then
  # Runtime overheads on both backends; every other benchmark on CUDA only (arg /1): the CPU
  # backend at Llama-3-8B shapes would take minutes and is not what these numbers are for.
  "$build/bench/mlxn_bench" --benchmark_filter="${MLXN_BENCH_FILTER:-^BM_(DispatchEncode|EmptyCommandBufferRoundTrip|FenceSignalWaitPair|Chain300Direct|Chain300GraphReplay)/|/1(/|$)}" \
    --benchmark_out="$out/bench.json" --benchmark_out_format=json 2>&1 | tee "$out/bench.txt" | tail -80
fi
echo "== gpu_test status=$status"
exit $status
