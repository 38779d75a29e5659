// ModelConfig::from_json_string: config.json (transformers 4.x and 5.x, text_config nesting)
// to the normalized struct, with per-family implied features and transformers' defaults.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "io/mlx_quant_config_json.h"
#include "io/model_config_json.h"
#include "io/model_config_rope.h"
#include "mlxn/core/error.h"
#include "mlxn/io/model_config.h"

namespace mlxn::io {

namespace {

using detail::Json;
using detail::JsonFields;
using L = ModelConfigLimits;

constexpr std::int64_t kMaxTokenId = std::numeric_limits<std::int32_t>::max();

Architecture arch_from_model_type(std::string_view t) {
  if (t == "llama") return Architecture::Llama;
  if (t == "mistral") return Architecture::Mistral;
  if (t == "qwen2") return Architecture::Qwen2;
  if (t == "qwen3") return Architecture::Qwen3;
  if (t == "qwen3_moe") return Architecture::Qwen3Moe;
  if (t == "gemma2") return Architecture::Gemma2;
  if (t == "gemma3" || t == "gemma3_text") return Architecture::Gemma3;
  if (t == "phi3") return Architecture::Phi3;
  return Architecture::Unknown;
}

Architecture arch_from_class(std::string_view c) {
  if (c == "LlamaForCausalLM") return Architecture::Llama;
  if (c == "MistralForCausalLM") return Architecture::Mistral;
  if (c == "Qwen2ForCausalLM") return Architecture::Qwen2;
  if (c == "Qwen3ForCausalLM") return Architecture::Qwen3;
  if (c == "Qwen3MoeForCausalLM") return Architecture::Qwen3Moe;
  if (c == "Gemma2ForCausalLM") return Architecture::Gemma2;
  if (c == "Gemma3ForCausalLM" || c == "Gemma3ForConditionalGeneration") {
    return Architecture::Gemma3;
  }
  if (c == "Phi3ForCausalLM") return Architecture::Phi3;
  return Architecture::Unknown;
}

// Reads a field from text_config first, then the top level: multimodal configs (Gemma 3) keep
// the language model's hyper-parameters nested but ids, dtype and quantization on top.
struct Layered {
  const JsonFields* text;
  const JsonFields& top;

  const JsonFields& at(std::string_view key) const {
    if (text && text->has(key)) return *text;
    return top;
  }
  bool has(std::string_view key) const { return at(key).has(key); }
  std::optional<std::int64_t> get_int(std::string_view k, std::int64_t lo, std::int64_t hi) const {
    return at(k).get_int(k, lo, hi);
  }
  std::optional<double> get_double(std::string_view k, double lo, double hi) const {
    return at(k).get_double(k, lo, hi);
  }
  std::optional<bool> get_bool(std::string_view k) const { return at(k).get_bool(k); }
  std::optional<std::string> get_string(std::string_view k) const { return at(k).get_string(k); }
};

// Token ids: one integer, a list of integers, or null.
std::vector<std::int64_t> read_ids(const Layered& f, std::string_view key) {
  const JsonFields& src = f.at(key);
  const Json* v = src.find(key);
  std::vector<std::int64_t> ids;
  if (!v) return ids;
  if (v->is_array()) {
    if (v->size() > 1024) src.fail(key, "too many token ids");
    for (const Json& e : *v) ids.push_back(src.to_int(e, key, 0, kMaxTokenId));
  } else {
    ids.push_back(src.to_int(*v, key, 0, kMaxTokenId));
  }
  return ids;
}

std::optional<std::int64_t> read_one_id(const Layered& f, std::string_view key) {
  auto ids = read_ids(f, key);
  if (ids.empty()) return std::nullopt;
  return ids.front();
}

// Attention kinds from a 5.x-style `layer_types` list.
std::vector<AttentionKind> read_layer_types(const JsonFields& src, std::int64_t n_layers) {
  const Json* v = src.get_array("layer_types");
  if (static_cast<std::int64_t>(v->size()) != n_layers) {
    src.fail("layer_types",
             "has " + std::to_string(v->size()) +
                 " entries, expected num_hidden_layers = " + std::to_string(n_layers));
  }
  std::vector<AttentionKind> kinds;
  kinds.reserve(v->size());
  for (const Json& e : *v) {
    if (!e.is_string()) src.fail("layer_types", "entries must be strings");
    const auto& s = e.get_ref<const std::string&>();
    if (s == "full_attention") {
      kinds.push_back(AttentionKind::Full);
    } else if (s == "sliding_attention") {
      kinds.push_back(AttentionKind::Sliding);
    } else {
      src.fail("layer_types",
               "unknown layer type '" + s + "' (expected full_attention or sliding_attention)");
    }
  }
  return kinds;
}

// Per-family attention pattern when the config has no layer_types list, as transformers
// derives it for each family.
void derive_layer_types(ModelConfig& c, const Layered& f) {
  std::vector<AttentionKind>& t = c.layer_types;
  t.assign(static_cast<std::size_t>(c.n_layers), AttentionKind::Full);
  switch (c.arch) {
    case Architecture::Gemma2:
      for (std::int64_t i = 0; i < c.n_layers; i += 2) t[i] = AttentionKind::Sliding;
      break;
    case Architecture::Gemma3: {
      const std::int64_t pattern =
          f.get_int("sliding_window_pattern", 1, L::kMaxLayers).value_or(6);
      for (std::int64_t i = 0; i < c.n_layers; ++i) {
        if ((i + 1) % pattern != 0) t[i] = AttentionKind::Sliding;
      }
      break;
    }
    case Architecture::Mistral:
    case Architecture::Phi3:
      if (c.sliding_window) std::fill(t.begin(), t.end(), AttentionKind::Sliding);
      break;
    case Architecture::Qwen2:
    case Architecture::Qwen3:
    case Architecture::Qwen3Moe:
      if (c.sliding_window) {
        const std::int64_t first =
            f.get_int("max_window_layers", 0, L::kMaxLayers).value_or(c.n_layers);
        for (std::int64_t i = first; i < c.n_layers; ++i) t[i] = AttentionKind::Sliding;
      }
      break;
    default:
      break;
  }
}

// transformers' Gemma3TextConfig defaults: Google's own Gemma 3 configs omit these fields
// inside text_config and rely on the class defaults.
struct FamilyDefaults {
  std::optional<std::int64_t> vocab_size, n_heads, n_kv_heads, head_dim, sliding_window, max_pos;
  std::optional<double> rope_theta, query_pre_attn_scalar;
};

FamilyDefaults family_defaults(Architecture arch) {
  FamilyDefaults d;
  if (arch == Architecture::Gemma3) {
    d.vocab_size = 262208;
    d.n_heads = 8;
    d.n_kv_heads = 4;
    d.head_dim = 256;
    d.sliding_window = 4096;
    d.max_pos = 131072;
    d.rope_theta = 1'000'000.0;
    d.query_pre_attn_scalar = 256.0;
  }
  return d;
}

std::int64_t require_or(const Layered& f, std::string_view key, std::int64_t lo, std::int64_t hi,
                        std::optional<std::int64_t> fallback) {
  if (auto v = f.get_int(key, lo, hi)) return *v;
  if (fallback) return *fallback;
  f.at(key).fail(key, "required field is missing");
}

}  // namespace

ModelConfig ModelConfig::from_json_string(std::string_view json_text, std::string_view source) {
  const Json root = detail::parse_json_text(json_text, source);
  const std::string src(source);
  const JsonFields top(root, src, "");
  std::optional<JsonFields> text_fields;
  if (const Json* tc = top.get_object("text_config")) text_fields.emplace(*tc, src, "text_config.");
  const Layered f{text_fields ? &*text_fields : nullptr, top};

  ModelConfig c;
  c.model_type = f.get_string("model_type").value_or("");
  if (const Json* archs = top.get_array("architectures")) {
    if (!archs->empty()) {
      if (!(*archs)[0].is_string()) top.fail("architectures", "entries must be strings");
      c.architecture_class = (*archs)[0].get<std::string>();
    }
  }
  c.arch = arch_from_model_type(c.model_type);
  if (c.arch == Architecture::Unknown) c.arch = arch_from_class(c.architecture_class);
  if (c.arch == Architecture::Unknown) {
    c.arch = arch_from_model_type(top.get_string("model_type").value_or(""));
  }
  const bool gemma = c.arch == Architecture::Gemma2 || c.arch == Architecture::Gemma3;
  const FamilyDefaults defs = family_defaults(c.arch);

  // Dimensions: bounded as they are read, so nothing below sizes anything from an absurd value.
  c.vocab_size = require_or(f, "vocab_size", 1, L::kMaxVocab, defs.vocab_size);
  c.hidden_size = require_or(f, "hidden_size", 1, L::kMaxHidden, std::nullopt);
  c.intermediate_size = require_or(f, "intermediate_size", 1, L::kMaxIntermediate, std::nullopt);
  c.n_layers = require_or(f, "num_hidden_layers", 1, L::kMaxLayers, std::nullopt);
  c.n_heads = require_or(f, "num_attention_heads", 1, L::kMaxHeads, defs.n_heads);
  c.n_kv_heads = f.get_int("num_key_value_heads", 1, L::kMaxHeads)
                     .value_or(defs.n_kv_heads.value_or(c.n_heads));
  if (auto hd = f.get_int("head_dim", 1, L::kMaxHeadDim)) {
    c.head_dim = *hd;
  } else if (defs.head_dim) {
    c.head_dim = *defs.head_dim;
  } else {
    if (c.hidden_size % c.n_heads != 0) {
      f.at("num_attention_heads")
          .fail("num_attention_heads", std::to_string(c.n_heads) + " does not divide hidden_size " +
                                           std::to_string(c.hidden_size) +
                                           " and head_dim is not given");
    }
    c.head_dim = c.hidden_size / c.n_heads;
  }
  c.rms_norm_eps = f.get_double("rms_norm_eps", 0.0, 1.0).value_or(1e-6);
  c.max_position_embeddings =
      f.get_int("max_position_embeddings", 1, L::kMaxPositions).value_or(defs.max_pos.value_or(0));
  c.tie_word_embeddings = f.get_bool("tie_word_embeddings").value_or(gemma);
  c.dtype_name = f.get_string("dtype").value_or(f.get_string("torch_dtype").value_or(""));
  if (c.dtype_name == "float32") c.dtype = DType::F32;
  if (c.dtype_name == "float16") c.dtype = DType::F16;
  if (c.dtype_name == "bfloat16") c.dtype = DType::BF16;
  c.bos_token_id = read_one_id(f, "bos_token_id");
  c.eos_token_ids = read_ids(f, "eos_token_id");
  c.pad_token_id = read_one_id(f, "pad_token_id");
  c.hidden_act =
      f.get_string("hidden_activation")
          .value_or(f.get_string("hidden_act").value_or(gemma ? "gelu_pytorch_tanh" : "silu"));

  // Attention features implied by the family where the config has no field for them.
  const bool attn_bias = f.get_bool("attention_bias").value_or(false);
  c.attention_bias = c.arch == Architecture::Qwen2 || attn_bias;
  c.attention_out_bias = c.arch != Architecture::Qwen2 && attn_bias;
  c.mlp_bias = f.get_bool("mlp_bias").value_or(false);
  c.qk_norm = c.arch == Architecture::Qwen3 || c.arch == Architecture::Qwen3Moe ||
              c.arch == Architecture::Gemma3;
  c.attn_logit_softcapping = f.get_double("attn_logit_softcapping", 0.0, 1e9);
  c.final_logit_softcapping = f.get_double("final_logit_softcapping", 0.0, 1e9);
  c.query_pre_attn_scalar = f.get_double("query_pre_attn_scalar", 0.0, 1e9);
  if (!c.query_pre_attn_scalar) c.query_pre_attn_scalar = defs.query_pre_attn_scalar;

  // Sliding window: Qwen configs carry a window that is off unless use_sliding_window is set.
  c.sliding_window = f.get_int("sliding_window", 1, L::kMaxPositions);
  if (!c.sliding_window) c.sliding_window = defs.sliding_window;
  const bool qwen = c.arch == Architecture::Qwen2 || c.arch == Architecture::Qwen3 ||
                    c.arch == Architecture::Qwen3Moe;
  if (qwen && !f.get_bool("use_sliding_window").value_or(false)) c.sliding_window.reset();
  if (f.has("layer_types")) {
    c.layer_types = read_layer_types(f.at("layer_types"), c.n_layers);
  } else {
    derive_layer_types(c, f);
  }

  // Mixture of experts: num_experts (4.x) or num_local_experts (5.x).
  c.n_experts = f.get_int("num_experts", 0, L::kMaxExperts)
                    .value_or(f.get_int("num_local_experts", 0, L::kMaxExperts).value_or(0));
  if (c.n_experts > 0) {
    c.n_experts_per_tok = f.get_int("num_experts_per_tok", 1, c.n_experts).value_or(0);
    c.moe_intermediate_size =
        f.get_int("moe_intermediate_size", 1, L::kMaxIntermediate).value_or(c.intermediate_size);
    c.norm_topk_prob = f.get_bool("norm_topk_prob").value_or(false);
    c.decoder_sparse_step = f.get_int("decoder_sparse_step", 1, c.n_layers).value_or(1);
    if (f.has("mlp_only_layers")) {
      const JsonFields& s = f.at("mlp_only_layers");
      const Json* arr = s.get_array("mlp_only_layers");
      if (static_cast<std::int64_t>(arr->size()) > c.n_layers) {
        s.fail("mlp_only_layers", "has more entries than layers");
      }
      for (const Json& e : *arr) {
        c.mlp_only_layers.push_back(s.to_int(e, "mlp_only_layers", 0, c.n_layers - 1));
      }
    }
  }

  detail::read_rope(c, f.text ? *f.text : top, top, defs.rope_theta.value_or(10000.0));

  // Quantization sits at the top level; mlx-lm writes `quantization` and a copy under
  // `quantization_config`, Hugging Face quantizers only the latter.
  for (const char* key : {"quantization", "quantization_config"}) {
    if (const Json* q = top.find(key)) {
      c.quantization = detail::quant_config_from_json(*q, source, key);
      break;
    }
  }

  validate_model_config(c, source);
  return c;
}

}  // namespace mlxn::io
