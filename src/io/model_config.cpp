// ModelConfig: names, per-layer queries, consistency validation and reading config.json files.
#include "mlxn/io/model_config.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "io/model_config_json.h"
#include "mlxn/core/error.h"

namespace mlxn::io {

namespace {

constexpr Architecture kSupported[] = {
    Architecture::Llama,    Architecture::Mistral, Architecture::Qwen2,  Architecture::Qwen3,
    Architecture::Qwen3Moe, Architecture::Gemma2,  Architecture::Gemma3, Architecture::Phi3};

[[noreturn]] void bad(std::string_view source, std::string_view field, const std::string& what) {
  throw Error(ErrorKind::Format, std::string(source) + ": " + std::string(field) + ": " + what);
}

void check_range(std::string_view source, std::string_view field, std::int64_t v, std::int64_t lo,
                 std::int64_t hi) {
  if (v < lo || v > hi) {
    bad(source, field,
        std::to_string(v) + " is out of range [" + std::to_string(lo) + ", " + std::to_string(hi) +
            "]");
  }
}

void validate_rope(const RopeConfig& r, const ModelConfig& c, std::string_view source,
                   std::string_view field) {
  const std::string f(field);
  if (!(r.theta > 0.0) || !std::isfinite(r.theta)) bad(source, f + ".rope_theta", "must be > 0");
  if (!(r.factor > 0.0) || !std::isfinite(r.factor)) bad(source, f + ".factor", "must be > 0");
  if (!(r.partial_rotary_factor > 0.0) || r.partial_rotary_factor > 1.0) {
    bad(source, f + ".partial_rotary_factor", "must be in (0, 1]");
  }
  const auto rotary =
      static_cast<std::int64_t>(static_cast<double>(c.head_dim) * r.partial_rotary_factor);
  if (rotary < 2 || rotary % 2 != 0) {
    bad(source, f + ".partial_rotary_factor",
        "rotary dimension " + std::to_string(rotary) + " (head_dim " + std::to_string(c.head_dim) +
            ") must be even and >= 2");
  }
  if (r.type == RopeType::LongRope) {
    const auto half = static_cast<std::size_t>(rotary / 2);
    if (r.short_factor.size() != half) {
      bad(source, f + ".short_factor",
          "has " + std::to_string(r.short_factor.size()) + " entries, expected " +
              std::to_string(half) + " (rotary dim / 2)");
    }
    if (r.long_factor.size() != half) {
      bad(source, f + ".long_factor",
          "has " + std::to_string(r.long_factor.size()) + " entries, expected " +
              std::to_string(half) + " (rotary dim / 2)");
    }
  }
  if ((r.type == RopeType::Llama3 || r.type == RopeType::LongRope) &&
      r.original_max_position_embeddings <= 0) {
    bad(source, f + ".original_max_position_embeddings",
        std::string("required for rope type ") + std::string(rope_type_name(r.type)));
  }
  if (r.type == RopeType::Llama3 && !(r.high_freq_factor > r.low_freq_factor)) {
    bad(source, f + ".high_freq_factor", "must be greater than low_freq_factor");
  }
}

}  // namespace

std::string_view architecture_name(Architecture arch) {
  switch (arch) {
    case Architecture::Llama:
      return "llama";
    case Architecture::Mistral:
      return "mistral";
    case Architecture::Qwen2:
      return "qwen2";
    case Architecture::Qwen3:
      return "qwen3";
    case Architecture::Qwen3Moe:
      return "qwen3_moe";
    case Architecture::Gemma2:
      return "gemma2";
    case Architecture::Gemma3:
      return "gemma3";
    case Architecture::Phi3:
      return "phi3";
    case Architecture::Unknown:
      break;
  }
  return "unknown";
}

std::string supported_architectures() {
  std::string s;
  for (Architecture a : kSupported) {
    if (!s.empty()) s += ", ";
    s += architecture_name(a);
  }
  return s;
}

std::string_view rope_type_name(RopeType type) {
  switch (type) {
    case RopeType::Default:
      return "default";
    case RopeType::Linear:
      return "linear";
    case RopeType::Dynamic:
      return "dynamic";
    case RopeType::Yarn:
      return "yarn";
    case RopeType::Llama3:
      return "llama3";
    case RopeType::LongRope:
      return "longrope";
  }
  return "default";
}

AttentionKind ModelConfig::layer_type(std::int64_t layer) const {
  if (layer < 0 || layer >= static_cast<std::int64_t>(layer_types.size())) {
    throw Error(ErrorKind::InvalidArgument, "layer " + std::to_string(layer) +
                                                " out of range [0, " +
                                                std::to_string(layer_types.size()) + ")");
  }
  return layer_types[static_cast<std::size_t>(layer)];
}

bool ModelConfig::is_moe_layer(std::int64_t layer) const {
  if (n_experts <= 0 || layer < 0 || layer >= n_layers) return false;
  if (std::find(mlp_only_layers.begin(), mlp_only_layers.end(), layer) != mlp_only_layers.end()) {
    return false;
  }
  return decoder_sparse_step > 0 && (layer + 1) % decoder_sparse_step == 0;
}

void validate_model_config(const ModelConfig& c, std::string_view source) {
  using L = ModelConfigLimits;
  check_range(source, "vocab_size", c.vocab_size, 1, L::kMaxVocab);
  check_range(source, "hidden_size", c.hidden_size, 1, L::kMaxHidden);
  check_range(source, "intermediate_size", c.intermediate_size, 1, L::kMaxIntermediate);
  check_range(source, "num_hidden_layers", c.n_layers, 1, L::kMaxLayers);
  check_range(source, "num_attention_heads", c.n_heads, 1, L::kMaxHeads);
  check_range(source, "num_key_value_heads", c.n_kv_heads, 1, c.n_heads);
  check_range(source, "head_dim", c.head_dim, 1, L::kMaxHeadDim);
  if (c.n_heads % c.n_kv_heads != 0) {
    bad(source, "num_key_value_heads",
        std::to_string(c.n_kv_heads) + " does not divide num_attention_heads " +
            std::to_string(c.n_heads));
  }
  if (c.n_heads * c.head_dim > L::kMaxHidden * 4) {
    bad(source, "head_dim",
        "num_attention_heads * head_dim = " + std::to_string(c.n_heads * c.head_dim) +
            " is absurd");
  }
  if (!(c.rms_norm_eps > 0.0) || !(c.rms_norm_eps < 1.0)) {
    bad(source, "rms_norm_eps", "must be in (0, 1)");
  }
  if (c.max_position_embeddings < 0 || c.max_position_embeddings > L::kMaxPositions) {
    bad(source, "max_position_embeddings", "out of range");
  }
  if (static_cast<std::int64_t>(c.layer_types.size()) != c.n_layers) {
    bad(source, "layer_types",
        "has " + std::to_string(c.layer_types.size()) +
            " entries, expected num_hidden_layers = " + std::to_string(c.n_layers));
  }
  const bool any_sliding = std::find(c.layer_types.begin(), c.layer_types.end(),
                                     AttentionKind::Sliding) != c.layer_types.end();
  if (any_sliding && (!c.sliding_window || *c.sliding_window <= 0)) {
    bad(source, "sliding_window", "sliding-attention layers need a positive sliding_window");
  }
  if (c.sliding_window)
    check_range(source, "sliding_window", *c.sliding_window, 1, L::kMaxPositions);
  for (auto cap : {c.attn_logit_softcapping, c.final_logit_softcapping}) {
    if (cap && !(*cap > 0.0)) bad(source, "logit_softcapping", "must be > 0");
  }
  if (c.query_pre_attn_scalar && !(*c.query_pre_attn_scalar > 0.0)) {
    bad(source, "query_pre_attn_scalar", "must be > 0");
  }
  if (c.n_experts != 0) {
    check_range(source, "num_experts", c.n_experts, 1, L::kMaxExperts);
    check_range(source, "num_experts_per_tok", c.n_experts_per_tok, 1, c.n_experts);
    check_range(source, "moe_intermediate_size", c.moe_intermediate_size, 1, L::kMaxIntermediate);
    check_range(source, "decoder_sparse_step", c.decoder_sparse_step, 1, c.n_layers);
    for (std::int64_t l : c.mlp_only_layers)
      check_range(source, "mlp_only_layers", l, 0, c.n_layers - 1);
  }
  // Each dimension can be in range while their product is absurd; bound the totals so nothing
  // sized from the config (expected-tensor lists, caches) can explode.
  if (c.n_experts * c.n_layers > L::kMaxExpertLayers) {
    bad(source, "num_experts",
        std::to_string(c.n_experts) + " experts x " + std::to_string(c.n_layers) +
            " layers is absurd");
  }
  const double h = static_cast<double>(c.hidden_size);
  const double attn = h * static_cast<double>((c.n_heads * 2 + c.n_kv_heads * 2) * c.head_dim);
  const double mlp = 3.0 * h * static_cast<double>(c.intermediate_size);
  const double moe = 3.0 * h * static_cast<double>(c.n_experts * c.moe_intermediate_size);
  const double params = static_cast<double>(c.n_layers) * (attn + mlp + moe) +
                        2.0 * h * static_cast<double>(c.vocab_size);
  if (params > L::kMaxParameters) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.3g", params);
    bad(source, "num_hidden_layers",
        std::string("the dimensions imply ") + buf + " parameters, more than the 1e13 limit");
  }
  if (c.arch == Architecture::Qwen3Moe && c.n_experts == 0) {
    bad(source, "num_experts", "qwen3_moe needs num_experts > 0");
  }
  validate_rope(c.rope, c, source, "rope");
  validate_rope(c.rope_local, c, source, "rope_local");
}

ModelConfig ModelConfig::from_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorKind::Io, path + ": cannot open for reading");
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (size < 0) throw Error(ErrorKind::Io, path + ": cannot determine the file size");
  if (static_cast<std::uint64_t>(size) > detail::kMaxConfigBytes) {
    throw Error(ErrorKind::Format,
                path + ": " + std::to_string(size) + " bytes is too large for a config file");
  }
  in.seekg(0, std::ios::beg);
  std::string text(static_cast<std::size_t>(size), '\0');
  if (size > 0 && !in.read(text.data(), size)) {
    throw Error(ErrorKind::Io, path + ": read failed");
  }
  return from_json_string(text, path);
}

}  // namespace mlxn::io
