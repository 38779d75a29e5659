// GGUF metadata -> ModelConfig, following how llama.cpp reads each architecture's keys.
#include "mlxn/io/model_config_gguf.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "mlxn/core/error.h"
#include "mlxn/io/gguf_metadata.h"

namespace mlxn::io {

namespace {

using L = ModelConfigLimits;

Architecture arch_from_gguf(std::string_view a) {
  if (a == "llama") return Architecture::Llama;
  if (a == "qwen2") return Architecture::Qwen2;
  if (a == "qwen3") return Architecture::Qwen3;
  if (a == "qwen3moe") return Architecture::Qwen3Moe;
  if (a == "gemma2") return Architecture::Gemma2;
  if (a == "gemma3") return Architecture::Gemma3;
  if (a == "phi3") return Architecture::Phi3;
  return Architecture::Unknown;
}

[[noreturn]] void bad(const GgufFile& f, std::string_view key, const std::string& what) {
  throw Error(ErrorKind::Format, f.key_context(key) + ": " + what);
}

std::int64_t bounded(const GgufFile& f, const GgufMetadata& m, std::string_view key,
                     std::int64_t value, std::int64_t lo, std::int64_t hi) {
  if (value < lo || value > hi) {
    bad(f, m.arch_key(key),
        std::to_string(value) + " is out of range [" + std::to_string(lo) + ", " +
            std::to_string(hi) + "]");
  }
  return value;
}

// A per-layer count stored as a scalar or an array; all layers must agree except where the
// caller takes the maximum (feed-forward sizes differ only in models we do not support).
std::int64_t uniform_per_layer(const GgufFile& f, const GgufMetadata& m, std::string_view key) {
  const std::vector<std::uint32_t> v = m.per_layer(key);
  if (v.empty()) bad(f, m.arch_key(key), "no values");
  if (std::any_of(v.begin(), v.end(), [&](std::uint32_t x) { return x != v.front(); })) {
    throw Error(ErrorKind::Unsupported,
                f.key_context(m.arch_key(key)) + ": per-layer values that differ between layers");
  }
  return v.front();
}

// LongRoPE factors live in tensors (rope_factors_{long,short}.weight, F32 [rotary_dim / 2]).
std::vector<double> rope_factors(const GgufFile& f, std::string_view name) {
  const GgufTensorInfo* t = f.find_tensor(name);
  std::vector<double> out;
  if (!t) return out;
  if (t->type != GgmlType::F32 || t->dims.size() != 1 ||
      t->n_elements > static_cast<std::uint64_t>(L::kMaxHeadDim)) {
    throw Error(ErrorKind::Format,
                f.name() + ": tensor '" + std::string(name) + "' must be a small F32 vector");
  }
  const auto bytes = f.tensor_data(*t);
  out.resize(static_cast<std::size_t>(t->n_elements));
  for (std::size_t i = 0; i < out.size(); ++i) {
    float v;
    std::memcpy(&v, bytes.data() + 4 * i, 4);
    out[i] = v;
  }
  return out;
}

}  // namespace

ModelConfig model_config_from_gguf(const GgufFile& file) {
  const GgufMetadata m(file);
  const std::string gguf_arch = m.architecture();
  ModelConfig c;
  c.arch = arch_from_gguf(gguf_arch);
  if (c.arch == Architecture::Unknown) {
    throw Error(ErrorKind::Unsupported, file.name() + ": GGUF architecture '" + gguf_arch +
                                            "' is not supported (supported: llama, qwen2, qwen3, "
                                            "qwen3moe, gemma2, gemma3, phi3)");
  }
  c.model_type = gguf_arch;  // llama.cpp's name ("qwen3moe"); architecture_name(arch) is ours

  c.n_layers = bounded(file, m, "block_count", m.block_count(), 1, L::kMaxLayers);
  c.hidden_size = bounded(file, m, "embedding_length", m.embedding_length(), 1, L::kMaxHidden);
  c.n_heads = bounded(file, m, "attention.head_count",
                      uniform_per_layer(file, m, "attention.head_count"), 1, L::kMaxHeads);
  c.n_kv_heads = m.arch_has("attention.head_count_kv")
                     ? uniform_per_layer(file, m, "attention.head_count_kv")
                     : c.n_heads;
  const std::vector<std::uint32_t> ff = m.per_layer("feed_forward_length");
  c.intermediate_size =
      bounded(file, m, "feed_forward_length",
              ff.empty() ? 0 : *std::max_element(ff.begin(), ff.end()), 1, L::kMaxIntermediate);
  if (auto kl = m.key_length()) {
    c.head_dim = bounded(file, m, "attention.key_length", *kl, 1, L::kMaxHeadDim);
  } else {
    if (c.hidden_size % c.n_heads != 0) {
      bad(file, m.arch_key("attention.head_count"), "does not divide embedding_length");
    }
    c.head_dim = c.hidden_size / c.n_heads;
  }
  if (auto vs = m.get_optional<std::uint32_t>(m.arch_key("vocab_size"))) {
    c.vocab_size = *vs;
  } else if (m.has("tokenizer.ggml.tokens")) {
    c.vocab_size = static_cast<std::int64_t>(m.tokens().size());
  } else if (const GgufTensorInfo* emb = file.find_tensor("token_embd.weight");
             emb && emb->dims.size() == 2) {
    c.vocab_size = static_cast<std::int64_t>(std::min<std::uint64_t>(emb->dims[1], 1ull << 40));
  }
  c.rms_norm_eps = m.rms_norm_eps().value_or(1e-6f);
  c.max_position_embeddings =
      bounded(file, m, "context_length", m.arch_get_or<std::uint32_t>("context_length", 0), 0,
              L::kMaxPositions);
  c.tie_word_embeddings = file.find_tensor("output.weight") == nullptr;
  c.bos_token_id = m.bos_token_id();
  if (auto eos = m.eos_token_id()) c.eos_token_ids.push_back(*eos);
  const bool gemma = c.arch == Architecture::Gemma2 || c.arch == Architecture::Gemma3;
  c.hidden_act = gemma ? "gelu_pytorch_tanh" : "silu";
  c.attention_bias = c.arch == Architecture::Qwen2;
  c.qk_norm = c.arch == Architecture::Qwen3 || c.arch == Architecture::Qwen3Moe ||
              c.arch == Architecture::Gemma3;

  // RoPE.
  c.rope.theta = m.rope_freq_base();
  if (auto dims = m.rope_dimension_count()) {
    if (*dims == 0 || *dims > c.head_dim)
      bad(file, m.arch_key("rope.dimension_count"), "out of range");
    c.rope.partial_rotary_factor = static_cast<double>(*dims) / static_cast<double>(c.head_dim);
  }
  const std::string scaling = m.rope_scaling_type().value_or("none");
  if (scaling == "linear") c.rope.type = RopeType::Linear;
  if (scaling == "yarn") c.rope.type = RopeType::Yarn;
  if (scaling == "longrope") c.rope.type = RopeType::LongRope;
  if (scaling != "none" && scaling != "linear" && scaling != "yarn" && scaling != "longrope") {
    bad(file, m.arch_key("rope.scaling.type"), "unsupported rope scaling '" + scaling + "'");
  }
  if (auto f = m.rope_scaling_factor(); f && *f > 0.0f) c.rope.factor = *f;
  c.rope.original_max_position_embeddings = m.rope_scaling_original_context_length().value_or(0);
  if (auto af = m.get_optional<float>(m.arch_key("rope.scaling.attn_factor"))) {
    c.rope.attention_factor = *af;
  }
  c.rope.long_factor = rope_factors(file, "rope_factors_long.weight");
  c.rope.short_factor = rope_factors(file, "rope_factors_short.weight");
  if (!c.rope.long_factor.empty() && !c.rope.short_factor.empty()) {
    c.rope.type = RopeType::LongRope;
  }
  c.rope_local = c.rope;

  // Attention pattern and per-family extras.
  c.layer_types.assign(static_cast<std::size_t>(c.n_layers), AttentionKind::Full);
  if (auto sw = m.sliding_window()) c.sliding_window = *sw;
  if (c.arch == Architecture::Gemma2 && c.sliding_window) {
    for (std::int64_t i = 0; i < c.n_layers; i += 2) c.layer_types[i] = AttentionKind::Sliding;
  }
  if (c.arch == Architecture::Gemma3 && c.sliding_window) {
    // llama.cpp hard-codes Gemma 3's pattern (5 local : 1 global) and local base 10000.
    const std::int64_t pattern =
        m.arch_get_or<std::uint32_t>("attention.sliding_window_pattern", 6);
    if (pattern < 1) bad(file, m.arch_key("attention.sliding_window_pattern"), "must be >= 1");
    for (std::int64_t i = 0; i < c.n_layers; ++i) {
      if ((i + 1) % pattern != 0) c.layer_types[i] = AttentionKind::Sliding;
    }
    c.rope_local.type = RopeType::Default;
    c.rope_local.factor = 1.0;
    c.rope_local.theta = 10000.0;
  }
  if (c.arch == Architecture::Phi3 && c.sliding_window) {
    std::fill(c.layer_types.begin(), c.layer_types.end(), AttentionKind::Sliding);
  }
  if (c.arch == Architecture::Gemma2) {
    c.attn_logit_softcapping = m.arch_get_or<float>("attn_logit_softcapping", 50.0f);
    c.final_logit_softcapping = m.arch_get_or<float>("final_logit_softcapping", 30.0f);
  }
  if (gemma) {
    // GGUF stores no query_pre_attn_scalar; llama.cpp uses hidden / heads for the 27B models
    // (46 layers for Gemma 2, 62 for Gemma 3) and head_dim otherwise, as the HF configs do.
    const bool big = (c.arch == Architecture::Gemma2 && c.n_layers == 46) ||
                     (c.arch == Architecture::Gemma3 && c.n_layers == 62);
    c.query_pre_attn_scalar = static_cast<double>(big ? c.hidden_size / c.n_heads : c.head_dim);
  }
  if (c.arch == Architecture::Qwen3Moe) {
    c.n_experts = bounded(file, m, "expert_count", m.expert_count(), 1, L::kMaxExperts);
    c.n_experts_per_tok =
        bounded(file, m, "expert_used_count", m.expert_used_count(), 1, c.n_experts);
    c.moe_intermediate_size = bounded(file, m, "expert_feed_forward_length",
                                      m.arch_get_or<std::uint32_t>("expert_feed_forward_length", 0),
                                      1, L::kMaxIntermediate);
    c.norm_topk_prob = m.arch_get_or<bool>("expert_weights_norm", true);
  }

  validate_model_config(c, file.name());
  return c;
}

}  // namespace mlxn::io
