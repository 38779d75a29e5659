"""The tiny model families of the parity fixtures: transformers config arguments and notes.

Dimensions are shared: vocab 256, hidden 64 (128 for the families whose config class derives
head_dim = hidden / heads: Qwen2, Qwen3-MoE, Phi-3), 2 query heads x head_dim 64, 1 KV head (GQA),
intermediate 128 (MoE experts 64), 2 layers, 128 positions, RMSNorm eps 1e-6, bos 1 / eos 2 / pad 0 (set
explicitly so every family starts the token sequence with the same bos). The config arguments
differ between transformers 4.x (rope_theta + rope_scaling) and 5.x (rope_parameters).
"""

import dataclasses
import inspect

VOCAB = 256
HIDDEN = 64  # kept small: the fixtures are committed
HEADS = 2
HEAD_DIM = 64
KV_HEADS = 1
INTERMEDIATE = 128
MOE_INTERMEDIATE = 64
LAYERS = 2
MAX_POSITIONS = 128
EPS = 1e-6
WINDOW = 16
BOS, EOS, PAD = 1, 2, 0

FAMILIES = ["llama", "mistral", "qwen2", "qwen3", "qwen3_moe", "gemma2", "gemma3_text", "phi3"]
# Families that also get GGUF cases, with their llama.cpp architecture.
GGUF_FAMILIES = {"llama": "llama", "qwen2": "qwen2", "qwen3": "qwen3", "gemma3_text": "gemma3"}
# A fixed seed per family, independent of which families a run selects.
SEEDS = {name: 1000 + 17 * i for i, name in enumerate(FAMILIES + ["llama_gguf"])}

# LongRoPE factors (head_dim / 2 entries): short ~1, long growing to 4 across the frequencies.
PHI3_ORIGINAL_MAX_POSITIONS = 32
PHI3_SHORT_FACTOR = [round(1.0 + 0.25 * i / (HEAD_DIM // 2 - 1), 4) for i in range(HEAD_DIM // 2)]
PHI3_LONG_FACTOR = [round(1.0 + 3.0 * i / (HEAD_DIM // 2 - 1), 4) for i in range(HEAD_DIM // 2)]

LLAMA3_SCALING = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 32,
}

SLIDING_NOTE = (
    f"sliding window {WINDOW}: query i sees keys j with i - {WINDOW} < j <= i (transformers' "
    "mask); the 40-token sequence is longer than the window"
)


def _rope(v5, theta, scaling=None):
    """RoPE arguments: 5.x rope_parameters, or 4.x rope_theta (+ rope_scaling)."""
    if v5:
        params = {"rope_type": "default", "rope_theta": float(theta)}
        if scaling:
            params.update(scaling)
        return {"rope_parameters": params}
    kwargs = {"rope_theta": float(theta)}
    if scaling:
        kwargs["rope_scaling"] = dict(scaling)
    return kwargs


def _common(tie, hidden=HIDDEN):
    return {
        "vocab_size": VOCAB,
        "hidden_size": hidden,
        "intermediate_size": INTERMEDIATE,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "max_position_embeddings": MAX_POSITIONS,
        "rms_norm_eps": EPS,
        "bos_token_id": BOS,
        "eos_token_id": EOS,
        "pad_token_id": PAD,
        "tie_word_embeddings": tie,
    }


def spec(name, v5):
    """The config of family `name` ("llama_gguf" is the plain-RoPE Llama of the GGUF cases).

    Returns a dict: cls (transformers config class name), kwargs (always passed), optional
    (passed only where the class declares them: head_dim equals hidden / heads for every family
    but Gemma, whose head_dim field is always declared), gemma (norms applied as 1 + w), moe,
    notes.
    """
    s = {"optional": {}, "gemma": False, "moe": False}
    if name == "llama":
        s["cls"] = "LlamaConfig"
        s["kwargs"] = {**_common(True), **_rope(v5, 500000.0, LLAMA3_SCALING)}
        s["optional"] = {"head_dim": HEAD_DIM}
        s["notes"] = (
            "Llama with llama3 RoPE scaling (theta 500000, factor 8, low 1, high 4, original 32: "
            "head_dim 64 has frequencies in all three bands) and tied embeddings"
        )
    elif name == "llama_gguf":
        s["cls"] = "LlamaConfig"
        s["kwargs"] = {**_common(False), **_rope(v5, 500000.0)}
        s["optional"] = {"head_dim": HEAD_DIM}
        s["notes"] = (
            "a separate Llama for the GGUF cases: default RoPE (theta 500000; llama.cpp stores "
            "llama3 scaling as a rope_freqs tensor that mlxn does not read) and an untied output; "
            "attn_q / attn_k rows are in llama.cpp's permuted (interleaved-pair) order"
        )
    elif name == "mistral":
        s["cls"] = "MistralConfig"
        s["kwargs"] = {**_common(False), **_rope(v5, 1000000.0), "sliding_window": WINDOW}
        s["optional"] = {"head_dim": HEAD_DIM}
        s["notes"] = "Mistral, every layer sliding; " + SLIDING_NOTE
    elif name == "qwen2":
        s["cls"] = "Qwen2Config"
        s["kwargs"] = {**_common(False, HEADS * HEAD_DIM), **_rope(v5, 1000000.0)}
        s["optional"] = {"use_sliding_window": False}
        s["notes"] = "Qwen2: q/k/v projections with bias, no o_proj bias, untied output"
    elif name == "qwen3":
        s["cls"] = "Qwen3Config"
        s["kwargs"] = {**_common(True), **_rope(v5, 1000000.0)}
        s["optional"] = {"head_dim": HEAD_DIM, "use_sliding_window": False}
        s["notes"] = "Qwen3: per-head RMSNorm on q and k (qk-norm), tied embeddings"
    elif name == "qwen3_moe":
        s["cls"] = "Qwen3MoeConfig"
        s["kwargs"] = {
            **_common(False, HEADS * HEAD_DIM),  # its config class derives head_dim here
            **_rope(v5, 1000000.0),
            "num_experts": 4,
            "num_experts_per_tok": 2,
            "moe_intermediate_size": MOE_INTERMEDIATE,
            "norm_topk_prob": True,
            "decoder_sparse_step": 1,
        }
        s["optional"] = {"head_dim": HEAD_DIM, "use_sliding_window": False, "mlp_only_layers": []}
        s["moe"] = True
        s["notes"] = (
            "Qwen3-MoE: 4 experts, top-2 with renormalized weights (norm_topk_prob), every "
            "layer MoE, qk-norm; f32/bf16 keep Hugging Face per-expert tensors, MLX cases stack "
            "them in mlp.switch_mlp and keep the router (mlp.gate) at 8 bits, group 64, as "
            "mlx-lm's qwen3_moe does"
        )
    elif name == "gemma2":
        s["cls"] = "Gemma2Config"
        s["kwargs"] = {
            **_common(True),
            **_rope(v5, 10000.0),
            "head_dim": HEAD_DIM,
            "query_pre_attn_scalar": 96,
            "sliding_window": WINDOW,
            "attn_logit_softcapping": 4.0,
            "final_logit_softcapping": 3.0,
        }
        s["optional"] = {"layer_types": ["sliding_attention", "full_attention"]}
        s["gemma"] = True
        s["notes"] = (
            "Gemma 2: layer 0 sliding, layer 1 full; attention scale 96^-0.5 "
            "(query_pre_attn_scalar 96, not head_dim); attention logits soft-capped at 4, final "
            "logits at 3; norms stored as w and applied as 1 + w; embeddings scaled by "
            "sqrt(hidden); " + SLIDING_NOTE
        )
    elif name == "gemma3_text":
        s["cls"] = "Gemma3TextConfig"
        if v5:
            rope = {
                "rope_parameters": {
                    "full_attention": {"rope_type": "default", "rope_theta": 1000000.0},
                    "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
                }
            }
        else:
            rope = {
                "rope_theta": 1000000.0,
                "rope_local_base_freq": 10000.0,
                "sliding_window_pattern": 2,
            }
        s["kwargs"] = {
            **_common(True),
            **rope,
            "head_dim": HEAD_DIM,
            "query_pre_attn_scalar": HEAD_DIM,
            "sliding_window": WINDOW,
        }
        s["optional"] = {"layer_types": ["sliding_attention", "full_attention"]}
        s["gemma"] = True
        s["notes"] = (
            "Gemma 3 text: layer 0 sliding (local RoPE base 10000), layer 1 full (RoPE base 1e6); "
            "qk-norm (Gemma norms, 1 + w); query_pre_attn_scalar = head_dim; GGUF cases write "
            "gemma3.attention.sliding_window_pattern = 2 and norms as w + 1; " + SLIDING_NOTE
        )
    elif name == "phi3":
        s["cls"] = "Phi3Config"
        if v5:
            rope = _rope(
                v5,
                10000.0,
                {
                    "rope_type": "longrope",
                    "short_factor": PHI3_SHORT_FACTOR,
                    "long_factor": PHI3_LONG_FACTOR,
                    "original_max_position_embeddings": PHI3_ORIGINAL_MAX_POSITIONS,
                },
            )
        else:
            rope = {
                "rope_theta": 10000.0,
                "rope_scaling": {
                    "type": "longrope",
                    "short_factor": PHI3_SHORT_FACTOR,
                    "long_factor": PHI3_LONG_FACTOR,
                },
            }
        s["kwargs"] = {
            **_common(False, HEADS * HEAD_DIM),
            **rope,
            "original_max_position_embeddings": PHI3_ORIGINAL_MAX_POSITIONS,
        }
        s["notes"] = (
            "Phi-3: fused qkv_proj and gate_up_proj (gate rows first); LongRoPE with "
            f"original_max_position_embeddings {PHI3_ORIGINAL_MAX_POSITIONS} and "
            f"max_position_embeddings {MAX_POSITIONS}: transformers picks the factors from the "
            f"largest position + 1 of the call (40 > {PHI3_ORIGINAL_MAX_POSITIONS}), so these "
            "logits use long_factor at every position; cos/sin are scaled by "
            f"sqrt(1 + ln(4) / ln({PHI3_ORIGINAL_MAX_POSITIONS})) (factor 128 / 32)"
        )
    else:
        raise ValueError(f"unknown family '{name}' (known: {', '.join(FAMILIES)})")
    return s


def accepted_arguments(cls):
    """Names a config class declares (dataclass fields in 5.x, __init__ parameters in 4.x)."""
    names = set()
    if dataclasses.is_dataclass(cls):
        names |= {f.name for f in dataclasses.fields(cls)}
    try:
        names |= set(inspect.signature(cls.__init__).parameters)
    except (TypeError, ValueError):
        pass
    return names


def make_config(transformers, name, v5):
    """Builds the transformers config object of family `name`."""
    s = spec(name, v5)
    cls = getattr(transformers, s["cls"])
    kwargs = dict(s["kwargs"])
    accepted = accepted_arguments(cls)
    for key, value in s["optional"].items():
        if key in accepted:
            kwargs[key] = value
    return cls(**kwargs), s
