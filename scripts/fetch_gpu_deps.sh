#!/usr/bin/env bash
# Run on the Debian development machine (it has network): downloads the -dev packages of the
# libraries mlxn links that the GPU machine (Ubuntu 24.04, no network) lacks -- PCRE2 and utf8proc,
# used by the tokenizer -- and unpacks their headers and static archives into .deps/usr. CMake
# prefers .deps/usr when it exists, so a build there links them statically and needs no runtime
# package. Carry .deps to the GPU machine along with the tree.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
deps=$root/.deps
packages=(libpcre2-dev libutf8proc-dev)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# apt-get download needs no root; it does need the package lists (apt-get update) to be current.
(cd "$tmp" && apt-get download "${packages[@]}")
rm -rf "$tmp/root" "$deps/usr"
mkdir -p "$tmp/root" "$deps"
for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$tmp/root"; done

# Keep only what the build uses: the headers and the static 8-bit PCRE2 and utf8proc archives
# (the .so links would dangle without the runtime packages).
arch_lib=$(cd "$tmp/root/usr/lib" && ls -d */ | head -n1)
arch_lib=${arch_lib%/}
mkdir -p "$deps/usr/include" "$deps/usr/lib/$arch_lib"
cp "$tmp/root/usr/include/pcre2.h" "$tmp/root/usr/include/utf8proc.h" "$deps/usr/include/"
cp "$tmp/root/usr/lib/$arch_lib/libpcre2-8.a" "$tmp/root/usr/lib/$arch_lib/libutf8proc.a" \
  "$deps/usr/lib/$arch_lib"
echo "fetch_gpu_deps: $(cd "$deps" && find usr -type f | sort | tr '\n' ' ')"
