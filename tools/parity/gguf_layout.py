"""llama.cpp's GGUF layout of a model, built from a Hugging Face state dict and config.json.

What llama.cpp's converter does and mlxn's reader (src/io/model_config_gguf.cpp,
src/io/model_dir_gguf.cpp) expects:
- tensor names token_embd / output_norm / output and blk.N.{attn_norm, attn_q, attn_k, attn_v,
  attn_output, attn_q_norm, attn_k_norm, ffn_norm, ffn_gate, ffn_up, ffn_down,
  post_attention_norm, post_ffw_norm}.{weight,bias}; no output tensor when embeddings are tied;
- the "llama" architecture permutes the rows of attn_q / attn_k from Hugging Face's rotate-half
  order to GGML's interleaved order (per head: reshape(n_head, 2, head_dim / 2, ...)
  .swapaxes(1, 2));
- Gemma stores every norm weight as w + 1 (Hugging Face applies 1 + w at run time);
- norms, biases and all 1-D tensors are F32; the file type applies to 2-D weights.
"""

import re

import numpy as np

from . import gguf_writer as gw

ARCHITECTURES = {"llama": "llama", "qwen2": "qwen2", "qwen3": "qwen3", "gemma3_text": "gemma3"}

_LAYER_NAMES = {
    "input_layernorm": "attn_norm",
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "self_attn.q_norm": "attn_q_norm",
    "self_attn.k_norm": "attn_k_norm",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
    "pre_feedforward_layernorm": "ffn_norm",
    "post_feedforward_layernorm": "post_ffw_norm",
}

_LAYER = re.compile(r"^model\.layers\.(\d+)\.(.+)\.(weight|bias)$")


def tensor_name(hf_name, gemma):
    """Hugging Face tensor name -> GGUF tensor name; raises for names llama.cpp has no slot for."""
    fixed = {
        "model.embed_tokens.weight": "token_embd.weight",
        "model.norm.weight": "output_norm.weight",
        "lm_head.weight": "output.weight",
    }
    if hf_name in fixed:
        return fixed[hf_name]
    m = _LAYER.match(hf_name)
    if m:
        layer, module, suffix = m.groups()
        if module == "post_attention_layernorm":
            # Gemma normalizes the attention output with it; elsewhere it is the pre-FFN norm.
            mapped = "post_attention_norm" if gemma else "ffn_norm"
        else:
            mapped = _LAYER_NAMES.get(module)
        if mapped:
            return f"blk.{layer}.{mapped}.{suffix}"
    raise ValueError(f"no GGUF name for tensor '{hf_name}'")


def permute_rows(w, n_head):
    """llama.cpp's HF -> GGUF permutation of q/k rows (rotate-half -> interleaved pairs)."""
    return (
        w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
        .swapaxes(1, 2)
        .reshape(w.shape)
    )


def unpermute_rows(w, n_head):
    """Inverse of permute_rows."""
    return (
        w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:])
        .swapaxes(1, 2)
        .reshape(w.shape)
    )


def rope_theta(config, layer_type="full_attention"):
    """The RoPE base of `layer_type` layers from a 5.x (rope_parameters) or 4.x config.json."""
    params = config.get("rope_parameters")
    if isinstance(params, dict) and params:
        if layer_type in params and isinstance(params[layer_type], dict):
            params = params[layer_type]
        elif "full_attention" in params and isinstance(params["full_attention"], dict):
            params = params["full_attention"]
        if params.get("rope_type", params.get("type", "default")) != "default":
            raise ValueError(f"GGUF fixtures support default RoPE only, config has {params}")
        return float(params["rope_theta"])
    if config.get("rope_scaling"):
        raise ValueError(
            f"GGUF fixtures support default RoPE only, config has {config['rope_scaling']}"
        )
    if layer_type == "sliding_attention" and "rope_local_base_freq" in config:
        return float(config["rope_local_base_freq"])
    return float(config.get("rope_theta", 10000.0))


def _sliding_pattern(layer_types):
    """The period P with layer i sliding iff (i + 1) % P != 0 (how Gemma 3 GGUF readers derive
    the pattern)."""
    n = len(layer_types)
    for p in range(1, n + 1):
        if all((layer_types[i] == "sliding_attention") == ((i + 1) % p != 0) for i in range(n)):
            return p
    raise ValueError(f"layer_types {layer_types} is not a periodic sliding/full pattern")


def _first_id(value):
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _add_metadata(w, arch, config, ggml_type, name):
    head_dim = int(config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"])
    w.add_string("general.architecture", arch)
    w.add_string("general.name", name)
    w.add_u32("general.file_type", gw.FILE_TYPE[ggml_type])
    w.add_u32("general.quantization_version", 2)
    p = arch + "."
    w.add_u32(p + "context_length", config["max_position_embeddings"])
    w.add_u32(p + "embedding_length", config["hidden_size"])
    w.add_u32(p + "block_count", config["num_hidden_layers"])
    w.add_u32(p + "feed_forward_length", config["intermediate_size"])
    w.add_u32(p + "attention.head_count", config["num_attention_heads"])
    w.add_u32(
        p + "attention.head_count_kv",
        config.get("num_key_value_heads") or config["num_attention_heads"],
    )
    w.add_u32(p + "attention.key_length", head_dim)
    w.add_u32(p + "attention.value_length", head_dim)
    w.add_f32(p + "attention.layer_norm_rms_epsilon", config["rms_norm_eps"])
    w.add_f32(p + "rope.freq_base", rope_theta(config))
    if arch == "llama":
        w.add_u32(p + "rope.dimension_count", head_dim)
        w.add_u32(p + "vocab_size", config["vocab_size"])
    if arch == "gemma3":
        # llama.cpp (and mlxn's reader) hard-code what GGUF cannot say; refuse a model that
        # differs, since the file would then describe another model.
        if abs(rope_theta(config, "sliding_attention") - 10000.0) > 1e-6:
            raise ValueError("gemma3 GGUF: the local RoPE base must be 10000 (readers assume it)")
        if int(config.get("query_pre_attn_scalar", head_dim)) != head_dim:
            raise ValueError(
                "gemma3 GGUF: query_pre_attn_scalar must equal head_dim (readers assume it)"
            )
        if config.get("final_logit_softcapping") or config.get("attn_logit_softcapping"):
            raise ValueError("gemma3 GGUF: logit soft-capping has no GGUF key")
        w.add_u32(p + "attention.sliding_window", config["sliding_window"])
        w.add_u32(p + "attention.sliding_window_pattern", _sliding_pattern(config["layer_types"]))
    vocab = int(config["vocab_size"])
    special = {0: "<pad>", 1: "<s>", 2: "</s>"}
    w.add_string("tokenizer.ggml.model", "gpt2")
    w.add_array("tokenizer.ggml.tokens", gw.STRING, [special.get(i, f"t{i}") for i in range(vocab)])
    w.add_array(
        "tokenizer.ggml.token_type", gw.INT32, [3 if i in special else 1 for i in range(vocab)]
    )
    for key, field in (
        ("bos", "bos_token_id"),
        ("eos", "eos_token_id"),
        ("padding", "pad_token_id"),
    ):
        value = _first_id(config.get(field))
        if value is not None:
            w.add_u32(f"tokenizer.ggml.{key}_token_id", value)


def _order(hf_name):
    """llama.cpp's order: embeddings, then layer by layer, then the output norm and head."""
    m = _LAYER.match(hf_name)
    if m:
        return (1, int(m.group(1)), hf_name)
    return (0 if "embed_tokens" in hf_name else 2, 0, hf_name)


def build(state, config, family, ggml_type, path, name, tied):
    """Writes `state` (float32, HF names) as a GGUF file of `ggml_type` to `path`; `config` is
    the model's config.json (with defaults filled in), `tied` whether lm_head is the embedding.

    Returns (bytes written, reference HF state, {gguf name: type name}). The reference state is
    what a reader reconstructs from the file with the layout undone (permutation, +1).
    """
    arch = ARCHITECTURES[family]
    gemma = arch == "gemma3"
    n_head = int(config["num_attention_heads"])
    n_head_kv = int(config.get("num_key_value_heads") or n_head)
    w = gw.GgufWriter()
    _add_metadata(w, arch, config, ggml_type, name)
    reference, types = {}, {}
    for hf_name in sorted(state, key=_order):
        if tied and hf_name == "lm_head.weight":
            continue
        value = np.asarray(state[hf_name], dtype=np.float32)
        gguf_name = tensor_name(hf_name, gemma)
        is_norm = hf_name.endswith("norm.weight")
        heads = None
        if arch == "llama" and re.search(r"\.self_attn\.q_proj\.(weight|bias)$", hf_name):
            heads = n_head
        if arch == "llama" and re.search(r"\.self_attn\.k_proj\.(weight|bias)$", hf_name):
            heads = n_head_kv
        stored = value
        if gemma and is_norm:
            stored = (value + np.float32(1)).astype(np.float32)
        if heads:
            stored = permute_rows(stored, heads)
        if stored.ndim == 1:
            t = gw.GGML_F32
        elif ggml_type in (gw.GGML_Q8_0, gw.GGML_Q4_0) and stored.shape[-1] % gw.QK != 0:
            t = gw.GGML_F16  # what llama.cpp falls back to for rows that do not fill blocks
        else:
            t = ggml_type
        w.add_tensor(gguf_name, stored, t)
        types[gguf_name] = gw.GGML_TYPE_NAMES[t]
        back = gw.roundtrip(stored, t, gguf_name)
        if heads:
            back = unpermute_rows(back, heads)
        if gemma and is_norm:
            back = (back - np.float32(1)).astype(np.float32)
        reference[hf_name] = back
    size = w.write(path)
    return size, reference, types
