#!/usr/bin/env bash
# Configures and builds mlxn into build/ (CUDA backend included when nvcc is found).
# Extra arguments go to cmake's configure step, e.g. -DMLXN_CUDA=OFF.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${MLXN_BUILD_DIR:-$root/build}
jobs=${MLXN_JOBS:-$(nproc)}
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "$build" -j "$jobs"
