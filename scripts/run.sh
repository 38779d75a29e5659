#!/usr/bin/env bash
# Fresh machine -> installed dependencies, a build, and the main job.
# Until text generation lands, the main job is `mlxn selftest`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install_deps.sh"
"$root/scripts/build.sh"
"${MLXN_BUILD_DIR:-$root/build}/mlxn" selftest
