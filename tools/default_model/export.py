"""Writes the default model in mlx-lm's 4-bit layout (through tools/parity/mlx_layout.py, the
same code that makes the parity fixtures) and checks that the written file decodes to exactly the
weights the 4-bit perplexity was measured on. numpy only.
"""

import json
import os
import shutil

import numpy as np
from parity import mlx_layout, safetensors_io
from parity.mlx_quant import affine_dequantize, bf16_to_f32, unpack_codes

RECIPE = "mlx4_g64"  # every Linear and the embedding at 4 bits, group 64; norms in bfloat16
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja")


def quantize(state, config):
    """state: {HF name: float32 array} of the trained model; config: its config.json dict.
    Returns (tensors for safetensors_io.save, config.json dict, reference state, counts), where
    the reference state is what a reader reconstructs (dequantized weights, bf16 values)."""
    return mlx_layout.build(state, config, RECIPE, tied=True, is_moe=False)


def verify(path, config, reference):
    """Reads `path` back and checks that every tensor decodes (w = scale * q + bias from the
    stored codes and bf16 scales/biases) to `reference` exactly. Returns the tensor count."""
    tensors, _ = safetensors_io.load(path)
    quant = config["quantization"]
    bits, group = quant["bits"], quant["group_size"]
    seen = set()
    for name, (dtype, array) in tensors.items():
        if name.endswith((".scales", ".biases")):
            continue
        module = name[: -len(".weight")] if name.endswith(".weight") else None
        if module and module + ".scales" in tensors:
            if dtype != "U32":
                raise RuntimeError(f"{path}: {name} is {dtype}, expected packed U32")
            n = array.shape[-1] * 32 // bits
            value = affine_dequantize(
                unpack_codes(array, bits, n),
                bf16_to_f32(tensors[module + ".scales"][1]),
                bf16_to_f32(tensors[module + ".biases"][1]),
                group,
            )
        elif dtype == "BF16":
            value = bf16_to_f32(array)
        else:
            raise RuntimeError(f"{path}: unexpected tensor {name} of {dtype}")
        if name not in reference:
            raise RuntimeError(f"{path}: {name} has no reference weight")
        if value.shape != reference[name].shape or not np.array_equal(value, reference[name]):
            raise RuntimeError(f"{path}: {name} does not decode to the weights that were evaluated")
        seen.add(name)
    missing = set(reference) - seen - {"lm_head.weight"}
    if missing:
        raise RuntimeError(f"{path}: tensors missing: {sorted(missing)}")
    return len(tensors)


def generation_config(special):
    return {
        "bos_token_id": special["<|bos|>"],
        # <|end|> closes a chat turn, <|eos|> a plain text: either ends generation.
        "eos_token_id": [special["<|eos|>"], special["<|end|>"]],
        "pad_token_id": special["<|pad|>"],
        "do_sample": False,
    }


def licenses_text(sources, copyrights):
    """CORPUS_LICENSES.txt: which packages the training text came from and their copyright files."""
    lines = [
        "The default model was trained on fortune-cookie databases from these Debian packages.",
        "Their copyright files follow, as the packages ship them.",
        "",
    ]
    for s in sources:
        lines.append(f"  {s.get('package')} {s.get('version')}: {s.get('license')}")
    for name, text in copyrights.items():
        lines += ["", "=" * 78, f"{name}: /usr/share/doc/{name}/copyright", "=" * 78, text.rstrip()]
    return "\n".join(lines) + "\n"


def write_json(path, value):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2, ensure_ascii=False)
        f.write("\n")


def write_model_dir(out, tensors, qconfig, tokenizer_dir, special, licenses):
    """Replaces `out` with the quantized model, its tokenizer files, generation_config.json and
    CORPUS_LICENSES.txt (README.md and training_log.json are written by the caller). The files go
    to a sibling temporary folder first, so a failure leaves the old model in place."""
    tmp = out.rstrip("/") + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    write_json(os.path.join(tmp, "config.json"), qconfig)
    safetensors_io.save(os.path.join(tmp, "model.safetensors"), tensors, {"format": "mlx"})
    for name in TOKENIZER_FILES:
        shutil.copyfile(os.path.join(tokenizer_dir, name), os.path.join(tmp, name))
    write_json(os.path.join(tmp, "generation_config.json"), generation_config(special))
    with open(os.path.join(tmp, "CORPUS_LICENSES.txt"), "w", encoding="utf-8") as f:
        f.write(licenses)
    shutil.rmtree(out, ignore_errors=True)
    os.rename(tmp, out)
    return out


def file_sizes(directory):
    return {
        name: os.path.getsize(os.path.join(directory, name))
        for name in sorted(os.listdir(directory))
        if os.path.isfile(os.path.join(directory, name))
    }
