#!/usr/bin/env bash
# Run on the Debian development machine (it has network): downloads the -dev packages of the
# libraries mlxn links that a GPU machine (no network) may lack and unpacks them into .deps/usr.
# Carry .deps to the GPU machine along with the tree.
# - PCRE2 and utf8proc (the tokenizer): headers and static archives; CMake prefers these over
#   the system's, so a build links them statically and needs no runtime package.
# - GoogleTest/GoogleMock, Google Benchmark (and its shared runtime) and nlohmann-json: whole
#   packages under .deps/usr/full; CMake looks there only after the system prefixes, so a machine
#   that has its own (the H100 and H200 images so far) keeps using those, and an image without
#   them still builds the tests and benchmarks.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
deps=$root/.deps
packages=(libpcre2-dev libutf8proc-dev)
fallback=(libgtest-dev libgmock-dev libbenchmark-dev libbenchmark1debian nlohmann-json3-dev)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# apt-get download needs no root; it does need the package lists (apt-get update) to be current.
mkdir -p "$tmp/text" "$tmp/fallback"
(cd "$tmp/text" && apt-get download "${packages[@]}")
(cd "$tmp/fallback" && apt-get download "${fallback[@]}")
rm -rf "$tmp/root" "$deps/usr"
mkdir -p "$tmp/root" "$deps/usr/full"
for deb in "$tmp"/text/*.deb; do dpkg-deb -x "$deb" "$tmp/root"; done
for deb in "$tmp"/fallback/*.deb; do dpkg-deb -x "$deb" "$deps"; done
# dpkg-deb -x unpacks under usr/: move the fallback packages' tree to usr/full.
for d in "$deps"/usr/*; do [[ $(basename "$d") == full ]] || mv "$d" "$deps/usr/full/"; done
rm -rf "$deps/usr/full/share/doc"

# Keep only what the build uses: the headers and the static 8-bit PCRE2 and utf8proc archives
# (the .so links would dangle without the runtime packages).
arch_lib=$(cd "$tmp/root/usr/lib" && ls -d */ | head -n1)
arch_lib=${arch_lib%/}
mkdir -p "$deps/usr/include" "$deps/usr/lib/$arch_lib"
cp "$tmp/root/usr/include/pcre2.h" "$tmp/root/usr/include/utf8proc.h" "$deps/usr/include/"
cp "$tmp/root/usr/lib/$arch_lib/libpcre2-8.a" "$tmp/root/usr/lib/$arch_lib/libutf8proc.a" \
  "$deps/usr/lib/$arch_lib"
echo "fetch_gpu_deps: $(cd "$deps" && find usr -maxdepth 3 -type f | sort | tr '\n' ' ')"
echo "fetch_gpu_deps: fallback packages in $deps/usr/full: ${fallback[*]}"
