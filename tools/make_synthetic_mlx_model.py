#!/usr/bin/env python3
"""Writes a model directory laid out like an mlx-community 4-bit Llama checkpoint, with random
weights: what `mlxn generate --model DIR` loads to measure process start to first token
(performance issue 7) where no real 8B model can be fetched.

The defaults are Meta-Llama-3-8B's shape (hidden 4096, 32 layers, 32 heads / 8 KV heads, MLP
14336, vocabulary 128256, untied lm_head) quantized like mlx_lm does it (affine, 4 bits, group 64):
every linear layer, the embedding and lm_head are stored as U32 codes [out, in*bits/32] plus
bf16 `.scales` / `.biases` [out, in/group]; the norms are bf16. The byte count and every tensor's
name, dtype and shape are those of mlx-community/Meta-Llama-3-8B-Instruct-4bit (~4.5 GB), so
loading it costs what loading the real model costs. Shards follow mlx_lm's save_model: greedy in
model order up to --shard-gb, `model.safetensors` when one file is enough, otherwise
`model-0000i-of-0000n.safetensors`, and always a `model.safetensors.index.json`.

Weights are random 4-bit codes with per-group scales of about 1 / (std(code) * sqrt(in)) and
biases of -(2^bits - 1)/2 * scale, so each weight row is centred with a variance of 1/in and the
activations stay finite (and the logits of order 1) through all the layers.

The tokenizer matters to the measurement as well: `mlxn generate` loads it before the weights,
and parsing Llama 3's tokenizer.json (128000 tokens, 280147 merges) takes a noticeable part of a
second. `--tokenizer synthetic` (the default) therefore writes a byte-level BPE tokenizer of the
same construction and size as Llama 3's: the same pre-tokenizer (Llama 3's split regex +
ByteLevel), decoder and post-processor, vocab_size - 256 BPE tokens (random merges of byte
strings) and about as many merges per token, and the 256 special tokens of Llama 3 at the top of
the id range with its chat template, so every id the model can produce decodes. `--tokenizer DIR`
copies tokenizer.json / tokenizer_config.json from DIR instead (e.g. a real Llama 3 tokenizer);
ids the copied tokenizer does not know are allowed (mlxn skips them when decoding, as the
reference does) but reported.

Standard library only (no numpy, no safetensors package), deterministic for a given --seed.
About 4.5 GB are written for the default shape; the time is mostly the disk's (15 s on a
2-core VM writing 0.4 GB/s, of which 2.5 s build the tokenizer). The directory is built under a temporary name and renamed at the end, so an
interrupted run never leaves a directory that looks complete.

Usage:
  tools/make_synthetic_mlx_model.py --out /tmp/llama3-8b-4bit-synthetic
  tools/make_synthetic_mlx_model.py --out /tmp/tiny --layers 2 --hidden 256 --intermediate 512 \\
      --heads 4 --kv-heads 2 --vocab 1024
"""

import argparse
import json
import math
import os
import random
import shutil
import struct
import sys
import time

POOL_BYTES = 32 << 20  # random bytes generated once; packed codes are slices of it
CHUNK_BYTES = 4 << 20  # write size; each chunk starts at a random offset of the pool
STAMP_NAME = "synthetic_model.json"

# Llama 3's pre-tokenizer split pattern (tokenizer.json of Meta-Llama-3-8B).
LLAMA3_SPLIT_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# Meta-Llama-3-8B-Instruct's chat template.
LLAMA3_CHAT_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
    "{% endif %}"
)

# Llama 3's merges per BPE token (280147 merges / 127744 tokens beyond the 256 bytes).
LLAMA3_MERGES_PER_TOKEN = 280147 / 127744


def fail(msg):
    print(f"make_synthetic_mlx_model: error: {msg}", file=sys.stderr)
    sys.exit(1)


def log(msg):
    print(f"make_synthetic_mlx_model: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# float encodings

def bf16_bytes(x):
    """x as little-endian bfloat16 (round to nearest even)."""
    (u,) = struct.unpack("<I", struct.pack("<f", x))
    u += 0x7FFF + ((u >> 16) & 1)
    return struct.pack("<H", (u >> 16) & 0xFFFF)


def f16_bytes(x):
    return struct.pack("<e", x)


def float_bytes(x, dtype):
    return bf16_bytes(x) if dtype == "BF16" else f16_bytes(x)


def tiled(pattern, n_bytes):
    """pattern repeated (and cut) to exactly n_bytes."""
    reps, rem = divmod(n_bytes, len(pattern))
    return pattern * reps + pattern[:rem]


# ---------------------------------------------------------------------------------------------
# tensors

class Tensor:
    """One tensor to write: name, safetensors dtype, shape and a writer of its bytes."""

    def __init__(self, name, dtype, shape, nbytes, write):
        self.name, self.dtype, self.shape = name, dtype, shape
        self.nbytes, self.write = nbytes, write


class Source:
    """Seeded random bytes for the packed codes, and the float patterns of scales/biases."""

    def __init__(self, seed, bits, float_dtype):
        self.rng = random.Random(seed)
        t0 = time.time()
        mib = (self.rng.randbytes(1 << 20) for _ in range(POOL_BYTES >> 20))
        self.pool = memoryview(b"".join(mib))
        self.pool_seconds = time.time() - t0
        self.bits = bits
        self.float_dtype = float_dtype
        self.elt = 2  # bf16 / f16
        # std of a uniform code in [0, 2^bits - 1]
        self.code_std = math.sqrt(((1 << bits) ** 2 - 1) / 12.0)

    def write_codes(self, f, nbytes):
        while nbytes > 0:
            n = min(nbytes, CHUNK_BYTES)
            off = self.rng.randrange(0, (POOL_BYTES - n) // 4 + 1) * 4
            f.write(self.pool[off:off + n])
            nbytes -= n

    def group_patterns(self, fan_in):
        """(scales, biases) byte patterns of a prime number of groups, jittered +-25% around the
        scale that gives the weights a variance of 1/fan_in; bias = -(2^bits-1)/2 * scale, so
        every group is centred."""
        base = 1.0 / (self.code_std * math.sqrt(fan_in))
        mid = ((1 << self.bits) - 1) / 2.0
        scales, biases = bytearray(), bytearray()
        for _ in range(4093):
            s = base * self.rng.uniform(0.75, 1.25)
            sb = float_bytes(s, self.float_dtype)
            # the bias from the rounded scale, so that the centre is exact up to bias rounding
            if self.float_dtype == "BF16":
                (s_r,) = struct.unpack("<f", b"\x00\x00" + sb)
            else:
                (s_r,) = struct.unpack("<e", sb)
            scales += sb
            biases += float_bytes(-mid * s_r, self.float_dtype)
        return bytes(scales), bytes(biases)


def quantized(src, module, n_out, n_in, group):
    """The three tensors mlx_lm stores for a quantized Linear / Embedding [n_out, n_in]."""
    packed = n_in * src.bits // 32
    n_groups = n_in // group
    scales, biases = src.group_patterns(n_in)
    fd = src.float_dtype
    gbytes = n_out * n_groups * src.elt
    return [
        Tensor(module + ".weight", "U32", [n_out, packed], n_out * packed * 4,
               lambda f, n=n_out * packed * 4: src.write_codes(f, n)),
        Tensor(module + ".scales", fd, [n_out, n_groups], gbytes,
               lambda f, p=scales: f.write(tiled(p, gbytes))),
        Tensor(module + ".biases", fd, [n_out, n_groups], gbytes,
               lambda f, p=biases: f.write(tiled(p, gbytes))),
    ]


def norm(src, name, n):
    one = float_bytes(1.0, src.float_dtype)
    return Tensor(name, src.float_dtype, [n], n * src.elt, lambda f: f.write(one * n))


def model_tensors(a, src):
    """Every tensor, in the order mlx_lm's tree_flatten of a Llama model gives them."""
    head_dim = a.hidden // a.heads
    q, kv = a.heads * head_dim, a.kv_heads * head_dim
    h, f, g = a.hidden, a.intermediate, a.group_size
    out = quantized(src, "model.embed_tokens", a.vocab, h, g)
    for i in range(a.layers):
        p = f"model.layers.{i}."
        out += quantized(src, p + "self_attn.q_proj", q, h, g)
        out += quantized(src, p + "self_attn.k_proj", kv, h, g)
        out += quantized(src, p + "self_attn.v_proj", kv, h, g)
        out += quantized(src, p + "self_attn.o_proj", h, q, g)
        out += quantized(src, p + "mlp.gate_proj", f, h, g)
        out += quantized(src, p + "mlp.down_proj", h, f, g)
        out += quantized(src, p + "mlp.up_proj", f, h, g)
        out.append(norm(src, p + "input_layernorm.weight", h))
        out.append(norm(src, p + "post_attention_layernorm.weight", h))
    out.append(norm(src, "model.norm.weight", h))
    out += quantized(src, "lm_head", a.vocab, h, g)
    return out


def make_shards(tensors, shard_bytes):
    """mlx_lm's make_shards: greedy in order, a new shard when the next tensor would overflow."""
    shards, cur, size = [], [], 0
    for t in tensors:
        if cur and size + t.nbytes > shard_bytes:
            shards.append(cur)
            cur, size = [], 0
        cur.append(t)
        size += t.nbytes
    if cur:
        shards.append(cur)
    return shards


def write_safetensors(path, tensors):
    header = {"__metadata__": {"format": "mlx"}}
    off = 0
    for t in tensors:
        header[t.name] = {"dtype": t.dtype, "shape": t.shape, "data_offsets": [off, off + t.nbytes]}
        off += t.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(8 + len(text)) % 8)  # data aligned to 8 bytes, as the reference writer does
    with open(path, "wb", buffering=CHUNK_BYTES) as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for t in tensors:
            before = f.tell()
            t.write(f)
            if f.tell() - before != t.nbytes:
                raise AssertionError(f"{t.name}: wrote {f.tell() - before} bytes, not {t.nbytes}")
    return 8 + len(text) + off


# ---------------------------------------------------------------------------------------------
# tokenizer

def bytes_to_unicode():
    """GPT-2's byte -> printable character map of byte-level BPE."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def llama3_special_names(n):
    """Llama 3's special tokens, in id order, cut to n (n >= 10)."""
    names = ["<|begin_of_text|>", "<|end_of_text|>"] + \
        [f"<|reserved_special_token_{i}|>" for i in range(4)] + \
        ["<|start_header_id|>", "<|end_header_id|>", "<|reserved_special_token_4|>", "<|eot_id|>"]
    i = 5
    while len(names) < n:
        names.append(f"<|reserved_special_token_{i}|>")
        i += 1
    return names[:n]


def synthetic_bpe(n_tokens, rng):
    """A byte-level BPE vocabulary of n_tokens (>= 256) tokens and its merges, built to look like
    a real one where it matters for loading and encoding: the 256 byte characters, the pairs of
    common characters (letters, digits, punctuation and the space marker), then longer tokens
    made by appending a character to an existing token, mostly only where the token's last
    characters plus the new one are a token already -- so that, as in a real vocabulary, most
    prefixes and suffixes of a token are tokens too and a token can be merged from several
    splits. The merges are one per token, then the other splits of the tokens in order, up to
    Llama 3's merges per token."""
    chars = bytes_to_unicode()
    byte_chars = [chars[b] for b in range(256)]
    vocab = {c: i for i, c in enumerate(byte_chars)}
    tokens = list(byte_chars)
    merges = []
    following = {}  # token -> characters c with token + c in the vocabulary

    def add(a, b):
        t = a + b
        if t in vocab:
            return False
        vocab[t] = len(tokens)
        tokens.append(t)
        merges.append((a, b))
        following.setdefault(t[:-1], []).append(t[-1])
        return True

    lower = [chars[b] for b in b"abcdefghijklmnopqrstuvwxyz"]
    common = lower + [chars[b] for b in b" ABCDEFGHIJKLMNOPRSTW.,'-0123456789"]
    for a in common:
        for b in lower + [chars[b] for b in b" .,"]:
            if len(tokens) < n_tokens:
                add(a, b)
    tails = lower * 8 + [chars[b] for b in b"etaoinshrdlu"] * 8 + byte_chars
    while len(tokens) < n_tokens:
        a = tokens[256 + rng.randrange(len(tokens) - 256)]
        if len(a) >= 16:
            continue
        nxt = following.get(a[1:])
        r = rng.random()
        if nxt and r < 0.97:
            b = nxt[rng.randrange(len(nxt))]
        elif nxt or r < 0.1:  # now and then a new pattern
            b = tails[rng.randrange(len(tails))]
        else:
            continue
        add(a, b)
    target = round((n_tokens - 256) * LLAMA3_MERGES_PER_TOKEN)
    seen = set(merges)
    for t in tokens[256:]:
        if len(merges) >= target:
            break
        for i in range(1, len(t)):
            a, b = t[:i], t[i:]
            if a in vocab and b in vocab and (a, b) not in seen:
                seen.add((a, b))
                merges.append((a, b))
    return vocab, merges


def added_token(i, content):
    return {"id": i, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": False, "special": True}


def write_synthetic_tokenizer(out, vocab_size, rng):
    n_special = 256 if vocab_size >= 4096 else 16
    n_bpe = vocab_size - n_special
    if n_bpe < 256:
        fail(f"--vocab {vocab_size} is too small for a byte-level tokenizer "
             f"(needs 256 byte tokens + {n_special} special tokens)")
    vocab, merges = synthetic_bpe(n_bpe, rng)
    specials = llama3_special_names(n_special)
    bos = specials[0]
    added = [added_token(n_bpe + i, s) for i, s in enumerate(specials)]
    tok = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": LLAMA3_SPLIT_REGEX}, "behavior": "Isolated",
             "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
             "use_regex": False},
        ]},
        "post_processor": {"type": "Sequence", "processors": [
            {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False,
             "use_regex": True},
            {"type": "TemplateProcessing",
             "single": [{"SpecialToken": {"id": bos, "type_id": 0}},
                        {"Sequence": {"id": "A", "type_id": 0}}],
             "pair": [{"SpecialToken": {"id": bos, "type_id": 0}},
                      {"Sequence": {"id": "A", "type_id": 0}},
                      {"SpecialToken": {"id": bos, "type_id": 1}},
                      {"Sequence": {"id": "B", "type_id": 1}}],
             "special_tokens": {bos: {"id": bos, "ids": [n_bpe], "tokens": [bos]}}},
        ]},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": True,
                  "vocab": vocab, "merges": [f"{a} {b}" for a, b in merges]},
    }
    with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False, indent=2)
    config = {
        "added_tokens_decoder": {str(a["id"]): {k: v for k, v in a.items() if k != "id"}
                                 for a in added},
        "bos_token": bos,
        "chat_template": LLAMA3_CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": True,
        "eos_token": "<|eot_id|>",
        "model_input_names": ["input_ids", "attention_mask"],
        "model_max_length": 1000000000000000019884624838656,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }
    with open(os.path.join(out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, ensure_ascii=False, indent=2)
    ids = {s: n_bpe + i for i, s in enumerate(specials)}
    info = {"kind": "synthetic", "tokens": len(vocab) + len(added), "merges": len(merges)}
    return ids["<|begin_of_text|>"], [ids["<|end_of_text|>"], ids["<|eot_id|>"]], info


def copy_tokenizer(out, src_dir, vocab_size):
    tj = os.path.join(src_dir, "tokenizer.json")
    if not os.path.isfile(tj):
        fail(f"--tokenizer {src_dir}: no tokenizer.json there")
    with open(tj, encoding="utf-8") as f:
        tok = json.load(f)
    ids = {}
    for k, v in (tok.get("model", {}).get("vocab") or {}).items():
        ids[k] = v
    for a in tok.get("added_tokens", []):
        ids[a["content"]] = a["id"]
    n_ids = max(ids.values()) + 1 if ids else 0
    if n_ids > vocab_size:
        fail(f"--tokenizer {src_dir}: its ids reach {n_ids - 1}, beyond --vocab {vocab_size}; "
             f"the model could be fed ids it has no embedding for")
    if n_ids < vocab_size:
        log(f"note: the tokenizer knows ids [0, {n_ids}) of the model's {vocab_size}; "
            f"generated ids beyond it decode to nothing (mlxn skips unknown ids, as "
            f"transformers does)")
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                 "chat_template.jinja"):
        if os.path.isfile(os.path.join(src_dir, name)):
            shutil.copyfile(os.path.join(src_dir, name), os.path.join(out, name))
    cfg = {}
    if os.path.isfile(os.path.join(src_dir, "tokenizer_config.json")):
        with open(os.path.join(src_dir, "tokenizer_config.json"), encoding="utf-8") as f:
            cfg = json.load(f)

    def token_id(key):
        v = cfg.get(key)
        if isinstance(v, dict):
            v = v.get("content")
        return ids.get(v) if isinstance(v, str) else None

    bos = token_id("bos_token")
    eos = [i for i in (token_id("eos_token"), ids.get("<|eot_id|>")) if i is not None]
    src_gen = os.path.join(src_dir, "generation_config.json")
    if os.path.isfile(src_gen):
        with open(src_gen, encoding="utf-8") as f:
            g = json.load(f)
        bos = g.get("bos_token_id", bos)
        e = g.get("eos_token_id", eos)
        eos = e if isinstance(e, list) else [e]
    info = {"kind": "copied", "from": os.path.abspath(src_dir), "tokens": n_ids,
            "merges": len(tok.get("model", {}).get("merges") or [])}
    return bos, sorted(set(eos)), info


# ---------------------------------------------------------------------------------------------

def config_json(a, bos, eos):
    q = {"group_size": a.group_size, "bits": a.bits}
    return {
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": bos,
        "eos_token_id": eos if len(eos) != 1 else eos[0],
        "hidden_act": "silu",
        "hidden_size": a.hidden,
        "initializer_range": 0.02,
        "intermediate_size": a.intermediate,
        "max_position_embeddings": a.max_position,
        "mlp_bias": False,
        "model_type": "llama",
        "num_attention_heads": a.heads,
        "num_hidden_layers": a.layers,
        "num_key_value_heads": a.kv_heads,
        "pretraining_tp": 1,
        "quantization": q,
        "quantization_config": dict(q),
        "rms_norm_eps": a.rms_norm_eps,
        "rope_scaling": None,
        "rope_theta": a.rope_theta,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16" if a.dtype == "bf16" else "float16",
        "transformers_version": "4.40.0",
        "use_cache": True,
        "vocab_size": a.vocab,
    }


def stamp_args(a):
    """The arguments that decide the directory's content (recorded, and compared by --reuse)."""
    return {k: v for k, v in vars(a).items() if k not in ("out", "force", "reuse")}


def parse_args(argv):
    ap = argparse.ArgumentParser(
        description="Write an mlx-community style quantized Llama model with random weights "
                    "(default: Llama-3-8B shape, 4-bit g64, ~4.5 GB).")
    ap.add_argument("--out", required=True, help="directory to create")
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--hidden", type=int, default=4096)
    ap.add_argument("--intermediate", type=int, default=14336)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=8)
    ap.add_argument("--vocab", type=int, default=128256)
    ap.add_argument("--bits", type=int, default=4, choices=[2, 3, 4, 5, 6, 8])
    ap.add_argument("--group-size", type=int, default=64, choices=[32, 64, 128])
    ap.add_argument("--dtype", default="bf16", choices=["bf16", "f16"],
                    help="dtype of scales, biases and norms (default bf16)")
    ap.add_argument("--max-position", type=int, default=8192)
    ap.add_argument("--rope-theta", type=float, default=500000.0)
    ap.add_argument("--rms-norm-eps", type=float, default=1e-5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shard-gb", type=float, default=5.0,
                    help="largest shard in GB (10^9 bytes; mlx_lm's default 5)")
    ap.add_argument("--tokenizer", default="synthetic",
                    help="'synthetic' (default: a Llama-3-sized byte-level BPE covering the whole "
                         "vocabulary) or a directory to copy tokenizer.json/tokenizer_config.json "
                         "from")
    ap.add_argument("--force", action="store_true", help="replace --out if it exists")
    ap.add_argument("--reuse", action="store_true",
                    help="if --out exists and was written by this tool with the same arguments, "
                         "keep it and exit (with different arguments: replace it)")
    a = ap.parse_args(argv)
    for name in ("layers", "hidden", "intermediate", "heads", "kv_heads", "vocab", "max_position"):
        if getattr(a, name) <= 0:
            fail(f"--{name.replace('_', '-')} must be positive")
    if a.hidden % a.heads:
        fail(f"--hidden {a.hidden} is not a multiple of --heads {a.heads}")
    if a.heads % a.kv_heads:
        fail(f"--heads {a.heads} is not a multiple of --kv-heads {a.kv_heads}")
    for name in ("hidden", "intermediate"):
        v = getattr(a, name)
        if v % a.group_size or (v * a.bits) % 32:
            fail(f"--{name} {v} must be a multiple of --group-size {a.group_size} and fill whole "
                 f"32-bit words at {a.bits} bits")
    if a.shard_gb <= 0:
        fail("--shard-gb must be positive")
    return a


def main(argv):
    a = parse_args(argv)
    t_start = time.time()
    out = os.path.abspath(a.out)
    if a.tokenizer != "synthetic":
        a.tokenizer = os.path.abspath(a.tokenizer)
    if os.path.exists(out) and a.reuse:
        stamp_path = os.path.join(out, STAMP_NAME)
        if not os.path.isfile(stamp_path):
            fail(f"{out} exists but was not written by this tool (no {STAMP_NAME}); "
                 f"remove it or choose another --out")
        with open(stamp_path) as f:
            old_args = json.load(f).get("args")
        if old_args == stamp_args(a):
            log(f"{out} is up to date (same arguments), kept")
            print(out)
            return
        log(f"{out} was written with other arguments: replacing it")
    elif os.path.exists(out) and not a.force:
        fail(f"{out} exists (pass --force to replace it, or --reuse)")
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    tmp = f"{out}.tmp-{os.getpid()}"
    if os.path.exists(tmp):
        shutil.rmtree(tmp)
    os.makedirs(tmp)
    try:
        src = Source(a.seed, a.bits, "BF16" if a.dtype == "bf16" else "F16")
        tensors = model_tensors(a, src)
        total = sum(t.nbytes for t in tensors)
        free = shutil.disk_usage(parent).free
        if free < total + (64 << 20):
            fail(f"{parent} has {free / 1e9:.2f} GB free; the model needs {total / 1e9:.2f} GB")
        log(f"{len(tensors)} tensors, {total / 1e9:.3f} GB of weights -> {out}")

        t0 = time.time()
        tok_rng = random.Random(a.seed + 1)
        if a.tokenizer == "synthetic":
            bos, eos, tok_info = write_synthetic_tokenizer(tmp, a.vocab, tok_rng)
        else:
            bos, eos, tok_info = copy_tokenizer(tmp, a.tokenizer, a.vocab)
        t_tok = time.time() - t0
        log(f"tokenizer ({tok_info['kind']}): {tok_info['tokens']} tokens, "
            f"{tok_info['merges']} merges in {t_tok:.1f} s")

        t0 = time.time()
        shards = make_shards(tensors, int(a.shard_gb * 1e9))
        names = ["model.safetensors"] if len(shards) == 1 else \
            [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
        weight_map = {}
        for name, shard in zip(names, shards):
            size = write_safetensors(os.path.join(tmp, name), shard)
            for t in shard:
                weight_map[t.name] = name
            log(f"  {name}: {len(shard)} tensors, {size / 1e9:.3f} GB")
        t_weights = time.time() - t0
        index = {"metadata": {"total_size": total},
                 "weight_map": {k: weight_map[k] for k in sorted(weight_map)}}
        with open(os.path.join(tmp, "model.safetensors.index.json"), "w") as f:
            json.dump(index, f, indent=4)
        with open(os.path.join(tmp, "config.json"), "w") as f:
            json.dump(config_json(a, bos, eos), f, indent=4)
        with open(os.path.join(tmp, "generation_config.json"), "w") as f:
            json.dump({"bos_token_id": bos, "eos_token_id": eos if len(eos) != 1 else eos[0]}, f,
                      indent=2)
        stamp = {
            "generator": "tools/make_synthetic_mlx_model.py",
            "note": "random weights: the shape and byte count of a real checkpoint, not its output",
            "args": stamp_args(a),
            "weights_bytes": total,
            "tokenizer": tok_info,
        }
        with open(os.path.join(tmp, STAMP_NAME), "w") as f:
            json.dump(stamp, f, indent=2)
        if os.path.exists(out):
            shutil.rmtree(out)
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    elapsed = time.time() - t_start
    log(f"done in {elapsed:.1f} s (random pool {src.pool_seconds:.1f} s, tokenizer {t_tok:.1f} s, "
        f"weights {t_weights:.1f} s = {total / 1e9 / max(t_weights, 1e-9):.2f} GB/s)")
    print(out)


if __name__ == "__main__":
    main(sys.argv[1:])
