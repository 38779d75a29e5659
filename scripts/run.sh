#!/usr/bin/env bash
# Fresh machine -> installed dependencies, a build, and the main job: text generation with the
# bundled default model (models/default), greedy, on CUDA when a GPU is present, else the CPU.
# Arguments replace the default prompt and options, e.g. scripts/run.sh --prompt "Computers are".
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install_deps.sh"
"$root/scripts/build.sh"
if [[ $# -eq 0 ]]; then
  set -- --prompt "The meaning of life is" --temperature 0 --max-tokens 64
fi
"${MLXN_BUILD_DIR:-$root/build}/mlxn" generate "$@"
