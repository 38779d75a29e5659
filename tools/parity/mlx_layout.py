"""mlx-lm's on-disk layout of a quantized model, built from a Hugging Face state dict.

mlx-lm quantizes every nn.Linear and nn.Embedding whose input size is a multiple of the group
size (norms and biases stay in the float dtype), stacks a MoE layer's experts into
`mlp.switch_mlp.{gate,up,down}_proj` [experts, out, in], drops lm_head when the embeddings are
tied, keeps Phi-3's fused qkv_proj / gate_up_proj, and records the quantization in config.json
under "quantization" (and a copy under "quantization_config"): the default group_size / bits,
plus one entry per module quantized differently, keyed by the module path.
"""

import copy
import re

import numpy as np

from .mlx_quant import bf16_bits, bf16_round, quantize_module

# Recipes: default (bits, group_size) and per-module overrides by the module's last name.
RECIPES = {
    "mlx4_g64": {"default": (4, 64), "rules": []},
    "mlx8_g32": {"default": (8, 32), "rules": []},
    "mlx3_g32": {"default": (3, 32), "rules": []},
    # A mixed recipe in the spirit of mlx-lm's mixed_* predicates: more bits where errors hurt.
    "mlx_mixed": {
        "default": (4, 64),
        "rules": [
            (("v_proj", "down_proj"), (8, 64)),
            (("lm_head", "embed_tokens"), (6, 64)),
        ],
    },
}

# mlx-lm's qwen3_moe model keeps the router at 8 bits, group 64, whatever the recipe.
MOE_ROUTER_PARAMS = (8, 64)

_EXPERT = re.compile(
    r"^(model\.layers\.\d+\.mlp)\.experts\.(\d+)\.(gate_proj|up_proj|down_proj)\.weight$"
)
_SWITCH = re.compile(
    r"^(model\.layers\.\d+\.mlp)\.switch_mlp\.(gate_proj|up_proj|down_proj)\.weight$"
)


def to_mlx_names(state, tied):
    """HF tensors (per-expert MoE names) -> mlx-lm tensors (experts stacked in switch_mlp)."""
    out = {}
    experts = {}  # (prefix, proj) -> {index: array}
    for name, value in state.items():
        m = _EXPERT.match(name)
        if m:
            experts.setdefault((m.group(1), m.group(3)), {})[int(m.group(2))] = value
            continue
        if tied and name == "lm_head.weight":
            continue  # mlx-lm's sanitize drops it; the embedding serves as the output layer
        out[name] = value
    for (prefix, proj), by_index in experts.items():
        n = len(by_index)
        if sorted(by_index) != list(range(n)):
            raise ValueError(f"{prefix}: expert indices {sorted(by_index)} are not 0..{n - 1}")
        out[f"{prefix}.switch_mlp.{proj}.weight"] = np.stack([by_index[i] for i in range(n)])
    return out


def from_mlx_names(mlx_state, hf_names):
    """Inverse of to_mlx_names for the names in `hf_names` (tied lm_head is not restored)."""
    out = {}
    for name, value in mlx_state.items():
        m = _SWITCH.match(name)
        if m:
            for i in range(value.shape[0]):
                out[f"{m.group(1)}.experts.{i}.{m.group(2)}.weight"] = value[i]
        else:
            out[name] = value
    missing = sorted(set(hf_names) - set(out) - {"lm_head.weight"})
    extra = sorted(set(out) - set(hf_names))
    if missing or extra:
        raise ValueError(f"mlx layout does not map back: missing {missing}, extra {extra}")
    return out


def module_params(recipe, module, is_moe):
    """(bits, group_size) for `module` (a path without '.weight') under `recipe`."""
    if is_moe and module.endswith(".mlp.gate"):
        return MOE_ROUTER_PARAMS
    leaf = module.rsplit(".", 1)[-1]  # "v_proj" must not catch Phi-3's fused "qkv_proj"
    for names, params in recipe["rules"]:
        if leaf in names:
            return params
    return recipe["default"]


def set_dtype(config, dtype):
    """Sets the float dtype under the key(s) the config uses (5.x: dtype, 4.x: torch_dtype)."""
    keys = [k for k in ("dtype", "torch_dtype") if k in config] or ["dtype"]
    for k in keys:
        config[k] = dtype


def build(state, config, recipe_name, tied, is_moe):
    """Builds one mlx-lm quantized model from a float32 HF state dict.

    Returns (tensors for safetensors_io.save, config dict, reference HF state dict, counts).
    Every float tensor is first rounded to bfloat16 (mlx-lm converts a bfloat16 model); the
    reference state holds exactly what a reader reconstructs: dequantized weights (from the
    stored bfloat16 scales and biases) and the bfloat16 values of everything else.
    """
    recipe = RECIPES[recipe_name]
    default_bits, default_group = recipe["default"]
    mlx_float = to_mlx_names(state, tied)
    tensors, reference, overrides = {}, {}, {}
    counts = {}
    for name in sorted(mlx_float):
        w = bf16_round(mlx_float[name])
        if name.endswith(".weight") and w.ndim >= 2:
            module = name[: -len(".weight")]
            bits, group = module_params(recipe, module, is_moe)
            if w.shape[-1] % group == 0:
                packed, s_bits, b_bits, deq = quantize_module(w, bits, group)
                tensors[name] = ("U32", packed)
                tensors[module + ".scales"] = ("BF16", s_bits)
                tensors[module + ".biases"] = ("BF16", b_bits)
                reference[name] = deq
                if (bits, group) != (default_bits, default_group):
                    overrides[module] = {"group_size": group, "bits": bits}
                key = f"{bits}-bit g{group}"
                counts[key] = counts.get(key, 0) + 1
                continue
        tensors[name] = ("BF16", bf16_bits(w))
        reference[name] = w
        counts["bf16"] = counts.get("bf16", 0) + 1
    quant = {"group_size": default_group, "bits": default_bits, "mode": "affine"}
    quant.update(overrides)
    out_config = copy.deepcopy(config)
    set_dtype(out_config, "bfloat16")
    out_config.pop("quantization_config", None)
    out_config["quantization"] = quant
    out_config["quantization_config"] = copy.deepcopy(quant)
    return tensors, out_config, from_mlx_names(reference, state.keys()), counts
