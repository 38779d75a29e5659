#!/usr/bin/env bash
# Installs the reference tokenizer that tools/make_tokenizer_goldens.mjs runs: the npm package
# `tokenizers` (Hugging Face's Node binding of the Rust tokenizers library, prebuilt binaries
# inside) at a pinned version and tarball checksum, into .testdata/node/ with
# `npm install --prefix`. For machines without the Python `tokenizers` package but with npm.
# Does nothing when that version is already installed. Needs `npm` and network.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest=${MLXN_TESTDATA_DIR:-$root/.testdata}/node

pkg=tokenizers
version=0.23.2
sha256=d5196036d6e7ef5934659618ef8f911080bf95f6ba6a2e42c243196a0ea50bc4

installed=$dest/node_modules/$pkg/package.json
if [[ -f "$installed" ]] &&
  [[ $(node -p "require(process.argv[1]).version" "$installed" 2>/dev/null) == "$version" ]]; then
  echo "fetch_golden_tools: $pkg@$version already in $dest"
  exit 0
fi
if ! command -v npm >/dev/null; then
  echo "fetch_golden_tools: npm is needed (apt-get install npm)" >&2
  exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Fetch the tarball first so that its checksum is checked before anything is installed.
tarball=$(cd "$tmp" && npm pack --silent "$pkg@$version" | tail -n1)
if [[ $(sha256sum "$tmp/$tarball" | cut -d' ' -f1) != "$sha256" ]]; then
  echo "fetch_golden_tools: sha256 mismatch for $pkg@$version ($tarball)" >&2
  exit 1
fi
mkdir -p "$dest"
# Kept next to the install: package.json refers to it (file:...), so later npm runs there work.
mv "$tmp/$tarball" "$dest/$tarball"
echo "fetch_golden_tools: $pkg@$version -> $dest"
(cd "$dest" && npm install --prefix . --no-audit --no-fund --save-exact "./$tarball")
echo "fetch_golden_tools: ok ($(node -p "require(process.argv[1]).version" "$installed"))"
