#!/usr/bin/env python3
"""Writes the tokenizer goldens: token ids and decoded text from the reference implementation
(Hugging Face `tokenizers`) for every tokenizer under the test data directory.

Run where `tokenizers` is installed (the GPU machine), after scripts/fetch_test_data.sh has filled
.testdata/ on the machine that has network and the tree has been carried over:

    python3 tools/make_tokenizer_goldens.py [--testdata .testdata/tokenizers]
        [--texts tools/tokenizer_texts.json] [--out tests/engine/tokenizer_goldens]

For each .testdata/tokenizers/<name>/ it writes tests/engine/tokenizer_goldens/<name>.json:
    {"tokenizer": name, "tokenizers_version": ..., "files": {file: sha256},
     "text": [...], "ids_special": [...], "ids_plain": [...],
     "decoded": [...], "decoded_skip_special": [...]}
where ids_special / ids_plain are encode(text, add_special_tokens=True / False).ids, decoded is
decode(ids_special) and decoded_skip_special is decode(ids_special, skip_special_tokens=True).
The C++ tests (tests/engine/tokenizer_test.cpp, tokenizer_gguf_test.cpp) compare against these.
"""
import argparse
import hashlib
import json
import os
import sys

try:
    import tokenizers
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors
except ImportError:
    sys.exit("make_tokenizer_goldens: the `tokenizers` package is needed (pip install tokenizers)")


def load(directory):
    """The reference tokenizer of one test directory."""
    path = os.path.join(directory, "tokenizer.json")
    if os.path.exists(path):
        return Tokenizer.from_file(path)
    vocab = os.path.join(directory, "vocab.json")
    merges = os.path.join(directory, "merges.txt")
    if os.path.exists(vocab) and os.path.exists(merges):
        # What transformers' GPT2TokenizerFast builds from these two files (and what
        # Tokenizer::from_directory mirrors).
        tok = Tokenizer(models.BPE.from_file(vocab, merges))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
        tok.add_special_tokens([AddedToken("<|endoftext|>", special=True, normalized=False)])
        return tok
    return None


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_golden(path, record):
    # One list element per line: readable diffs, and the ids of one text stay on one line.
    keys = list(record)
    with open(path, "w", encoding="utf-8") as f:
        f.write("{\n")
        for k, key in enumerate(keys):
            value = record[key]
            f.write("  " + json.dumps(key) + ": ")
            if isinstance(value, list):
                f.write("[\n")
                f.write(",\n".join("    " + json.dumps(v, ensure_ascii=True) for v in value))
                f.write("\n  ]")
            else:
                f.write(json.dumps(value, ensure_ascii=True, sort_keys=True))
            f.write(",\n" if k + 1 < len(keys) else "\n")
        f.write("}\n")


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--testdata", default=os.path.join(root, ".testdata", "tokenizers"))
    ap.add_argument("--texts", default=os.path.join(root, "tools", "tokenizer_texts.json"))
    ap.add_argument("--out", default=os.path.join(root, "tests", "engine", "tokenizer_goldens"))
    args = ap.parse_args()

    with open(args.texts, encoding="utf-8") as f:
        texts = json.load(f)
    if not os.path.isdir(args.testdata):
        sys.exit(f"make_tokenizer_goldens: {args.testdata} is missing; run scripts/fetch_test_data.sh")
    os.makedirs(args.out, exist_ok=True)

    for name in sorted(os.listdir(args.testdata)):
        directory = os.path.join(args.testdata, name)
        tok = load(directory) if os.path.isdir(directory) else None
        if tok is None:
            continue
        record = {
            "tokenizer": name,
            "tokenizers_version": tokenizers.__version__,
            "files": {fn: sha256(os.path.join(directory, fn)) for fn in sorted(os.listdir(directory))},
            "text": texts,
            "ids_special": [],
            "ids_plain": [],
            "decoded": [],
            "decoded_skip_special": [],
        }
        for text in texts:
            ids_special = tok.encode(text, add_special_tokens=True).ids
            record["ids_special"].append(ids_special)
            record["ids_plain"].append(tok.encode(text, add_special_tokens=False).ids)
            record["decoded"].append(tok.decode(ids_special, skip_special_tokens=False))
            record["decoded_skip_special"].append(tok.decode(ids_special, skip_special_tokens=True))
        out = os.path.join(args.out, name + ".json")
        write_golden(out, record)
        print(f"make_tokenizer_goldens: {out} ({len(texts)} texts, tokenizers {tokenizers.__version__})")


if __name__ == "__main__":
    main()
