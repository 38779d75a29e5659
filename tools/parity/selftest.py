#!/usr/bin/env python3
"""Checks of the numpy half of the parity-fixture generator, runnable without torch:

    python3 tools/parity/selftest.py [--cli build/mlxn] [--keep DIR]

- MLX affine quantization against a line-by-line scalar transcription of MLX's CPU kernel,
  bit packing against a big-integer bit stream, bfloat16 rounding against struct;
- Q8_0 / Q4_0 blocks against scalar transcriptions of ggml's reference quantizers;
- the GGUF writer and the safetensors writer by parsing their output back independently;
- the llama.cpp q/k permutation against its definition;
- with --cli, synthetic models of every family (random tensors under the Hugging Face names of
  a config built from families.spec) written in every MLX and GGUF layout and validated by
  `mlxn inspect`, which runs mlxn's config parser and per-family tensor check.
"""

import argparse
import json
import math
import os
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from parity import families as fams  # noqa: E402
from parity import gguf_layout, gguf_writer, mlx_layout, mlx_quant, safetensors_io  # noqa: E402

FAILURES = []


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print("FAIL:", what)


f32 = np.float32


# ---------------------------------------------------------------------------------------------
# bfloat16


def bf16_scalar(x):
    (u,) = struct.unpack("<I", struct.pack("<f", float(x)))
    lsb = (u >> 16) & 1
    return ((u + 0x7FFF + lsb) >> 16) & 0xFFFF


def test_bf16(rng):
    x = (rng.standard_normal(5000) * 10.0 ** rng.integers(-8, 8, 5000)).astype(np.float32)
    # Exact ties: low 16 bits 0x8000 round to even.
    ties = np.array([0x3F808000, 0x3F818000, 0xBF808000], dtype=np.uint32).view(np.float32)
    x = np.concatenate([x, ties])
    got = mlx_quant.bf16_bits(x)
    want = np.array([bf16_scalar(v) for v in x], dtype=np.uint16)
    check(np.array_equal(got, want), "bf16_bits matches the scalar rounding")
    check(got[-3] == 0x3F80 and got[-2] == 0x3F82 and got[-1] == 0xBF80, "bf16 ties go to even")
    back = mlx_quant.bf16_to_f32(got)
    check(np.all(np.abs(back - x) <= np.abs(x) * 2.0**-8), "bf16 error within half an ulp")


# ---------------------------------------------------------------------------------------------
# MLX quantization


def mlx_group_scalar(w, bits):
    """MLX's CPU quantize() for one group, transcribed with numpy float32 scalars."""
    n_bins = f32((1 << bits) - 1)
    eps = f32(1e-7)
    w_max, w_min = f32(-np.inf), f32(np.inf)
    for v in w:
        w_max = max(w_max, f32(v))
        w_min = min(w_min, f32(v))
    mask = abs(w_min) > abs(w_max)
    scale = max(f32((w_max - w_min) / n_bins), eps)
    scale = scale if mask else f32(-scale)
    edge = w_min if mask else w_max
    q0 = f32(np.rint(f32(edge / scale)))
    bias = f32(0)
    if q0 != 0:
        scale = f32(edge / q0)
        bias = edge
    codes = []
    for v in w:
        q = f32(np.rint(f32(f32(f32(v) - bias) / scale)))
        codes.append(int(min(max(q, f32(0)), n_bins)))
    return codes, scale, bias


def test_mlx_quant(rng):
    for bits in (3, 4, 5, 6, 8):
        for group in (32, 64):
            w = (rng.standard_normal((6, 128)) * 0.1).astype(np.float32)
            w[0, :group] = 0.0  # an all-zero group
            w[1, :group] = np.abs(w[1, :group]) + 0.01  # positive only: max is the edge
            w[2, :group] = -np.abs(w[2, :group]) - 0.01  # negative only: min is the edge
            w[3, :group] = 0.25  # a constant group
            codes, scales, biases = mlx_quant.affine_quantize(w, bits, group)
            ok = True
            for r in range(w.shape[0]):
                for g in range(128 // group):
                    c, s, b = mlx_group_scalar(w[r, g * group : (g + 1) * group], bits)
                    ok &= list(codes[r, g * group : (g + 1) * group]) == c
                    ok &= scales[r, g] == s and biases[r, g] == b
            check(ok, f"affine_quantize matches MLX's kernel ({bits}-bit, group {group})")
            deq = mlx_quant.affine_dequantize(codes, scales, biases, group)
            err = np.abs(deq - w).reshape(-1, group).max(axis=1)
            step = np.abs(scales).reshape(-1)
            check(
                np.all(err <= step * 1.5 + 1e-6), f"dequantization error <= 1.5 steps ({bits}-bit)"
            )
            # The edge (the extreme of larger magnitude) is reproduced exactly.
            groups = w.reshape(-1, group)
            edge_idx = np.argmax(np.abs(groups), axis=1)
            rows = np.arange(groups.shape[0])
            check(
                np.array_equal(deq.reshape(-1, group)[rows, edge_idx], groups[rows, edge_idx]),
                f"the edge value is exact ({bits}-bit, group {group})",
            )


def pack_scalar(codes, bits):
    stream = 0
    for j, c in enumerate(codes):
        stream |= int(c) << (j * bits)
    n_words = len(codes) * bits // 32
    return [(stream >> (32 * i)) & 0xFFFFFFFF for i in range(n_words)]


def test_packing(rng):
    for bits in (2, 3, 4, 5, 6, 8):
        codes = rng.integers(0, 1 << bits, size=(3, 128)).astype(np.uint8)
        words = mlx_quant.pack_codes(codes, bits)
        check(
            words.dtype == np.uint32 and words.shape == (3, 128 * bits // 32),
            f"packed shape ({bits}-bit)",
        )
        want = np.array([pack_scalar(r, bits) for r in codes], dtype=np.uint32)
        check(
            np.array_equal(words, want), f"packing is one LSB-first bit stream per row ({bits}-bit)"
        )
        check(
            np.array_equal(mlx_quant.unpack_codes(words, bits, 128), codes),
            f"unpack inverts pack ({bits}-bit)",
        )
    # 4-bit: element k of a word sits at bits 4k (MLX's shifts 0, 4, ..., 28).
    codes = rng.integers(0, 16, size=(1, 64)).astype(np.uint8)
    words = mlx_quant.pack_codes(codes, 4)
    check(
        all(int(words[0, 0] >> (4 * k)) & 15 == codes[0, k] for k in range(8)), "4-bit nibble order"
    )


def test_quantize_module(rng):
    w = (rng.standard_normal((2, 8, 64)) * 0.1).astype(np.float32)  # stacked experts
    packed, s_bits, b_bits, deq = mlx_quant.quantize_module(w, 4, 32)
    check(packed.shape == (2, 8, 8) and s_bits.shape == (2, 8, 2), "stacked module shapes")
    codes = mlx_quant.unpack_codes(packed, 4, 64)
    recon = mlx_quant.affine_dequantize(
        codes, mlx_quant.bf16_to_f32(s_bits), mlx_quant.bf16_to_f32(b_bits), 32
    )
    check(np.array_equal(recon, deq), "dequantized reference == decode of what is stored")
    check(np.max(np.abs(deq - w)) < 0.05, "4-bit reconstruction is close")


# ---------------------------------------------------------------------------------------------
# GGML blocks


def q8_0_scalar(x):
    amax = f32(0)
    for v in x:
        amax = max(amax, abs(f32(v)))
    d = f32(amax / f32(127))
    inv = f32(f32(1) / d) if d != 0 else f32(0)
    q = [int(math.copysign(math.floor(abs(float(f32(f32(v) * inv))) + 0.5), float(v))) for v in x]
    return np.float16(d), q


def q4_0_scalar(x):
    amax, vmax = f32(0), f32(0)
    for v in x:
        if amax < abs(f32(v)):
            amax, vmax = abs(f32(v)), f32(v)
    d = f32(vmax / f32(-8))
    inv = f32(f32(1) / d) if d != 0 else f32(0)
    q = [min(15, int(f32(f32(f32(v) * inv) + f32(8.5)))) for v in x]
    return np.float16(d), q


def test_ggml_blocks(rng):
    x = (rng.standard_normal((4, 64)) * 0.1).astype(np.float32)
    x[0, :32] = 0.0
    x[1, 5] = 0.3
    x[1, 9] = -0.3  # equal magnitudes: the first one sets the Q4_0 sign
    data = np.frombuffer(gguf_writer.quantize_q8_0(x), dtype=np.uint8).reshape(-1, 34)
    ok = True
    for i, block in enumerate(x.reshape(-1, 32)):
        d, q = q8_0_scalar(block)
        ok &= data[i, :2].copy().view("<f2")[0] == d
        ok &= list(data[i, 2:].view(np.int8)) == q
    check(ok, "Q8_0 blocks match ggml's reference quantizer")
    data = np.frombuffer(gguf_writer.quantize_q4_0(x), dtype=np.uint8).reshape(-1, 18)
    ok = True
    for i, block in enumerate(x.reshape(-1, 32)):
        d, q = q4_0_scalar(block)
        ok &= data[i, :2].copy().view("<f2")[0] == d
        ok &= [int(b) & 15 for b in data[i, 2:]] == q[:16] and [
            int(b) >> 4 for b in data[i, 2:]
        ] == q[16:]
    check(ok, "Q4_0 blocks match ggml's reference quantizer (nibble order too)")
    for t, tol in (
        (gguf_writer.GGML_F16, 1e-3),
        (gguf_writer.GGML_Q8_0, 0.01),
        (gguf_writer.GGML_Q4_0, 0.25),
    ):
        back = gguf_writer.roundtrip(x, t)
        rel = np.linalg.norm(back - x) / np.linalg.norm(x)
        check(
            back.shape == x.shape and rel < tol,
            f"{gguf_writer.GGML_TYPE_NAMES[t]} round trip rel {rel:.2e}",
        )
    check(
        np.array_equal(gguf_writer.roundtrip(x, gguf_writer.GGML_F32), x), "F32 round trip is exact"
    )


# ---------------------------------------------------------------------------------------------
# GGUF file format, parsed back independently


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, fmt):
        size = struct.calcsize(fmt)
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return values[0] if len(values) == 1 else values

    def string(self):
        n = self.take("<Q")
        s = self.data[self.pos : self.pos + n].decode("utf-8")
        self.pos += n
        return s

    def value(self, t):
        fmts = {
            0: "<B",
            1: "<b",
            2: "<H",
            3: "<h",
            4: "<I",
            5: "<i",
            6: "<f",
            7: "<?",
            10: "<Q",
            11: "<q",
            12: "<d",
        }
        if t == 8:
            return self.string()
        if t == 9:
            et, n = self.take("<I"), self.take("<Q")
            return [self.value(et) for _ in range(n)]
        return self.take(fmts[t])


def parse_gguf(path):
    data = open(path, "rb").read()
    r = Reader(data)
    assert data[:4] == b"GGUF"
    r.pos = 4
    version, n_tensors, n_kv = r.take("<I"), r.take("<Q"), r.take("<Q")
    kv = {}
    for _ in range(n_kv):
        key = r.string()
        kv[key] = r.value(r.take("<I"))
    infos = []
    for _ in range(n_tensors):
        name = r.string()
        nd = r.take("<I")
        dims = [r.take("<Q") for _ in range(nd)]
        infos.append((name, dims, r.take("<I"), r.take("<Q")))
    start = (r.pos + 31) // 32 * 32
    return version, kv, infos, start, data


def test_gguf_file(rng, tmp):
    w = gguf_writer.GgufWriter()
    w.add_string("general.architecture", "llama")
    w.add_u32("llama.block_count", 2)
    w.add_f32("llama.rope.freq_base", 10000.0)
    w.add_array("tokenizer.ggml.tokens", gguf_writer.STRING, ["a", "bc", ""])
    w.add_array("tokenizer.ggml.token_type", gguf_writer.INT32, [1, 3, -1])
    tensors = {
        "a.weight": (
            (rng.standard_normal((3, 64)) * 0.1).astype(np.float32),
            gguf_writer.GGML_Q4_0,
        ),
        "b.weight": ((rng.standard_normal(7)).astype(np.float32), gguf_writer.GGML_F32),
        "c.weight": (
            (rng.standard_normal((2, 32)) * 0.1).astype(np.float32),
            gguf_writer.GGML_Q8_0,
        ),
        "d.weight": ((rng.standard_normal((5, 3))).astype(np.float32), gguf_writer.GGML_F16),
    }
    for name, (x, t) in tensors.items():
        w.add_tensor(name, x, t)
    path = os.path.join(tmp, "t.gguf")
    size = w.write(path)
    version, kv, infos, start, data = parse_gguf(path)
    check(size == len(data) and version == 3, "GGUF version 3, size as reported")
    check(
        kv["general.architecture"] == "llama" and kv["llama.block_count"] == 2, "GGUF scalar values"
    )
    check(kv["tokenizer.ggml.tokens"] == ["a", "bc", ""], "GGUF string array")
    check(kv["tokenizer.ggml.token_type"] == [1, 3, -1], "GGUF int32 array")
    check(abs(kv["llama.rope.freq_base"] - 10000.0) < 1e-3, "GGUF float32 value")
    ok = True
    for name, dims, t, off in infos:
        x, want_t = tensors[name]
        ok &= t == want_t and dims == list(reversed(x.shape)) and off % 32 == 0
        nbytes = len(gguf_writer.encode(x, t))
        got = gguf_writer.decode(data[start + off : start + off + nbytes], t, x.shape)
        ok &= np.array_equal(got, gguf_writer.roundtrip(x, t))
    check(ok, "GGUF tensor infos (GGML dim order, types, aligned offsets) and data")


def test_safetensors(rng, tmp):
    path = os.path.join(tmp, "t.safetensors")
    a = rng.standard_normal((3, 4)).astype(np.float32)
    b = mlx_quant.bf16_bits(rng.standard_normal(5).astype(np.float32))
    c = rng.integers(0, 2**32, size=(2, 2), dtype=np.uint64).astype(np.uint32)
    safetensors_io.save(
        path, {"a": ("F32", a), "b": ("BF16", b), "c": ("U32", c)}, {"format": "mlx"}
    )
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    check(
        n % 8 == 0 and header["__metadata__"] == {"format": "mlx"},
        "safetensors header padded, metadata",
    )
    check(header["b"]["dtype"] == "BF16" and header["b"]["shape"] == [5], "safetensors BF16 entry")
    back, meta = safetensors_io.load(path)
    check(
        np.array_equal(back["a"][1], a)
        and np.array_equal(back["b"][1], b)
        and np.array_equal(back["c"][1], c),
        "safetensors round trip",
    )


def test_permutation(rng):
    n_head, hd = 2, 8
    w = np.arange(n_head * hd * 3, dtype=np.float32).reshape(n_head * hd, 3)
    p = gguf_layout.permute_rows(w, n_head)
    # Row r = h * hd + 2 * i + j of the result is HF row h * hd + j * hd / 2 + i.
    want = np.stack(
        [
            w[h * hd + j * (hd // 2) + i]
            for h in range(n_head)
            for i in range(hd // 2)
            for j in range(2)
        ]
    )
    check(np.array_equal(p, want), "llama q/k permutation interleaves the two rotary halves")
    check(np.array_equal(gguf_layout.unpermute_rows(p, n_head), w), "unpermute inverts permute")
    b = np.arange(n_head * hd, dtype=np.float32)
    check(
        np.array_equal(gguf_layout.unpermute_rows(gguf_layout.permute_rows(b, n_head), n_head), b),
        "1-D permute",
    )


# ---------------------------------------------------------------------------------------------
# Synthetic models of every family, checked by mlxn inspect

MODEL_TYPES = {
    "LlamaConfig": ("llama", "LlamaForCausalLM"),
    "MistralConfig": ("mistral", "MistralForCausalLM"),
    "Qwen2Config": ("qwen2", "Qwen2ForCausalLM"),
    "Qwen3Config": ("qwen3", "Qwen3ForCausalLM"),
    "Qwen3MoeConfig": ("qwen3_moe", "Qwen3MoeForCausalLM"),
    "Gemma2Config": ("gemma2", "Gemma2ForCausalLM"),
    "Gemma3TextConfig": ("gemma3_text", "Gemma3ForCausalLM"),
    "Phi3Config": ("phi3", "Phi3ForCausalLM"),
}


def synthetic_config(name):
    s = fams.spec(name, v5=True)
    model_type, arch = MODEL_TYPES[s["cls"]]
    config = {"architectures": [arch], "model_type": model_type, "dtype": "float32"}
    config.update(s["kwargs"])
    config.update(s["optional"])
    return config, s


def synthetic_state(config, rng, gemma):
    h, v = config["hidden_size"], config["vocab_size"]
    nh, nkv = config["num_attention_heads"], config["num_key_value_heads"]
    hd = config.get("head_dim") or h // nh
    ff = config["intermediate_size"]
    mt = config["model_type"]
    shapes = {"model.embed_tokens.weight": (v, h), "model.norm.weight": (h,)}
    if not config["tie_word_embeddings"]:
        shapes["lm_head.weight"] = (v, h)
    for layer in range(config["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        shapes[p + "input_layernorm.weight"] = (h,)
        shapes[p + "post_attention_layernorm.weight"] = (h,)
        if gemma:
            shapes[p + "pre_feedforward_layernorm.weight"] = (h,)
            shapes[p + "post_feedforward_layernorm.weight"] = (h,)
        if mt == "phi3":
            shapes[p + "self_attn.qkv_proj.weight"] = ((nh + 2 * nkv) * hd, h)
        else:
            shapes[p + "self_attn.q_proj.weight"] = (nh * hd, h)
            shapes[p + "self_attn.k_proj.weight"] = (nkv * hd, h)
            shapes[p + "self_attn.v_proj.weight"] = (nkv * hd, h)
        if mt == "qwen2":
            shapes[p + "self_attn.q_proj.bias"] = (nh * hd,)
            shapes[p + "self_attn.k_proj.bias"] = (nkv * hd,)
            shapes[p + "self_attn.v_proj.bias"] = (nkv * hd,)
        shapes[p + "self_attn.o_proj.weight"] = (h, nh * hd)
        if mt in ("qwen3", "qwen3_moe", "gemma3_text"):
            shapes[p + "self_attn.q_norm.weight"] = (hd,)
            shapes[p + "self_attn.k_norm.weight"] = (hd,)
        if mt == "qwen3_moe":
            e, f = config["num_experts"], config["moe_intermediate_size"]
            shapes[p + "mlp.gate.weight"] = (e, h)
            for i in range(e):
                shapes[p + f"mlp.experts.{i}.gate_proj.weight"] = (f, h)
                shapes[p + f"mlp.experts.{i}.up_proj.weight"] = (f, h)
                shapes[p + f"mlp.experts.{i}.down_proj.weight"] = (h, f)
        elif mt == "phi3":
            shapes[p + "mlp.gate_up_proj.weight"] = (2 * ff, h)
            shapes[p + "mlp.down_proj.weight"] = (h, ff)
        else:
            shapes[p + "mlp.gate_proj.weight"] = (ff, h)
            shapes[p + "mlp.up_proj.weight"] = (ff, h)
            shapes[p + "mlp.down_proj.weight"] = (h, ff)
    state = {}
    for k, shape in shapes.items():
        x = rng.standard_normal(shape).astype(np.float32) * np.float32(0.1)
        if k.endswith("norm.weight") and not gemma:
            x += np.float32(1)
        state[k] = x
    return state


def inspect(cli, path):
    r = subprocess.run([cli, "inspect", path, "--json"], capture_output=True, text=True)
    if r.returncode != 0:
        return None, (r.stderr or r.stdout).strip()
    return json.loads(r.stdout), None


def test_layouts(rng, tmp, cli):
    for name in fams.FAMILIES + ["llama_gguf"]:
        config, s = synthetic_config(name)
        state = synthetic_state(config, rng, s["gemma"])
        tied = config["tie_word_embeddings"]
        for kind in mlx_layout.RECIPES:
            tensors, qconfig, ref, counts = mlx_layout.build(state, config, kind, tied, s["moe"])
            check(
                set(ref) == set(state) - ({"lm_head.weight"} if tied else set()),
                f"{name} {kind}: reference names",
            )
            worst = max(
                float(np.linalg.norm(ref[k] - state[k]) / np.linalg.norm(state[k])) for k in ref
            )
            check(
                worst < 0.25,
                f"{name} {kind}: reference close to the original (worst rel {worst:.3f})",
            )
            if s["moe"]:
                routers = [k for k in qconfig["quantization"] if k.endswith(".mlp.gate")]
                check(
                    len(routers) == config["num_hidden_layers"], f"{name} {kind}: router overrides"
                )
            if cli:
                d = os.path.join(tmp, f"{name}_{kind}")
                os.makedirs(d, exist_ok=True)
                with open(os.path.join(d, "config.json"), "w") as f:
                    json.dump(qconfig, f, indent=2)
                safetensors_io.save(
                    os.path.join(d, "model.safetensors"), tensors, {"format": "mlx"}
                )
                out, err = inspect(cli, d)
                ok = (
                    out is not None
                    and out.get("weights", {}).get("checked")
                    and out["weights"]["unused_tensors"] == 0
                )
                check(
                    bool(ok),
                    f"{name} {kind}: mlxn inspect accepts it ({err or out.get('weights')})",
                )
        family = "llama" if name == "llama_gguf" else name
        if family not in gguf_layout.ARCHITECTURES or name == "llama":
            continue
        for t in (
            gguf_writer.GGML_F32,
            gguf_writer.GGML_F16,
            gguf_writer.GGML_Q8_0,
            gguf_writer.GGML_Q4_0,
        ):
            path = os.path.join(tmp, f"{family}_{t}.gguf")
            _, ref, types = gguf_layout.build(
                state, config, family, t, path, f"selftest {family}", tied
            )
            tname = gguf_writer.GGML_TYPE_NAMES[t]
            if t == gguf_writer.GGML_F32:
                # Exact, except that Gemma norms went through w + 1 (the reader applies w + 1).
                exact = all(
                    np.array_equal(ref[k] + np.float32(1), state[k] + np.float32(1))
                    if s["gemma"] and k.endswith("norm.weight")
                    else np.array_equal(ref[k], state[k])
                    for k in ref
                )
                check(exact, f"{family} GGUF F32: reference exact")
            worst = max(
                float(np.linalg.norm(ref[k] - state[k]) / np.linalg.norm(state[k])) for k in ref
            )
            check(worst < 0.2, f"{family} GGUF {tname}: reference close (worst rel {worst:.3f})")
            if cli:
                out, err = inspect(cli, path)
                ok = (
                    out is not None
                    and out.get("weights", {}).get("checked")
                    and out["weights"]["unused_tensors"] == 0
                )
                check(
                    bool(ok),
                    f"{family} GGUF {tname}: mlxn inspect accepts it ({err or out.get('weights')})",
                )
                if ok:
                    c = out["config"]
                    check(
                        c["vocab_size"] == config["vocab_size"]
                        and c["head_dim"] == 64
                        and c["num_key_value_heads"] == 1
                        and c["tie_word_embeddings"] == tied,
                        f"{family} GGUF {tname}: config read back ({c})",
                    )
                    if family == "gemma3_text":
                        check(
                            c.get("sliding_layers") == 1 and c.get("sliding_window") == 16,
                            f"gemma3 GGUF: layer 0 sliding, window 16 ({c})",
                        )


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--cli", help="path of the mlxn binary, to validate the synthetic models")
    p.add_argument("--keep", help="write the synthetic models here instead of a temporary folder")
    args = p.parse_args()
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or tmp
        os.makedirs(work, exist_ok=True)
        test_bf16(rng)
        test_mlx_quant(rng)
        test_packing(rng)
        test_quantize_module(rng)
        test_ggml_blocks(rng)
        test_gguf_file(rng, work)
        test_safetensors(rng, work)
        test_permutation(rng)
        test_layouts(rng, work, args.cli)
    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed")
        return 1
    print("all checks passed" + ("" if args.cli else " (mlxn inspect not run: no --cli)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
